// A loaded Python function: a small pool of warm workers (one to start with, more while calls wait:
// up to `maxWorkers` for this function, within the runtime-wide budget, budget.ts), a FIFO queue of
// invocations shared by the pool (each worker runs one at a time; a call that has not started
// within the function's timeout fails with FUNCTION_TIMEOUT), and the recovery rules — a timed-out,
// memory-exhausted, crashed or externally killed worker is replaced by a fresh one while the
// function keeps answering. Extra workers left idle for `workerIdleMs` are stopped; the last one
// stays until the function is unloaded (LazyFunction, --function-idle) or the budget stops it for
// a function that has none (its code stays loaded: its next call starts a worker again).
import { normalizeResult } from '../../core/function-contract.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import { ZvError } from '../../errors/registry.js';
import type { FunctionLogger, FunctionSource, LoadedFunction } from '../types.js';
import { WorkerGone } from './worker-process.js';
import type { WorkerProcess } from './worker-process.js';
import { checkResponse, clipMessage, responseTooLarge } from '../response-cap.js';
import type { WorkerReply } from './worker-process.js';
import { WorkerBudget } from './budget.js';
import type { BudgetMember } from './budget.js';

/** Extra time a worker gets to start and import the module, on top of the function's timeout. */
const STARTUP_GRACE_MS = 10000;
const MAX_RESTART_DELAY_MS = 30000;
/**
 * While functions wait for a first worker, a busy function's only worker is given up after a call
 * once it has served it this many times its own start time, and at least MIN_SHARE_MS: the swaps a
 * shortage forces cost a small part of the time (a worker's start is its function's cold start).
 */
const SHARE_FACTOR = 10;
const MIN_SHARE_MS = 100;

interface Job {
  req: FunctionRequest;
  /** When it was queued (performance.now()): it fails with FUNCTION_TIMEOUT if not started within the timeout. */
  since: number;
  resolve: (r: FunctionResponse) => void;
  reject: (e: unknown) => void;
}

export interface PoolOptions {
  /** Workers at most for this function (--python-workers). */
  maxWorkers: number;
  /** An extra worker idle this long is stopped. */
  workerIdleMs: number;
  budget: WorkerBudget;
}

/** Where a function's worker processes come from (runtime.ts: spares.ts, for its sandbox command). */
export interface WorkerFactory {
  /** A worker process that has loaded nothing yet (a spare when one is up). */
  take(log: FunctionLogger): WorkerProcess;
  /** The process `take` gave has answered its load, or failed: a spare may be started now. */
  settled(): void;
}

/** Starts a worker and loads the code; resolves once `handle` is ready. */
export async function startWorker(
  source: FunctionSource, workers: WorkerFactory, seccomp: boolean, log: FunctionLogger, maxResponseBytes: number,
): Promise<WorkerProcess> {
  const w = workers.take(log);
  const msg = {
    t: 'load', code: source.code, filename: source.filename, lineOffset: source.lineOffset ?? 1,
    memoryMb: source.memoryMb, env: source.env, seccomp, maxResponse: maxResponseBytes,
  };
  let reply: WorkerReply;
  try {
    reply = await w.request(msg, source.timeoutMs + STARTUP_GRACE_MS);
  } catch (e) {
    workers.settled();
    w.kill();
    await w.exited; // its budget slot frees when the process is gone
    if (e instanceof WorkerGone && e.reason === 'timeout') {
      throw new ZvError('FUNCTION_COMPILE_ERROR', `${source.filename}: the module did not finish loading within ${source.timeoutMs} ms`);
    }
    if (e instanceof WorkerGone && e.memoryHint) {
      throw new ZvError('FUNCTION_COMPILE_ERROR', `${source.filename}: loading the module went over the memory limit of ${source.memoryMb} MiB`);
    }
    throw new ZvError('FUNCTION_UNAVAILABLE', `${source.filename}: ${e instanceof Error ? e.message : String(e)}`);
  }
  workers.settled();
  if (reply.t === 'ready') return w;
  w.kill();
  await w.exited;
  if (reply.t === 'compile_error') throw new ZvError('FUNCTION_COMPILE_ERROR', reply.message ?? `${source.filename}: cannot load`);
  if (reply.t === 'fatal') throw new ZvError('RUNTIME_UNAVAILABLE', reply.message);
  throw new ZvError('FUNCTION_UNAVAILABLE', `${source.filename}: unexpected worker reply ${reply.t}`);
}

