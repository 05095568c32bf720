// Reads git objects of a bare clone through one long-lived `git cat-file --batch-command` per clone,
// kept open across syncs: a sync reads its commit, trees and blobs without starting a git process
// per read (or checking anything out).
//
// One BatchReader per clone. Requests are written to git's stdin in order and matched to its
// answers in the same order (git answers each command in turn), so many can be in flight at once.
// `info` answers `<oid> <type> <size>`; `contents` answers that line and the bytes. A read over a
// size limit asks `info` first and is refused from that line, before git sends a byte of it.
// Every request has a time limit: when the oldest one passes it, the process is killed and every
// request in flight fails with GIT_TIMEOUT. A process that dies (killed, crashed) fails what was
// in flight; requests are retried once on a fresh process, so a kill -9 between syncs is invisible.
//
// The pool (BatchReaders) keeps at most `max` processes (least recently used closed first) and
// closes a process after `idleMs` without requests; close() ends them all (server shutdown).
//
// The git process cap (--max-git-processes, git-cli/limit.ts): starting a batch process takes one
// of the git slots for the spawn only and gives it back once git runs. An open batch process holds
// no slot, idle or busy — holding one for its lifetime would let a few open clones starve every
// fetch and ls-remote. Their number is bounded by the pool instead (`max`, default 16), and each
// serves one clone's reads one at a time, which is the work checkout-index did under a slot before.
// Batch processes are spawned on the calling thread, not the spawner thread (git-cli/spawner.ts):
// their pipes live across syncs, and the one fork per clone is off the per-sync path.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { ZvError } from '../../errors/registry.js';
import { gitConfigArgs, gitEnv, trimMessage } from '../../git-cli/exec.js';
import { gitSlots } from '../../git-cli/limit.js';

export interface ObjectInfo {
  oid: string;
  type: string;
  size: number;
}

export interface BatchOptions {
  git: string;
  repoDir: string;
  /** GIT_CEILING_DIRECTORIES and the like (merged over gitEnv('local')). */
  env: Record<string, string>;
  allowFile: boolean;
  /** Time limit of one request, counted from when it was asked (default 120 s). */
  timeoutMs: number;
}

interface Request {
  line: string;
  kind: 'info' | 'contents';
  deadline: number;
  resolve: (v: { info: ObjectInfo; data?: Buffer } | null) => void;
  reject: (e: Error) => void;
}

const HEADER = /^([0-9a-f]{40}|[0-9a-f]{64}) ([a-z]+) (\d+)$/;
// Object names we send: hex ids, `<id>^{commit}`, refs/heads/<validated branch>.
const SAFE_NAME = /^[^\s\0]+$/;

/** Marks failures where the process died under a request (retried once on a fresh process). */
class ProcessGone extends ZvError {}

/** One `git cat-file --batch-command` on one clone. */
export class BatchReader {
  private child: ChildProcessWithoutNullStreams | null = null;
  private starting: Promise<ChildProcessWithoutNullStreams> | null = null;
  private readonly queue: Request[] = [];
  private pending: Buffer = Buffer.alloc(0);
  // The body being read for the request at the head of the queue.
  private body: { buf: Buffer; got: number; info: ObjectInfo } | null = null;
  private stderr = '';
  private timer: NodeJS.Timeout | null = null;
  private timerFor: Request | null = null;
  private closed = false;
  /** Processes started (1 + restarts); tests and metrics. */
  starts = 0;
  lastUsed = Date.now();

  constructor(private readonly opts: BatchOptions) {}

  /** The process id of the running git (tests: kill -9 it). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get busy(): boolean {
    return this.queue.length > 0;
  }

  /** `<oid> <type> <size>` of an object name, or null when the clone has no such object. */
  async info(name: string): Promise<ObjectInfo | null> {
    return (await this.ask('info', name))?.info ?? null;
  }

  /** The object's type and bytes, or null when missing; refused over `maxBytes` before reading it. */
  async contents(name: string, opts?: { maxBytes?: number; what?: string }): Promise<{ info: ObjectInfo; data: Buffer } | null> {
    if (opts?.maxBytes !== undefined) {
      const info = await this.info(name);
      if (!info) return null;
      if (info.size > opts.maxBytes) throw tooLarge(opts.what ?? name, info.size, opts.maxBytes);
    }
    const r = await this.ask('contents', name);
    return r ? { info: r.info, data: r.data ?? Buffer.alloc(0) } : null;
  }

