// Main-thread side of the Lua runtime: a small elastic pool of worker threads shared by all Lua
// functions, so Lua never blocks the Node event loop.
// - A worker runs one batch of jobs at a time, one job after another; workers start lazily, up to
//   `maxWorkers`. When calls queue, a worker that frees up takes several of them in one message
//   (its share of the queue, at most MAX_BATCH), and answers them in one message (or one per
//   FLUSH_MS of a long batch): a postMessage and its structured clone per batch instead of per call.
// - Any idle worker can serve any function: it gets the definition once (`define`) and caches the
//   compiled state; idle workers that already know the function are preferred.
// - One function never holds more than `maxWorkers - 1` workers, so one misbehaving function cannot
//   starve the others (it also means `maxWorkers` is at least 2).
// - Each job has a hard deadline (its timeout + `graceMs`, from when the worker started it, which it
//   publishes in a shared progress buffer): a worker that has not finished it by then (e.g. Lua
//   code catching the hook's timeout error, or a long C call) is terminated and replaced; the jobs of
//   its batch that had not started go back to the front of the queue.
// - A worker whose WASM memory grew past `recycleMb` is retired when it becomes idle.
import { Worker } from 'node:worker_threads';
import { ZvError } from '../../errors/registry.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { FunctionLogger } from '../types.js';
import { PROGRESS_BYTES, PROGRESS_IDLE, progressId, progressViews } from './protocol.js';
import type { FromWorker, JobResult, LuaFunctionDef, RunJob, ToWorker, WorkerData } from './protocol.js';

/** Most jobs sent to a worker in one message. */
const MAX_BATCH = 16;

export interface PoolOptions {
  maxWorkers: number;
  graceMs: number;
  recycleMb: number;
}

interface PoolFunction {
  def: LuaFunctionDef;
  log: FunctionLogger;
}

interface Job {
  id: number;
  key: string;
  kind: 'compile' | 'invoke';
  req?: FunctionRequest;
  /** The definition it was sent with (its deadline holds even if the function is unloaded meanwhile). */
  def?: LuaFunctionDef;
  resolve: (r: FunctionResponse | undefined) => void;
  reject: (e: ZvError) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  gone: boolean;
  /** The batch in flight: jobs not answered yet, in the order the worker runs them. */
  jobs: Job[];
  /** In-flight jobs per function (a function counts once per slot against perFunction). */
  keys: Map<string, number>;
  /** When the batch was sent (or the worker became ready, if later). */
  sentAt: number;
  timer: ReturnType<typeof setTimeout> | null;
  known: Set<string>;
  heapBytes: number;
  started: Promise<void>;
  progress: { job: Int32Array; since: Float64Array };
}

/** Starts a worker running worker.ts (under tsx) or the compiled worker.js next to this file. */
function spawnWorker(workerData: WorkerData): Worker {
  if (import.meta.url.endsWith('.ts')) {
    const entry = new URL('./worker.ts', import.meta.url).href;
    const tsx = import.meta.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
    const code = `import(${JSON.stringify(tsx)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`;
    return new Worker(code, { eval: true, execArgv: [], workerData });
  }
  return new Worker(new URL('./worker.js', import.meta.url), { execArgv: [], workerData });
}

