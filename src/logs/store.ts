// The kept output of functions and services (PRODUCT.md §12): every line a function (or a service)
// prints, with its time and stream, in a ring of segment files per function under
// <data-dir>/logs/<namespace>/<app>/<path or service name>/. Below, "function" means either.
//
// Bounds: a line is cut at maxLineBytes; each function keeps at most perFunctionBytes on disk (the
// oldest segment goes first) and all functions together at most totalBytes (the oldest segment of
// any function goes first); a function may print linesPerSecond lines a second (burstLines at once)
// and what is over is counted and dropped, so one chatty function cannot starve the rest. Writes
// never block the request path: lines are buffered per function (at most one segment's worth; more
// is dropped and counted) and appended in batches every flushMs. Values of the function's secrets
// are replaced by [redacted] before a line is kept, shown or followed.
import { appendFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { redactSecrets } from '../core/secrets.js';
import type { AppLogs, LogEntry, LogQuery, LogStreamName } from './types.js';

export interface LogStoreOptions {
  /** The root folder (<data-dir>/logs). */
  dir: string;
  /** Bytes kept on disk per function (default 1 MiB). */
  perFunctionBytes?: number;
  /** Bytes kept on disk for all functions together (default 256 MiB). */
  totalBytes?: number;
  /** A longer line is cut here (bytes, default 4096). */
  maxLineBytes?: number;
  /** Lines a second a function may print once its burst is spent (default 200). */
  linesPerSecond?: number;
  /** Lines a function may print at once (default 2000). */
  burstLines?: number;
  /** How often buffered lines are appended (default 200 ms). */
  flushMs?: number;
  now?: () => number;
}

/** Whose output a line is, and which values it must never show. */
export interface LogTarget {
  namespace: string;
  app: string;
  /** A function's path (`/api/hello`) or a service's name (`web`). */
  path: string;
  /** Values of the function's secret env vars (replaced when they appear in a line). */
  secrets: readonly string[];
}

/** Segments of one function's ring: the per-function budget is split over this many files. */
const SEGMENTS = 4;
const EXT = '.ndjson';

interface Segment {
  seq: number;
  bytes: number;
}

interface FunctionLog {
  key: string;
  namespace: string;
  app: string;
  path: string;
  dir: string;
  segments: Segment[];
  pending: string[];
  pendingBytes: number;
  tokens: number;
  refilledAt: number;
  dropped: number;
  /** The append under way (appends of one function never overlap). */
  writing: Promise<void>;
  timer: NodeJS.Timeout | null;
  removed: boolean;
}

interface Subscriber {
  appKey: string;
  path: string | null;
  onEntry: (e: LogEntry) => void;
  onEnd: () => void;
}

const enc = (s: string): string => encodeURIComponent(s).replace(/\./g, '%2E');
const appKeyOf = (namespace: string, app: string): string => `${namespace}\0${app}`;

export class LogStore implements AppLogs {
  private readonly fns = new Map<string, FunctionLog>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly perFunctionBytes: number;
  private readonly segmentBytes: number;
  private readonly totalBytes: number;
  private readonly maxLineBytes: number;
  private readonly linesPerSecond: number;
  private readonly burstLines: number;
  private readonly flushMs: number;
  private readonly now: () => number;
  private totalOnDisk = 0;
  private nextSeq = 1;
  private closed = false;

  private constructor(private readonly opts: LogStoreOptions) {
    this.perFunctionBytes = Math.max(4096, opts.perFunctionBytes ?? 1024 * 1024);
    this.segmentBytes = Math.floor(this.perFunctionBytes / SEGMENTS);
    this.totalBytes = Math.max(this.perFunctionBytes, opts.totalBytes ?? 256 * 1024 * 1024);
    this.maxLineBytes = Math.max(64, opts.maxLineBytes ?? 4096);
    this.linesPerSecond = opts.linesPerSecond ?? 200;
    this.burstLines = opts.burstLines ?? 2000;
    this.flushMs = opts.flushMs ?? 200;
    this.now = opts.now ?? Date.now;
  }

  /** Opens the store, finding the segments kept by an earlier run. */
  static async open(opts: LogStoreOptions): Promise<LogStore> {
    const s = new LogStore(opts);
    await mkdir(opts.dir, { recursive: true });
    for (const ns of await readdir(opts.dir)) {
      for (const app of await readdir(join(opts.dir, ns)).catch(() => [])) {
        for (const p of await readdir(join(opts.dir, ns, app)).catch(() => [])) {
          const dir = join(opts.dir, ns, app, p);
          const segments: Segment[] = [];
          for (const f of await readdir(dir).catch(() => [])) {
            const seq = Number(f.slice(0, -EXT.length));
            if (!f.endsWith(EXT) || !Number.isSafeInteger(seq)) continue;
            const bytes = (await stat(join(dir, f))).size;
            segments.push({ seq, bytes });
            s.totalOnDisk += bytes;
            s.nextSeq = Math.max(s.nextSeq, seq + 1);
          }
          segments.sort((a, b) => a.seq - b.seq);
          const fn = s.fnOf(decodeURIComponent(ns), decodeURIComponent(app), decodeURIComponent(p));
          fn.segments = segments;
        }
      }
    }
    return s;
  }

  private fnOf(namespace: string, app: string, path: string): FunctionLog {
    const key = `${appKeyOf(namespace, app)}\0${path}`;
    let fn = this.fns.get(key);
    if (!fn) {
      fn = {
        key, namespace, app, path, dir: join(this.opts.dir, enc(namespace), enc(app), enc(path)), segments: [], pending: [], pendingBytes: 0,
        tokens: this.burstLines, refilledAt: this.now(), dropped: 0, writing: Promise.resolve(), timer: null, removed: false,
      };
      this.fns.set(key, fn);
    }
    return fn;
  }

  /** Keeps one line a function printed. Never throws and never waits. */
  write(target: LogTarget, stream: LogStreamName, text: string): void {
    if (this.closed) return;
    const fn = this.fnOf(target.namespace, target.app, target.path);
    const t = this.now();
    fn.tokens = Math.min(this.burstLines, fn.tokens + ((t - fn.refilledAt) / 1000) * this.linesPerSecond);
    fn.refilledAt = t;
    if (fn.tokens < 1) {
      fn.dropped++;
      return;
    }
    fn.tokens -= 1;
    const line = this.entryOf(fn, stream, this.cut(redactSecrets(text, target.secrets)), t);
    const n = fn.dropped;
    const note = n > 0 ? this.entryOf(fn, 'stderr', `[zerverless] ${n} line${n === 1 ? '' : 's'} dropped (over the rate or buffer limit of the kept logs)`, t) : null;
    // A full buffer drops the line (the note of what was dropped waits with it).
    if (fn.pendingBytes + line.bytes + (note?.bytes ?? 0) > this.segmentBytes) {
      fn.dropped++;
      return;
    }
    if (note) this.keep(fn, note);
    fn.dropped = 0;
    this.keep(fn, line);
  }

  private cut(line: string): string {
    if (line.length * 3 <= this.maxLineBytes) return line;
    const b = Buffer.from(line, 'utf8');
    if (b.length <= this.maxLineBytes) return line;
    return `${b.subarray(0, this.maxLineBytes).toString('utf8').replace(/\uFFFD$/, '')}…`;
  }

  private entryOf(fn: FunctionLog, stream: LogStreamName, line: string, t: number): { entry: LogEntry; json: string; bytes: number } {
    const entry: LogEntry = { at: new Date(t).toISOString(), stream, line, ...(fn.path.startsWith('/') ? { function: fn.path } : { service: fn.path }) };
    const json = `${JSON.stringify(entry)}\n`;
    return { entry, json, bytes: Buffer.byteLength(json) };
  }

  /** Buffers one line (the caller checked that it fits) and tells the followers. */
  private keep(fn: FunctionLog, { entry, json, bytes }: { entry: LogEntry; json: string; bytes: number }): void {
    fn.pending.push(json);
    fn.pendingBytes += bytes;
    const appKey = appKeyOf(fn.namespace, fn.app);
    for (const s of this.subscribers) {
      if (s.appKey === appKey && (s.path === null ? fn.path.startsWith('/') : s.path === fn.path)) s.onEntry(entry);
    }
    if (!fn.timer) {
      fn.timer = setTimeout(() => {
        fn.timer = null;
        void this.flush(fn);
      }, this.flushMs);
      fn.timer.unref();
    }
  }

  /** Appends what is buffered; resolves once every append of the function so far is on disk. */
  private flush(fn: FunctionLog): Promise<void> {
    if (fn.timer) {
      clearTimeout(fn.timer);
      fn.timer = null;
    }
    if (fn.pending.length === 0) return fn.writing;
    const data = fn.pending.join('');
    const bytes = fn.pendingBytes;
    fn.pending = [];
    fn.pendingBytes = 0;
    fn.writing = fn.writing.then(async () => {
      if (fn.removed) return;
      let cur = fn.segments.at(-1);
      if (!cur || cur.bytes >= this.segmentBytes) {
        cur = { seq: this.nextSeq++, bytes: 0 };
        fn.segments.push(cur);
      }
      await mkdir(fn.dir, { recursive: true });
      await appendFile(join(fn.dir, `${cur.seq}${EXT}`), data);
      cur.bytes += bytes;
      this.totalOnDisk += bytes;
      while (fn.segments.length > 1 && fn.segments.reduce((n, s) => n + s.bytes, 0) > this.perFunctionBytes) await this.drop(fn);
      while (this.totalOnDisk > this.totalBytes && (await this.dropOldest())) { /* until under the total budget */ }
    }).catch(() => undefined);
    return fn.writing;
  }

  /** Removes the oldest segment of `fn`. */
  private async drop(fn: FunctionLog): Promise<void> {
    const seg = fn.segments.shift();
    if (!seg) return;
    this.totalOnDisk -= seg.bytes;
    await rm(join(fn.dir, `${seg.seq}${EXT}`), { force: true });
  }

  /** Removes the oldest segment of any function; false when there is none left to remove. */
  private async dropOldest(): Promise<boolean> {
    let oldest: FunctionLog | null = null;
    for (const fn of this.fns.values()) {
      const s = fn.segments[0];
      if (s && (!oldest || s.seq < (oldest.segments[0] as Segment).seq)) oldest = fn;
    }
    if (!oldest) return false;
    await this.drop(oldest);
    return true;
  }

  /** The logs of one source, or (null) of every function (not the services). */
  private functionsOf(namespace: string, app: string, fn: string | null): FunctionLog[] {
    const prefix = `${appKeyOf(namespace, app)}\0`;
    return [...this.fns.values()].filter((f) => f.key.startsWith(prefix) && !f.removed && (fn === null ? f.path.startsWith('/') : f.path === fn));
  }

  async read(namespace: string, app: string, fn: string | null, q: LogQuery = {}): Promise<LogEntry[]> {
    const out: LogEntry[] = [];
    for (const f of this.functionsOf(namespace, app, fn)) {
      await this.flush(f);
      for (const seg of [...f.segments]) {
        const text = await readFile(join(f.dir, `${seg.seq}${EXT}`), 'utf8').catch(() => '');
        for (const l of text.split('\n')) {
          if (l === '') continue;
          try {
            const e = JSON.parse(l) as LogEntry;
            if (q.since === undefined || Date.parse(e.at) >= q.since) out.push(e);
          } catch { /* a line cut by a crash */ }
        }
      }
    }
    if (fn === null) out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    return q.tail === undefined ? out : q.tail === 0 ? [] : out.slice(-q.tail);
  }

  follow(namespace: string, app: string, fn: string | null, onEntry: (e: LogEntry) => void, onEnd: () => void): () => void {
    const s: Subscriber = { appKey: appKeyOf(namespace, app), path: fn, onEntry, onEnd };
    if (this.closed) {
      queueMicrotask(onEnd);
      return () => undefined;
    }
    this.subscribers.add(s);
    return () => void this.subscribers.delete(s);
  }

  /** Bytes on disk now (every function). */
  get bytesOnDisk(): number {
    return this.totalOnDisk;
  }

  /** Bytes buffered in memory now, not yet on disk (every function). */
  get bytesBuffered(): number {
    let n = 0;
    for (const f of this.fns.values()) n += f.pendingBytes;
    return n;
  }

  /** Waits until every buffered line is on disk. */
  async flushAll(): Promise<void> {
    await Promise.all([...this.fns.values()].map((f) => this.flush(f)));
  }

  /** Forgets the kept output of an application (it was removed). */
  async removeApp(namespace: string, app: string): Promise<void> {
    const prefix = `${appKeyOf(namespace, app)}\0`;
    const fns = [...this.fns.values()].filter((f) => f.key.startsWith(prefix));
    for (const f of fns) {
      f.removed = true;
      f.pending = [];
      f.pendingBytes = 0;
      if (f.timer) clearTimeout(f.timer);
      f.timer = null;
      this.fns.delete(f.key);
    }
    await Promise.all(fns.map((f) => f.writing));
    for (const f of fns) for (const s of f.segments) this.totalOnDisk -= s.bytes;
    await rm(join(this.opts.dir, enc(namespace), enc(app)), { recursive: true, force: true });
  }

  /** Writes what is buffered and ends every follower (server shutdown). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const s of subs) s.onEnd();
    await this.flushAll();
  }
}