  /** Ends the process; requests in flight fail. */
  close(): void {
    this.closed = true;
    this.kill(new ZvError('GIT_ERROR', 'git cat-file was closed'));
  }

  private async ask(kind: 'info' | 'contents', name: string): Promise<{ info: ObjectInfo; data?: Buffer } | null> {
    if (!SAFE_NAME.test(name)) throw new ZvError('GIT_ERROR', `bad object name ${JSON.stringify(name.slice(0, 80))}`);
    try {
      return await this.once(kind, name);
    } catch (e) {
      if (!(e instanceof ProcessGone) || this.closed) throw e;
      return this.once(kind, name);
    }
  }

  private async once(kind: 'info' | 'contents', name: string): Promise<{ info: ObjectInfo; data?: Buffer } | null> {
    if (this.closed) throw new ZvError('GIT_ERROR', 'git cat-file was closed');
    const child = await this.process();
    if (this.child !== child) throw new ProcessGone('GIT_ERROR', `git cat-file on ${this.opts.repoDir} stopped`);
    this.lastUsed = Date.now();
    return new Promise((resolve, reject) => {
      const req: Request = { line: `${kind} ${name}\n`, kind, deadline: Date.now() + this.opts.timeoutMs, resolve, reject };
      this.queue.push(req);
      if (this.queue.length === 1) this.setRef(true);
      this.arm();
      child.stdin.write(req.line);
    });
  }

  private process(): Promise<ChildProcessWithoutNullStreams> {
    if (this.child) return Promise.resolve(this.child);
    this.starting ??= this.start().finally(() => { this.starting = null; });
    return this.starting;
  }