export class LuaPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly functions = new Map<string, PoolFunction>();
  private readonly running = new Map<string, number>();
  private nextJob = 1;
  private closed = false;
  private broken: string | null = null;

  constructor(private readonly opts: PoolOptions) {}

  private get perFunction(): number {
    return Math.max(1, this.opts.maxWorkers - 1);
  }

  /** Functions registered and not yet unregistered. */
  get registered(): number {
    return this.functions.size;
  }

  register(key: string, def: LuaFunctionDef, log: FunctionLogger): void {
    this.functions.set(key, { def, log });
  }

  /** Forgets a function: queued calls are refused and every worker frees its state. */
  unregister(key: string): void {
    this.functions.delete(key);
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const job = this.queue[i];
      if (job?.key !== key) continue;
      this.queue.splice(i, 1);
      job.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded'));
    }
    for (const slot of this.slots) {
      if (slot.known.delete(key)) this.send(slot, { t: 'drop', key });
    }
  }

  run(key: string, kind: 'compile' | 'invoke', req?: FunctionRequest): Promise<FunctionResponse | undefined> {
    if (this.closed) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The Lua runtime is closed'));
    if (this.broken) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', `The Lua runtime cannot start: ${this.broken}`));
    if (!this.functions.has(key)) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function is not loaded'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextJob++, key, kind, req, resolve, reject });
      this.schedule();
    });
  }

  /** Makes sure one worker can start; rejects with the reason when it cannot. */
  async warm(): Promise<void> {
    if (this.broken) throw new Error(this.broken);
    const slot = this.slots.find((s) => !s.gone) ?? this.spawn();
    await slot.started;
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new ZvError('FUNCTION_UNAVAILABLE', 'The Lua runtime is closed');
    for (const job of this.queue.splice(0)) job.reject(err);
    await Promise.all([...this.slots].map((slot) => this.retire(slot, err)));
  }

  private schedule(): void {
    // slots that can take a batch now (idle ones and ones that may still start): the queue is
    // shared out among them
    let free = this.opts.maxWorkers - this.slots.length;
    for (const s of this.slots) if (!s.gone && s.jobs.length === 0) free++;
    let i = 0;
    while (i < this.queue.length && free > 0) {
      const job = this.queue[i];
      if (!job) break;
      if ((this.running.get(job.key) ?? 0) >= this.perFunction) {
        i++;
        continue;
      }
      const slot = this.pickSlot(job.key);
      if (!slot) return;
      const share = Math.min(MAX_BATCH, Math.ceil((this.queue.length - i) / free));
      free--;
      this.queue.splice(i, 1);
      const batch = [job];
      const keys = new Set([job.key]);
      for (let k = i; k < this.queue.length && batch.length < share;) {
        const next = this.queue[k];
        if (next && (keys.has(next.key) || (this.running.get(next.key) ?? 0) < this.perFunction)) {
          this.queue.splice(k, 1);
          batch.push(next);
          keys.add(next.key);
        } else k++;
      }
      this.start(slot, batch);
    }
  }

  private pickSlot(key: string): Slot | null {
    const idle = this.slots.filter((s) => !s.gone && s.jobs.length === 0);
    const best = idle.find((s) => s.known.has(key)) ?? idle[0];
    if (best) return best;
    return this.slots.length < this.opts.maxWorkers ? this.spawn() : null;
  }

  private spawn(): Slot {
    const progress = new SharedArrayBuffer(PROGRESS_BYTES);
    const views = progressViews(progress);
    Atomics.store(views.job, 0, PROGRESS_IDLE);
    const worker = spawnWorker({ progress });
    worker.unref();
    let onStarted: () => void = () => {};
    let onFailed: (e: Error) => void = () => {};
    const started = new Promise<void>((res, rej) => {
      onStarted = res;
      onFailed = rej;
    });
    started.catch(() => {});
    const slot: Slot = {
      worker, ready: false, gone: false, jobs: [], keys: new Map(), sentAt: 0, timer: null, known: new Set(), heapBytes: 0, started, progress: views,
    };
    this.slots.push(slot);
    worker.on('message', (msg: FromWorker) => {
      switch (msg.t) {
        case 'ready':
          slot.ready = true;
          slot.sentAt = Date.now();
          onStarted();
          if (slot.jobs.length > 0) this.armTimer(slot);
          break;
        case 'fatal':
          this.broken = msg.message;
          onFailed(new Error(msg.message));
          for (const job of this.queue.splice(0)) job.reject(new ZvError('FUNCTION_UNAVAILABLE', `The Lua runtime cannot start: ${msg.message}`));
          void this.retire(slot, new ZvError('FUNCTION_UNAVAILABLE', `The Lua runtime cannot start: ${msg.message}`));
          break;
        case 'log': {
          const fn = this.functions.get(msg.key);
          try {
            fn?.log(msg.stream, msg.line);
          } catch {
            // a failing logger must not break the pool
          }
          break;
        }
        case 'done':
          this.finish(slot, msg.results, msg.heapBytes);
          break;
      }
    });
    worker.on('error', (e) => {
      onFailed(e);
      void this.retire(slot, new ZvError('FUNCTION_UNAVAILABLE', `The Lua worker failed: ${e.message}`));
    });
    worker.on('exit', () => {
      onFailed(new Error('the Lua worker exited'));
      void this.retire(slot, new ZvError('FUNCTION_UNAVAILABLE', 'The Lua worker exited'));
    });
    return slot;
  }

  private send(slot: Slot, msg: ToWorker): void {
    if (!slot.gone) slot.worker.postMessage(msg);
  }

  private start(slot: Slot, batch: Job[]): void {
    const jobs: RunJob[] = [];
    for (const job of batch) {
      const fn = this.functions.get(job.key);
      if (!fn) {
        job.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function is not loaded'));
        continue;
      }
      const n = slot.keys.get(job.key) ?? 0;
      if (n === 0) this.running.set(job.key, (this.running.get(job.key) ?? 0) + 1);
      slot.keys.set(job.key, n + 1);
      if (!slot.known.has(job.key)) {
        slot.known.add(job.key);
        this.send(slot, { t: 'define', key: job.key, def: fn.def });
      }
      job.def = fn.def;
      slot.jobs.push(job);
      jobs.push(job.kind === 'invoke'
        ? { kind: 'invoke', job: job.id, key: job.key, req: job.req as FunctionRequest }
        : { kind: 'compile', job: job.id, key: job.key });
    }
    if (jobs.length === 0) {
      this.schedule();
      return;
    }
    slot.worker.ref();
    slot.sentAt = Date.now();
    // one string: cloned as one copy, where the request objects would be serialised field by field
    this.send(slot, { t: 'run', jobs: JSON.stringify(jobs) });
    if (slot.ready) this.armTimer(slot);
  }

  /** The error a job gets when its worker is stopped for overrunning it. */
  private overrun(job: Job): ZvError {
    const def = job.def ?? this.functions.get(job.key)?.def;
    if (!def) return new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded');
    return job.kind === 'compile'
      ? new ZvError('FUNCTION_COMPILE_ERROR', `${def.filename}: the top-level code did not finish within ${def.timeoutMs} ms`)
      : new ZvError('FUNCTION_TIMEOUT', `The function did not answer within ${def.timeoutMs} ms`);
  }

  private timeoutOf(job: Job): number {
    return (job.def ?? this.functions.get(job.key)?.def)?.timeoutMs ?? 0;
  }

  /**
   * The backstop: fires at the earliest moment a job of the batch could be past its hard deadline,
   * reads which job the worker runs since when, and either stops the worker or waits on.
   */
  private armTimer(slot: Slot, delayMs?: number): void {
    if (slot.timer || slot.jobs.length === 0) return;
    const first = slot.jobs[0] as Job;
    const delay = delayMs ?? this.timeoutOf(first) + this.opts.graceMs;
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (slot.gone || slot.jobs.length === 0) return;
      const id = Atomics.load(slot.progress.job, 0);
      const since = slot.progress.since[0] ?? 0;
      const current = slot.jobs.find((j) => progressId(j.id) === id);
      let job: Job;
      let deadline: number;
      if (current) {
        job = current;
        deadline = since + this.timeoutOf(current) + this.opts.graceMs;
      } else {
        // the worker has not started this batch yet, or has run all of it and its answer is on
        // its way: the first job waiting counts from when the batch was sent or the worker idled
        job = slot.jobs[0] as Job;
        deadline = Math.max(since, slot.sentAt) + this.timeoutOf(job) + this.opts.graceMs;
      }
      const now = Date.now();
      if (now >= deadline) void this.retire(slot, this.overrun(job), job);
      else this.armTimer(slot, deadline - now);
    }, Math.max(1, delay));
    slot.timer.unref();
  }

  /** Ends the jobs of `results` (in the order they ran), frees the slot once its batch is done. */
  private finish(slot: Slot, results: JobResult[], heapBytes: number): void {
    slot.heapBytes = heapBytes;
    for (const outcome of results) {
      const at = slot.jobs.findIndex((j) => j.id === outcome.job);
      if (at < 0) continue;
      const job = slot.jobs[at] as Job;
      slot.jobs.splice(at, 1);
      this.releaseIn(slot, job.key);
      if (outcome.ok) job.resolve(outcome.response);
      else {
        if (job.kind === 'compile') slot.known.delete(job.key);
        job.reject(new ZvError(outcome.code, outcome.message));
      }
    }
    if (slot.jobs.length > 0 || slot.gone) return;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.worker.unref();
    if (heapBytes > this.opts.recycleMb * 1024 * 1024) void this.retire(slot, null);
    this.schedule();
  }

  /** One job of `key` on `slot` ended. */
  private releaseIn(slot: Slot, key: string): void {
    const n = (slot.keys.get(key) ?? 1) - 1;
    if (n > 0) {
      slot.keys.set(key, n);
      return;
    }
    slot.keys.delete(key);
    this.release(key);
  }

  private release(key: string): void {
    const n = (this.running.get(key) ?? 1) - 1;
    if (n > 0) this.running.set(key, n);
    else this.running.delete(key);
  }

  /**
   * Removes a worker for good. Its batch: the job it ran (`culprit`, or the one its progress names)
   * is rejected with `err`, jobs it had run whose answers are lost with it are rejected as stopped,
   * and jobs it had not started go back to the front of the queue (all rejected when closing).
   */
  private async retire(slot: Slot, err: ZvError | null, culprit?: Job): Promise<void> {
    if (slot.gone) return;
    slot.gone = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    const jobs = slot.jobs;
    slot.jobs = [];
    for (const key of slot.keys.keys()) this.release(key);
    slot.keys.clear();
    const stopped = err ?? new ZvError('FUNCTION_UNAVAILABLE', 'The Lua worker stopped');
    if (this.closed || this.broken) {
      for (const job of jobs) job.reject(stopped);
    } else {
      const id = Atomics.load(slot.progress.job, 0);
      let at = culprit ? jobs.indexOf(culprit) : jobs.findIndex((j) => progressId(j.id) === id);
      // idle: every job it was sent has run; none is safe to run again
      if (at < 0 && id === PROGRESS_IDLE) at = jobs.length;
      for (let k = 0; k < jobs.length; k++) {
        const job = jobs[k] as Job;
        if (k === at) job.reject(stopped);
        else if (k < at) job.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The Lua worker stopped'));
      }
      if (at + 1 < jobs.length) this.queue.unshift(...jobs.slice(Math.max(0, at + 1)));
    }
    const terminated = slot.worker.terminate().catch(() => 0);
    if (!this.closed && !this.broken) this.schedule();
    await terminated;
  }
}
