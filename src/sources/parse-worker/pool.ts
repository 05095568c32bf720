// Parsing off the main thread, with a time limit (issue 8.1): a small pool of worker threads that
// run the core parsers (which already bound size, nesting, keys and items; see
// core/manifest/bounds.ts). A parse that runs over `timeoutMs` (counted from when a ready worker
// takes it, so a cold start is not counted) ends with PARSE_TIMEOUT and its worker is terminated
// and replaced, so the event loop (the gateway, /healthz) never waits on a parser.
// - Workers start lazily, at most `size`; jobs queue in order. Idle workers are unref'd (they never
//   keep a process alive); a worker with a job is ref'd (a CLI waiting on a parse does not exit).
// - Under tsx (tests) the worker runs worker.ts through tsx's API; built, the worker.js next to this file.
import { Worker } from 'node:worker_threads';
import type { Diagnostic } from '../../core/desired.js';
import type { FromWorker, ParseAnswer, ParseRequest, ToWorker } from './protocol.js';

export interface ParsePoolOptions {
  /** Worker threads at most (default 2). */
  size?: number;
  /** Time limit of one parse in ms (default PARSE_TIME_LIMIT_MS). */
  timeoutMs?: number;
  /** Heap limit of a worker in MiB (default 256). */
  maxHeapMb?: number;
}

/** The time limit of one parse (documented in docs/errors.md, PARSE_TIMEOUT). */
export const PARSE_TIME_LIMIT_MS = 2000;

/** What a parse ends with when its worker failed rather than the parser answering. */
export interface ParseFailure {
  errors: Diagnostic[];
  code: 'PARSE_TIMEOUT' | 'INTERNAL';
}

interface Job {
  id: number;
  req: ParseRequest;
  timeoutMs: number;
  resolve(r: unknown): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  gone: boolean;
  job: Job | null;
  timer: ReturnType<typeof setTimeout> | null;
}

function spawnWorker(maxHeapMb: number): Worker {
  const resourceLimits = { maxOldGenerationSizeMb: maxHeapMb };
  if (import.meta.url.endsWith('.ts')) {
    const entry = new URL('./worker.ts', import.meta.url).href;
    const tsx = import.meta.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
    const code = `import(${JSON.stringify(tsx)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`;
    return new Worker(code, { eval: true, execArgv: [], resourceLimits });
  }
  return new Worker(new URL('./worker.js', import.meta.url), { execArgv: [], resourceLimits });
}

const fail = (req: ParseRequest, code: ParseFailure['code'], message: string): ParseFailure => ({
  errors: [{ file: req.file, line: 1, col: 1, message }],
  code,
});

export class ParsePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private readonly size: number;
  private readonly timeoutMs: number;
  private readonly maxHeapMb: number;

  constructor(opts: ParsePoolOptions = {}) {
    this.size = Math.max(1, opts.size ?? 2);
    this.timeoutMs = opts.timeoutMs ?? PARSE_TIME_LIMIT_MS;
    this.maxHeapMb = opts.maxHeapMb ?? 256;
  }

  /** Parses in a worker: the core parser's result, or a ParseFailure (time limit, worker death). */
  parse<R extends ParseRequest>(req: R, opts: { timeoutMs?: number } = {}): Promise<ParseAnswer<R> | ParseFailure> {
    if (this.closed) return Promise.resolve(fail(req, 'INTERNAL', 'the parse pool is closed'));
    return new Promise((resolve) => {
      this.queue.push({ id: this.nextId++, req, timeoutMs: opts.timeoutMs ?? this.timeoutMs, resolve: resolve as (r: unknown) => void });
      this.schedule();
    });
  }

  /** Terminates every worker; pending parses end with INTERNAL. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve(fail(job.req, 'INTERNAL', 'the parse pool is closed'));
    await Promise.all(this.slots.map((s) => this.retire(s, 'the parse pool is closed')));
  }

  private schedule(): void {
    while (this.queue.length) {
      const slot = this.slots.find((s) => !s.gone && !s.job) ?? (this.slots.length < this.size ? this.spawn() : undefined);
      if (!slot) return;
      const job = this.queue.shift() as Job;
      slot.job = job;
      slot.worker.ref();
      if (slot.ready) this.start(slot);
    }
  }

  private spawn(): Slot {
    const worker = spawnWorker(this.maxHeapMb);
    worker.unref();
    const slot: Slot = { worker, ready: false, gone: false, job: null, timer: null };
    this.slots.push(slot);
    worker.on('message', (msg: FromWorker) => {
      if (msg.t === 'ready') {
        slot.ready = true;
        if (slot.job) this.start(slot);
        return;
      }
      const job = slot.job;
      if (!job || job.id !== msg.id) return;
      this.finish(slot);
      if (msg.t === 'done') job.resolve(msg.result);
      else job.resolve(fail(job.req, 'INTERNAL', `the parser failed: ${msg.message}`));
      this.schedule();
    });
    worker.on('error', (e) => void this.retire(slot, `the parse worker failed: ${e.message}`));
    worker.on('exit', () => void this.retire(slot, 'the parse worker exited'));
    return slot;
  }

  private start(slot: Slot): void {
    const job = slot.job;
    if (!job || slot.gone) return;
    slot.timer = setTimeout(() => {
      slot.timer = null;
      const seconds = job.timeoutMs / 1000;
      void this.retire(slot, `parsing took longer than ${seconds} s (the time limit of one file); simplify the file`, 'PARSE_TIMEOUT');
    }, job.timeoutMs);
    slot.worker.postMessage({ t: 'parse', id: job.id, req: job.req } satisfies ToWorker);
  }

  private finish(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.job = null;
    slot.worker.unref();
  }

  /** Removes a worker for good; its job (if any) ends with `message`; the queue moves on to a new worker. */
  private async retire(slot: Slot, message: string, code: ParseFailure['code'] = 'INTERNAL'): Promise<void> {
    if (slot.gone) return;
    slot.gone = true;
    const job = slot.job;
    this.finish(slot);
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    if (job) job.resolve(fail(job.req, code, message));
    await slot.worker.terminate().catch(() => undefined);
    if (!this.closed) this.schedule();
  }
}