  private async start(): Promise<ChildProcessWithoutNullStreams> {
    const release = await gitSlots().acquire();
    let child: ChildProcessWithoutNullStreams;
    try {
      if (this.closed) throw new ZvError('GIT_ERROR', 'git cat-file was closed');
      const args = [...gitConfigArgs('local', this.opts.allowFile), `--git-dir=${this.opts.repoDir}`, 'cat-file', '--batch-command'];
      child = spawn(this.opts.git, args, {
        cwd: this.opts.repoDir, env: gitEnv('local', { GIT_NO_REPLACE_OBJECTS: '1', ...this.opts.env }), stdio: ['pipe', 'pipe', 'pipe'],
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (e) {
      throw new ZvError('GIT_ERROR', `cannot run git (${this.opts.git}) cat-file: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      release();
    }
    this.starts++;
    this.stderr = '';
    this.pending = Buffer.alloc(0);
    this.body = null;
    child.stdout.on('data', (b: Buffer) => { if (this.child === child) this.onData(b); });
    child.stderr.on('data', (b: Buffer) => { if (this.stderr.length < 8192) this.stderr += b.toString('utf8'); });
    child.stdin.on('error', () => undefined); // EPIPE when git died: reported by 'exit'
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      const why = trimMessage(this.stderr) || (signal ? `killed by ${signal}` : `exit code ${code}`);
      this.child = null;
      this.failAll(new ProcessGone('GIT_ERROR', `git cat-file on ${this.opts.repoDir} stopped: ${why}`));
    });
    this.child = child;
    this.setRef(this.queue.length > 0);
    return child;
  }

  /** Node waits for a process only while requests are in flight: an idle reader never holds it open. */
  private setRef(on: boolean): void {
    const c = this.child;
    if (!c) return;
    const streams = [c.stdin, c.stdout, c.stderr] as unknown as { ref?: () => void; unref?: () => void }[];
    if (on) { c.ref(); for (const s of streams) s.ref?.(); } else { c.unref(); for (const s of streams) s.unref?.(); }
  }

  private onData(b: Buffer): void {
    this.pending = this.pending.length === 0 ? b : Buffer.concat([this.pending, b]);
    for (;;) {
      const head = this.queue[0];
      if (this.body) {
        const { buf, info } = this.body;
        const need = buf.length - this.body.got;
        const n = Math.min(need, this.pending.length);
        this.pending.copy(buf, this.body.got, 0, n);
        this.body.got += n;
        this.pending = this.pending.subarray(n);
        if (this.body.got < buf.length || this.pending.length === 0) return; // the body, then its LF
        this.pending = this.pending.subarray(1);
        this.body = null;
        this.done({ info, data: buf });
        continue;
      }
      const nl = this.pending.indexOf(10);
      if (nl < 0) return;
      const line = this.pending.subarray(0, nl).toString('utf8');
      this.pending = this.pending.subarray(nl + 1);
      if (!head) { this.kill(new ProcessGone('GIT_ERROR', `git cat-file answered nothing asked: ${line.slice(0, 200)}`)); return; }
      const m = HEADER.exec(line);
      if (!m) {
        if (/ (missing|ambiguous)$/.test(line)) { this.done(null); continue; }
        this.kill(new ZvError('GIT_ERROR', `git cat-file answered an unexpected line: ${line.slice(0, 200)}`));
        return;
      }
      const info: ObjectInfo = { oid: m[1] as string, type: m[2] as string, size: Number(m[3]) };
      if (head.kind === 'info') { this.done({ info }); continue; }
      this.body = { buf: Buffer.allocUnsafe(info.size), got: 0, info };
    }
  }

  private done(v: { info: ObjectInfo; data?: Buffer } | null): void {
    const req = this.queue.shift();
    if (this.queue.length === 0) this.setRef(false);
    this.arm();
    this.lastUsed = Date.now();
    req?.resolve(v);
  }

  /** One timer, for the oldest request in flight. */
  private arm(): void {
    const head = this.queue[0] ?? null;
    if (head === this.timerFor) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerFor = head;
    if (!head) return;
    this.timer = setTimeout(() => {
      this.kill(new ZvError('GIT_TIMEOUT', `git cat-file on ${this.opts.repoDir} took longer than ${this.opts.timeoutMs} ms and was stopped`));
    }, Math.max(0, head.deadline - Date.now()));
  }

  private kill(err: Error): void {
    const c = this.child;
    this.child = null;
    if (c) {
      try { c.kill('SIGKILL'); } catch { /* gone */ }
    }
    this.failAll(err);
  }

  private failAll(err: Error): void {
    const all = this.queue.splice(0);
    this.body = null;
    this.pending = Buffer.alloc(0);
    this.arm();
    for (const r of all) r.reject(err);
  }
}

export function tooLarge(what: string, size: number, max: number): ZvError {
  return new ZvError('FILE_TOO_LARGE', `${what} is ${size} bytes, over the limit of ${max}`, { size, maxBytes: max });
}

/** At most `max` batch processes, least recently used closed first; each closed after `idleMs` unused. */
export class BatchReaders {
  private readonly readers = new Map<string, BatchReader>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly opts: { max?: number; idleMs?: number; make: (repoDir: string) => BatchOptions }) {}

  get size(): number {
    return this.readers.size;
  }

  /** The reader of `repoDir` (made on first use; its process starts on its first request). */
  for(repoDir: string): BatchReader {
    let r = this.readers.get(repoDir);
    if (r) {
      this.readers.delete(repoDir); // most recently used last
    } else {
      r = new BatchReader(this.opts.make(repoDir));
      const max = this.opts.max ?? 16;
      for (const [dir, old] of this.readers) {
        if (this.readers.size < max) break;
        if (old.busy) continue;
        old.close();
        this.readers.delete(dir);
      }
    }
    this.readers.set(repoDir, r);
    this.sweep();
    return r;
  }

  /** Closes the reader of `repoDir` (the clone was made anew: a running process still sees the old one). */
  drop(repoDir: string): void {
    this.readers.get(repoDir)?.close();
    this.readers.delete(repoDir);
  }

  /** The reader of `repoDir` if one is open (tests). */
  peek(repoDir: string): BatchReader | undefined {
    return this.readers.get(repoDir);
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
  }

  private sweep(): void {
    if (this.sweeper) return;
    const idle = this.opts.idleMs ?? 60_000;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [dir, r] of this.readers) {
        if (!r.busy && now - r.lastUsed >= idle) {
          r.close();
          this.readers.delete(dir);
        }
      }
      if (this.readers.size === 0 && this.sweeper) {
        clearInterval(this.sweeper);
        this.sweeper = null;
      }
    }, Math.max(1_000, Math.min(idle, 10_000)));
    this.sweeper.unref();
  }
}
