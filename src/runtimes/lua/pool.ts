// Main-thread side of the Lua runtime: a small elastic pool of worker threads shared by all Lua
// functions, so Lua never blocks the Node event loop.
// - A worker runs one job at a time; workers start lazily, up to `maxWorkers`.
// - Any idle worker can serve any function: it gets the definition once (`define`) and caches the
//   compiled state; idle workers that already know the function are preferred.
// - One function never holds more than `maxWorkers - 1` workers, so one misbehaving function cannot
//   starve the others (it also means `maxWorkers` is at least 2).
// - Each job has a hard deadline (its timeout + `graceMs`): a worker that has not answered by then
//   (e.g. Lua code catching the hook's timeout error, or a long C call) is terminated and replaced.
// - A worker whose WASM memory grew past `recycleMb` is retired when it becomes idle.
import { Worker } from 'node:worker_threads';
import { ZvError } from '../../errors/registry.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { FunctionLogger } from '../types.js';
import type { FromWorker, JobOutcome, LuaFunctionDef, ToWorker } from './protocol.js';

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
  resolve: (r: FunctionResponse | undefined) => void;
  reject: (e: ZvError) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  gone: boolean;
  job: Job | null;
  timer: ReturnType<typeof setTimeout> | null;
  known: Set<string>;
  heapBytes: number;
  started: Promise<void>;
}

/** Starts a worker running worker.ts (under tsx) or the compiled worker.js next to this file. */
function spawnWorker(): Worker {
  if (import.meta.url.endsWith('.ts')) {
    const entry = new URL('./worker.ts', import.meta.url).href;
    const tsx = import.meta.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
    const code = `import(${JSON.stringify(tsx)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`;
    return new Worker(code, { eval: true, execArgv: [] });
  }
  return new Worker(new URL('./worker.js', import.meta.url), { execArgv: [] });
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
    for (let i = 0; i < this.queue.length;) {
      const job = this.queue[i];
      if (!job) break;
      if ((this.running.get(job.key) ?? 0) >= this.perFunction) {
        i++;
        continue;
      }
      const slot = this.pickSlot(job.key);
      if (!slot) return;
      this.queue.splice(i, 1);
      this.start(slot, job);
    }
  }

  private pickSlot(key: string): Slot | null {
    const idle = this.slots.filter((s) => !s.gone && !s.job);
    const best = idle.find((s) => s.known.has(key)) ?? idle[0];
    if (best) return best;
    return this.slots.length < this.opts.maxWorkers ? this.spawn() : null;
  }

  private spawn(): Slot {
    const worker = spawnWorker();
    worker.unref();
    let onStarted: () => void = () => {};
    let onFailed: (e: Error) => void = () => {};
    const started = new Promise<void>((res, rej) => {
      onStarted = res;
      onFailed = rej;
    });
    started.catch(() => {});
    const slot: Slot = { worker, ready: false, gone: false, job: null, timer: null, known: new Set(), heapBytes: 0, started };
    this.slots.push(slot);
    worker.on('message', (msg: FromWorker) => {
      switch (msg.t) {
        case 'ready':
          slot.ready = true;
          onStarted();
          if (slot.job) this.armTimer(slot);
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
          this.finish(slot, msg.job, msg, msg.heapBytes);
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

  private start(slot: Slot, job: Job): void {
    const fn = this.functions.get(job.key);
    if (!fn) {
      job.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function is not loaded'));
      this.schedule();
      return;
    }
    slot.job = job;
    slot.worker.ref();
    this.running.set(job.key, (this.running.get(job.key) ?? 0) + 1);
    if (!slot.known.has(job.key)) {
      slot.known.add(job.key);
      this.send(slot, { t: 'define', key: job.key, def: fn.def });
    }
    if (job.kind === 'invoke') this.send(slot, { t: 'invoke', job: job.id, key: job.key, req: job.req as FunctionRequest });
    else this.send(slot, { t: 'compile', job: job.id, key: job.key });
    if (slot.ready) this.armTimer(slot);
  }

  private armTimer(slot: Slot): void {
    const job = slot.job;
    const fn = job && this.functions.get(job.key);
    if (!job || !fn || slot.timer) return;
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (slot.job !== job) return;
      const { def } = fn;
      const err = job.kind === 'compile'
        ? new ZvError('FUNCTION_COMPILE_ERROR', `${def.filename}: the top-level code did not finish within ${def.timeoutMs} ms`)
        : new ZvError('FUNCTION_TIMEOUT', `The function did not answer within ${def.timeoutMs} ms`);
      void this.retire(slot, err);
    }, fn.def.timeoutMs + this.opts.graceMs);
    slot.timer.unref();
  }

  /** Ends the slot's current job with `outcome`, frees the slot and starts what waits. */
  private finish(slot: Slot, jobId: number, outcome: JobOutcome, heapBytes: number): void {
    const job = slot.job;
    if (!job || job.id !== jobId) return;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.job = null;
    slot.heapBytes = heapBytes;
    if (!slot.gone) slot.worker.unref();
    this.release(job.key);
    if (outcome.ok) job.resolve(outcome.response);
    else {
      if (job.kind === 'compile') slot.known.delete(job.key);
      job.reject(new ZvError(outcome.code, outcome.message));
    }
    if (heapBytes > this.opts.recycleMb * 1024 * 1024) void this.retire(slot, null);
    this.schedule();
  }

  private release(key: string): void {
    const n = (this.running.get(key) ?? 1) - 1;
    if (n > 0) this.running.set(key, n);
    else this.running.delete(key);
  }

  /** Removes a worker for good; its running job (if any) is rejected with `err`. */
  private async retire(slot: Slot, err: ZvError | null): Promise<void> {
    if (slot.gone) return;
    slot.gone = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    const job = slot.job;
    slot.job = null;
    if (job) {
      this.release(job.key);
      job.reject(err ?? new ZvError('FUNCTION_UNAVAILABLE', 'The Lua worker stopped'));
    }
    const terminated = slot.worker.terminate().catch(() => 0);
    if (!this.closed && !this.broken) this.schedule();
    await terminated;
  }
}