function toResponse(reply: WorkerReply): FunctionResponse {
  let value = reply.value;
  if (reply.bytes === 'value' && typeof value === 'string') value = new Uint8Array(Buffer.from(value, 'base64'));
  if (reply.bytes === 'body' && value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.body === 'string') value = { ...v, body: new Uint8Array(Buffer.from(v.body, 'base64')) };
  }
  if (value instanceof Uint8Array) {
    return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: value };
  }
  const n = normalizeResult(value);
  if (!n.ok) throw new ZvError('FUNCTION_BAD_RESPONSE', n.reason);
  return n.response;
}

export class PythonFunction implements LoadedFunction, BudgetMember {
  /** Live workers, oldest first. */
  private readonly workers: WorkerProcess[] = [];
  /** Idle live workers; the most recently used last (taken first, so the others can go idle). */
  private readonly idle: { w: WorkerProcess; since: number }[] = [];
  /** Until when (performance.now()) a worker keeps its calls while other functions wait for a first one. */
  private readonly shareUntil = new Map<WorkerProcess, number>();
  /** Worker starts in progress. */
  private readonly starting = new Set<Promise<WorkerProcess>>();
  private readonly queue: Job[] = [];
  /** `start()` (a load) waiting for the first worker. */
  private firstWaiter: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  /**
   * Just loaded: the first call is on its way (LazyFunction calls once the load resolves, within
   * the same turn), so the budget does not take the new worker before it gets there.
   */
  private shielded = false;
  private disposed = false;
  private restartDelay = 100;
  private restartTimer: NodeJS.Timeout | undefined;
  private trimTimer: NodeJS.Timeout | undefined;
  /** Fails the calls that waited in the queue for the whole timeout (armed for the oldest one). */
  private waitTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: FunctionSource,
    private readonly factory: WorkerFactory,
    private readonly seccomp: boolean,
    private readonly log: FunctionLogger,
    private readonly maxResponseBytes: number,
    private readonly onDispose: () => void = () => {},
    private readonly pool: PoolOptions = { maxWorkers: 1, workerIdleMs: 10_000, budget: new WorkerBudget(Infinity) },
  ) {
    pool.budget.join(this);
  }

  /** Host pid of the oldest live worker (bwrap when sandboxed), for diagnostics and tests. */
  get pid(): number | undefined {
    const w = this.workers.find((x) => x.alive);
    return w?.pid;
  }

  /** Live worker processes of this function. */
  get workerCount(): number {
    return this.workers.length;
  }

  /**
   * Starts the first worker (PythonRuntime.load): resolves once it has loaded the module, rejects
   * with why it could not (FUNCTION_COMPILE_ERROR…). When every worker of the runtime is busy, it
   * resolves at once with the function in line for a worker: its first call waits for one, within
   * the function's timeout.
   */
  start(): Promise<void> {
    if (this.disposed) return Promise.reject(this.unloaded());
    if (this.workers.length + this.starting.size > 0 || this.firstWaiter) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.firstWaiter = { resolve, reject };
      const slot = this.pool.budget.first(this);
      if (slot === 'now') this.launch();
      else if (slot === 'wait') {
        this.firstWaiter = undefined;
        resolve();
      }
    });
  }

  invoke(req: FunctionRequest): Promise<FunctionResponse> {
    if (this.disposed) return Promise.reject(this.unloaded());
    return new Promise((resolve, reject) => {
      this.queue.push({ req, since: performance.now(), resolve, reject });
      this.pump();
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.trimTimer);
    clearTimeout(this.waitTimer);
    this.pool.budget.leave(this);
    this.onDispose();
    for (const job of this.queue.splice(0)) job.reject(this.unloaded());
    this.firstWaiter?.reject(this.unloaded());
    this.firstWaiter = undefined;
    const ws = [...this.workers];
    for (const w of ws) this.drop(w);
    await Promise.all(ws.map((w) => w.exited));
    await Promise.all([...this.starting].map((s) => s.then((w2) => w2.exited, () => {})));
  }

  // --- BudgetMember (budget.ts) -------------------------------------------------------------

  get idleSince(): number | undefined {
    return this.shielded ? undefined : this.idle[0]?.since;
  }

  stopIdle(): void {
    const oldest = this.idle[0];
    if (oldest) this.drop(oldest.w);
  }

  granted(): boolean {
    if (this.disposed) return false;
    const has = this.workers.length + this.starting.size;
    if (has >= this.pool.maxWorkers) return false;
    if (this.queue.length <= this.starting.size && !(has === 0 && this.firstWaiter)) return false;
    this.launch();
    return true;
  }

  // --- the pool -------------------------------------------------------------------------------

  private unloaded(): ZvError {
    return new ZvError('FUNCTION_UNAVAILABLE', `${this.source.id} has been unloaded`);
  }

  private adopt(w: WorkerProcess): void {
    this.workers.push(w);
    w.onExit = () => {
      if (!this.drop(w) || this.disposed) return;
      // The last one died while idle (killed from outside, crashed in a thread…): start a
      // replacement, backing off if replacements keep dying. A death during an invocation is
      // handled by run(); waiting calls get a new worker from pump().
      if (this.queue.length) this.pump();
      else if (this.workers.length === 0 && this.starting.size === 0) this.scheduleRestart();
    };
  }

  /** Takes a worker out of the pool (false: it was not in it) and kills it; its slot frees when it has exited. */
  private drop(w: WorkerProcess): boolean {
    const i = this.workers.indexOf(w);
    if (i < 0) return false;
    this.workers.splice(i, 1);
    this.shareUntil.delete(w);
    const j = this.idle.findIndex((x) => x.w === w);
    if (j >= 0) this.idle.splice(j, 1);
    w.kill();
    this.pool.budget.stopped(w.exited);
    return true;
  }

  private scheduleRestart(): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.warmReplacement();
    }, this.restartDelay);
    this.restartTimer.unref();
    this.restartDelay = Math.min(this.restartDelay * 2, MAX_RESTART_DELAY_MS);
  }

  /**
   * No worker left and no call waiting (the last one died or timed out): a fresh one is warmed up
   * for the next call, only on a free slot (nothing waits for it; the next call would start one).
   */
  private warmReplacement(): void {
    if (this.disposed || this.workers.length || this.starting.size || this.queue.length) return;
    if (this.pool.budget.spare()) this.launch();
  }

  /** Starts a worker on a slot taken for it (the slot is given back if the start fails). */
  private launch(): void {
    const t0 = performance.now();
    const p = startWorker(this.source, this.factory, this.seccomp, this.log, this.maxResponseBytes);
    this.starting.add(p);
    p.then(
      (w) => {
        this.starting.delete(p);
        if (this.disposed) {
          w.kill();
          this.pool.budget.stopped(w.exited);
          return;
        }
        const now = performance.now();
        this.shareUntil.set(w, now + Math.max(MIN_SHARE_MS, SHARE_FACTOR * (now - t0)));
        this.adopt(w);
        const waiter = this.firstWaiter;
        this.firstWaiter = undefined;
        if (waiter) {
          this.shielded = true;
          setImmediate(() => {
            this.shielded = false;
            if (this.idle.length) this.pool.budget.offer();
          });
          waiter.resolve();
        }
        this.release(w);
      },
      (e: unknown) => {
        this.starting.delete(p);
        this.pool.budget.give(); // startWorker waited for its process to exit
        const waiter = this.firstWaiter;
        this.firstWaiter = undefined;
        if (waiter) {
          waiter.reject(e); // the load fails with why
          return;
        }
        if (this.disposed) return;
        // Nothing can serve the waiting calls: answer them rather than retry forever.
        if (this.workers.length === 0 && this.starting.size === 0) {
          const err = new ZvError('FUNCTION_UNAVAILABLE', `${this.source.id}: cannot start the python worker: ${e instanceof Error ? e.message : String(e)}`);
          for (const job of this.queue.splice(0)) job.reject(err);
          this.pool.budget.cancel(this);
        }
      },
    );
  }

  /**
   * A worker is free: it takes the next call, or goes idle (where the budget may stop it for a
   * function that has no worker). While functions wait for a first worker, an extra worker is given
   * up after its call, and an only one once it has had its share (SHARE_FACTOR).
   */
  private release(w: WorkerProcess): void {
    if (this.disposed) return;
    if (w.alive && this.workers.includes(w)) {
      if (this.queue.length && this.pool.budget.contended && (this.workers.length > 1 || performance.now() >= (this.shareUntil.get(w) ?? 0))) {
        this.drop(w);
      } else {
        this.idle.push({ w, since: performance.now() });
      }
    }
    this.pump();
    if (this.idle.length) this.pool.budget.offer();
  }

  private pump(): void {
    if (this.disposed) return;
    while (this.queue.length && this.idle.length) {
      const { w } = this.idle.pop()!;
      if (!w.alive) continue;
      const job = this.queue.shift()!;
      this.run(w, job.req).then(job.resolve, job.reject).finally(() => this.release(w));
    }
    if (this.queue.length) {
      // Calls still wait: one more worker per waiting call, within the budgets.
      const has = this.workers.length + this.starting.size;
      let want = Math.min(this.queue.length - this.starting.size, this.pool.maxWorkers - has);
      if (has === 0) {
        if (this.pool.budget.first(this) === 'now') this.launch();
      } else {
        while (want > 0 && this.pool.budget.extra(this)) {
          this.launch();
          want--;
        }
        if (want <= 0) this.pool.budget.cancel(this);
      }
      this.armWait();
    } else {
      this.pool.budget.cancel(this);
    }
    this.armTrim();
  }

  /** Fails the calls that have waited in the queue for the function's whole timeout. */
  private armWait(): void {
    if (this.waitTimer || this.disposed || !this.queue.length) return;
    const wait = this.queue[0]!.since + this.source.timeoutMs - performance.now();
    this.waitTimer = setTimeout(() => {
      this.waitTimer = undefined;
      const now = performance.now();
      while (this.queue.length && now - this.queue[0]!.since >= this.source.timeoutMs) {
        this.queue.shift()!.reject(new ZvError('FUNCTION_TIMEOUT', `${this.source.id} did not answer within ${this.source.timeoutMs} ms (no worker was free for it)`));
      }
      if (this.queue.length) this.armWait();
      else if (this.starting.size === 0) this.pool.budget.cancel(this);
    }, Math.max(1, Math.ceil(wait)));
    this.waitTimer.unref();
  }

  /** Stops extra workers idle for longer than workerIdleMs (the last one stays). */
  private armTrim(): void {
    if (this.trimTimer || this.disposed || this.workers.length <= 1) return;
    this.trimTimer = setTimeout(() => {
      this.trimTimer = undefined;
      const now = performance.now();
      while (this.workers.length > 1 && this.idle.length && now - this.idle[0]!.since >= this.pool.workerIdleMs) {
        this.drop(this.idle[0]!.w);
      }
      this.armTrim();
    }, Math.max(50, this.pool.workerIdleMs / 2));
    this.trimTimer.unref();
  }

  private async run(w: WorkerProcess, req: FunctionRequest): Promise<FunctionResponse> {
    let reply: WorkerReply;
    try {
      reply = await w.request({ t: 'invoke', req }, this.source.timeoutMs);
    } catch (e) {
      this.replace(w);
      if (this.disposed) throw new ZvError('FUNCTION_UNAVAILABLE', `${this.source.id} has been unloaded`);
      if (e instanceof WorkerGone && e.reason === 'timeout') {
        throw new ZvError('FUNCTION_TIMEOUT', `${this.source.id} did not answer within ${this.source.timeoutMs} ms`);
      }
      if (e instanceof WorkerGone && e.reason === 'toolarge') throw responseTooLarge(this.maxResponseBytes);
      if (e instanceof WorkerGone && e.memoryHint) {
        throw new ZvError('FUNCTION_MEMORY_LIMIT', `${this.source.id} went over its memory limit of ${this.source.memoryMb} MiB`);
      }
      throw new ZvError('FUNCTION_ERROR', `${this.source.id}: ${e instanceof Error ? e.message : String(e)}`);
    }
    switch (reply.t) {
      case 'result':
        this.restartDelay = 100;
        return checkResponse(toResponse(reply), this.maxResponseBytes);
      case 'error':
        throw new ZvError('FUNCTION_ERROR', clipMessage(reply.message ?? 'the function raised an error'));
      case 'bad_response':
        throw new ZvError('FUNCTION_BAD_RESPONSE', reply.message === undefined ? undefined : clipMessage(reply.message));
      case 'too_large':
        this.restartDelay = 100;
        throw responseTooLarge(this.maxResponseBytes, typeof reply.size === 'number' ? reply.size : undefined);
      case 'memory':
        this.replace(w);
        throw new ZvError('FUNCTION_MEMORY_LIMIT', `${this.source.id} went over its memory limit of ${this.source.memoryMb} MiB`);
      default:
        this.replace(w);
        throw new ZvError('FUNCTION_ERROR', `${this.source.id}: unexpected worker reply ${reply.t}`);
    }
  }

  /**
   * Kills a worker that cannot be trusted any more and warms up a fresh one when none is left
   * (waiting calls get theirs from pump(); with no call waiting, only on a free slot).
   */
  private replace(w: WorkerProcess): void {
    this.drop(w);
    this.warmReplacement();
  }
}
