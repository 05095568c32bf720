// Main-thread side of the Lua runtime: a small elastic pool of worker threads shared by all Lua
// functions, so Lua never blocks the Node event loop.
// - A worker runs one batch of jobs at a time, one job after another; workers start lazily, up to
//   `maxWorkers`. When calls queue, a worker that frees up takes several of them at once (its share
//   of the queue, at most MAX_BATCH). Jobs and answers travel as bytes through the worker's shared
//   rings (channel.ts): per batch, at most one Atomics.notify to wake the worker and one
//   Atomics.waitAsync wake-up of the pool when the answers are in, no structured clone.
// - Any idle worker can serve any function: it gets the definition once (`define`) and caches the
//   compiled state; idle workers that already know the function are preferred.
// - One function never holds more than `maxWorkers - 1` workers, so one misbehaving function cannot
//   starve the others (it also means `maxWorkers` is at least 2).
// - Each job has a hard deadline (its timeout + `graceMs`, from when the worker started it, which it
//   publishes in a shared progress buffer): a worker that has not finished it by then (e.g. Lua
//   code catching the hook's timeout error, or a long C call) is terminated and replaced; the jobs of
//   its batch that had not started go back to the front of the queue.
// - A worker whose WASM memory grew past `recycleMb` is retired when it becomes idle.
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { ZvError } from '../../errors/registry.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { FunctionLogger } from '../types.js';
import {
  A_FAIL, A_LOG, A_OK, ANS_BESIDE, HEAP_KIB, MAIN_WAIT, R_COMPILE, R_INVOKE, REQ_BESIDE, RecordReader, RecordWriter, SEQ, WORKER_SLEEP, answerRing,
  channelBuffer, requestBound, requestRing, writeRequest,
} from './channel.js';
import type { PortMessage, Ring } from './channel.js';
import { PROGRESS_BYTES, PROGRESS_IDLE, progressId, progressViews } from './protocol.js';
import type { ErrorCode } from '../../errors/registry.js';
import type { FromWorker, JobResult, LuaFunctionDef, ToWorker, WorkerData, WorkerStatus } from './protocol.js';

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
  /** Its number in the workers. */
  id: number;
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
  /** The channel (channel.ts): its control words, rings and port. */
  ctrl: Int32Array;
  requests: Ring;
  answers: Ring;
  port: MessagePort;
  /** The next message beside the answer ring, held until the ring reaches its position. */
  held: PortMessage<FromWorker> | undefined;
  besideSeen: number;
}

/** Atomics.waitAsync (ES2024; in every Node this runs on). */
interface AtomicsWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}

/** Starts a worker running worker.ts (under tsx) or the compiled worker.js next to this file. */
function spawnWorker(workerData: WorkerData): Worker {
  const transferList = [workerData.port];
  if (import.meta.url.endsWith('.ts')) {
    const entry = new URL('./worker.ts', import.meta.url).href;
    const tsx = import.meta.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
    const code = `import(${JSON.stringify(tsx)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`;
    return new Worker(code, { eval: true, execArgv: [], workerData, transferList });
  }
  return new Worker(new URL('./worker.js', import.meta.url), { execArgv: [], workerData, transferList });
}

export class LuaPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly functions = new Map<string, PoolFunction>();
  private readonly byId = new Map<number, PoolFunction>();
  private readonly running = new Map<string, number>();
  /** When a batch of each function last started (fair turns between functions, see schedule). */
  private readonly lastTurn = new Map<string, number>();
  /** Functions whose last call ran into its timeout: their calls run alone, one per batch. */
  private readonly slow = new Set<string>();
  private turn = 0;
  private nextJob = 1;
  private nextFunction = 1;
  private readonly writer = new RecordWriter();
  private readonly reader = new RecordReader();
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
    const old = this.functions.get(key);
    if (old) this.byId.delete(old.id);
    const fn = { def, log, id: this.nextFunction++ };
    this.functions.set(key, fn);
    this.byId.set(fn.id, fn);
  }

  /** Forgets a function: queued calls are refused and every worker frees its state. */
  unregister(key: string): void {
    const fn = this.functions.get(key);
    this.functions.delete(key);
    this.lastTurn.delete(key);
    this.slow.delete(key);
    if (fn) this.byId.delete(fn.id);
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const job = this.queue[i];
      if (job?.key !== key) continue;
      this.queue.splice(i, 1);
      job.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded'));
    }
    for (const slot of this.slots) {
      if (slot.known.delete(key) && fn) this.post(slot, { t: 'drop', fn: fn.id });
    }
  }

  run(key: string, kind: 'compile' | 'invoke', req?: FunctionRequest): Promise<FunctionResponse | undefined> {
    if (this.closed) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The Lua runtime is closed'));
    if (this.broken) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', `The Lua runtime cannot start: ${this.broken}`));
    if (!this.functions.has(key)) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function is not loaded'));
    return new Promise((resolve, reject) => {
      const id = this.nextJob;
      // ids stay within 31 bits: the progress buffer's and the rings' job numbers are the same
      this.nextJob = (id % 0x7ffffffe) + 1;
      this.queue.push({ id, key, kind, req, resolve, reject });
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

  /**
   * Shares the queue out among the slots that can take a batch now (idle ones and ones that may
   * still start). Functions take turns: a free slot gets the queued call of the function whose last
   * batch started longest ago (first in the queue among equals), so one function's backlog, or its
   * calls that each run to their timeout, cannot hold other functions' calls behind all of them.
   * The batch is that call and the next queued calls that may run too, up to the slot's share; a
   * function whose last call ran into its timeout (`slow`) runs alone, one call per batch.
   */
  private schedule(): void {
    let free = this.opts.maxWorkers - this.slots.length;
    for (const s of this.slots) if (!s.gone && s.jobs.length === 0) free++;
    const queue = this.queue;
    while (queue.length > 0 && free > 0) {
      let at = -1;
      let turn = Infinity;
      for (let k = 0; k < queue.length; k++) {
        const job = queue[k] as Job;
        if ((this.running.get(job.key) ?? 0) >= this.perFunction) continue;
        const t = this.lastTurn.get(job.key) ?? -1;
        if (t < turn) {
          at = k;
          turn = t;
          if (t < 0) break; // never ran: nothing comes before it
        }
      }
      if (at < 0) return;
      const job = queue[at] as Job;
      const slot = this.pickSlot(job.key);
      if (!slot) return;
      const share = this.slow.has(job.key) ? 1 : Math.min(MAX_BATCH, Math.ceil(queue.length / free));
      free--;
      // the queue keeps the others in order (compacted in place)
      const batch = [job];
      const keys = new Set([job.key]);
      let kept = 0;
      for (let k = 0; k < queue.length; k++) {
        if (k === at) continue;
        const next = queue[k] as Job;
        if (k > at && batch.length < share && !this.slow.has(next.key) && (keys.has(next.key) || (this.running.get(next.key) ?? 0) < this.perFunction)) {
          batch.push(next);
          keys.add(next.key);
        } else queue[kept++] = next;
      }
      queue.length = kept;
      const now = ++this.turn;
      for (const key of keys) this.lastTurn.set(key, now);
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
    const channel = channelBuffer();
    const { port1, port2 } = new MessageChannel();
    port1.unref();
    const worker = spawnWorker({ progress, channel, port: port2 });
    worker.unref();
    let onStarted: () => void = () => {};
    let onFailed: (e: Error) => void = () => {};
    const started = new Promise<void>((res, rej) => {
      onStarted = res;
      onFailed = rej;
    });
    started.catch(() => {});
    const requests = requestRing(channel);
    const slot: Slot = {
      worker, ready: false, gone: false, jobs: [], keys: new Map(), sentAt: 0, timer: null, known: new Set(), heapBytes: 0, started, progress: views,
      ctrl: requests.ctrl, requests, answers: answerRing(channel), port: port1, held: undefined, besideSeen: 0,
    };
    this.slots.push(slot);
    worker.on('message', (msg: WorkerStatus) => {
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
    this.listen(slot);
    return slot;
  }

  /** Wakes the worker if it sleeps (after records or messages were sent to it). */
  private wake(slot: Slot): void {
    Atomics.add(slot.ctrl, SEQ, 1);
    if (Atomics.load(slot.ctrl, WORKER_SLEEP) === 1) Atomics.notify(slot.ctrl, SEQ, 1);
  }

  /** Sends `msg` beside the request ring, in order with its records (the caller wakes the worker). */
  private postBeside(slot: Slot, msg: ToWorker): void {
    slot.port.postMessage({ pos: slot.requests.written, msg } satisfies PortMessage<ToWorker>);
    Atomics.add(slot.ctrl, REQ_BESIDE, 1);
  }

  private post(slot: Slot, msg: ToWorker): void {
    if (slot.gone) return;
    this.postBeside(slot, msg);
    this.wake(slot);
  }

  /** Writes a job into the request ring (or, when it does not fit, beside it). */
  private sendJob(slot: Slot, job: Job, fn: number): void {
    const w = this.writer;
    const ring = slot.requests;
    if (job.kind === 'compile') {
      const at = ring.reserve(8);
      if (at >= 0) {
        w.begin(ring.buf, at);
        w.u32(job.id);
        w.u32(fn);
        ring.commit(R_COMPILE, w.length);
        return;
      }
      this.postBeside(slot, { t: 'run', jobs: [{ kind: 'compile', job: job.id, fn }] });
      return;
    }
    const req = job.req as FunctionRequest;
    const at = ring.reserve(8 + requestBound(req));
    if (at >= 0) {
      w.begin(ring.buf, at);
      w.u32(job.id);
      w.u32(fn);
      writeRequest(w, req);
      ring.commit(R_INVOKE, w.length);
      return;
    }
    this.postBeside(slot, { t: 'run', jobs: [{ kind: 'invoke', job: job.id, fn, req }] });
  }

  private start(slot: Slot, batch: Job[]): void {
    let sent = 0;
    for (const job of batch) {
      const fn = this.functions.get(job.key);
      if (!fn || slot.gone) {
        job.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function is not loaded'));
        continue;
      }
      const n = slot.keys.get(job.key) ?? 0;
      if (n === 0) this.running.set(job.key, (this.running.get(job.key) ?? 0) + 1);
      slot.keys.set(job.key, n + 1);
      if (!slot.known.has(job.key)) {
        slot.known.add(job.key);
        this.postBeside(slot, { t: 'define', fn: fn.id, def: fn.def });
      }
      job.def = fn.def;
      slot.jobs.push(job);
      this.sendJob(slot, job, fn.id);
      sent++;
    }
    if (sent === 0) {
      this.schedule();
      return;
    }
    slot.worker.ref();
    slot.sentAt = Date.now();
    this.wake(slot);
    if (slot.ready) this.armTimer(slot);
  }

  /**
   * Waits for the worker to ring (Atomics.waitAsync on MAIN_WAIT), then takes its answers; again
   * until the slot is retired. Answers already there are taken first.
   */
  private listen(slot: Slot): void {
    for (;;) {
      if (slot.gone) return;
      Atomics.store(slot.ctrl, MAIN_WAIT, 1);
      if (!slot.answers.hasRecord() && Atomics.load(slot.ctrl, ANS_BESIDE) === slot.besideSeen && !slot.held) break;
      Atomics.store(slot.ctrl, MAIN_WAIT, 0);
      this.drain(slot, true);
    }
    const wait = (Atomics as unknown as AtomicsWaitAsync).waitAsync(slot.ctrl, MAIN_WAIT, 1);
    const rung = (): void => {
      if (slot.gone) return;
      this.drain(slot, true);
      this.listen(slot);
    };
    if (wait.async) void wait.value.then(rung);
    else queueMicrotask(rung);
  }

  /** The next message beside the answer ring (held until the ring reaches its position). */
  private beside(slot: Slot): PortMessage<FromWorker> | undefined {
    if (slot.held || Atomics.load(slot.ctrl, ANS_BESIDE) === slot.besideSeen) return slot.held;
    const got = receiveMessageOnPort(slot.port);
    if (!got) return undefined;
    slot.besideSeen++;
    slot.held = got.message as PortMessage<FromWorker>;
    return slot.held;
  }

  /**
   * Takes every answer and log line the worker has sent, in order, and settles their jobs; with
   * `next`, frees the slot when its batch is done and schedules more work.
   */
  private drain(slot: Slot, next: boolean): void {
    const results: JobResult[] = [];
    const ring = slot.answers;
    const r = this.reader;
    for (;;) {
      const msg = this.beside(slot);
      if (msg && ((msg.pos - ring.consumed) | 0) <= 0) {
        slot.held = undefined;
        if (msg.msg.t === 'log') this.log(msg.msg.fn, msg.msg.line);
        else results.push(...msg.msg.results);
        continue;
      }
      if (!ring.read()) break;
      r.begin(ring.buf, ring.pos);
      if (ring.type === A_OK) {
        const job = r.u32();
        const status = r.u32();
        if (status === 0) results.push({ job, ok: true });
        else {
          const headers: Record<string, string> = {};
          for (let n = r.u32(); n > 0; n--) {
            const name = r.str();
            headers[name] = r.str();
          }
          const body = r.u32() === 0 ? r.str() : r.bytes();
          results.push({ job, ok: true, response: { status, headers, body } });
        }
      } else if (ring.type === A_FAIL) {
        const job = r.u32();
        const code = r.str() as ErrorCode;
        results.push({ job, ok: false, code, message: r.str() });
      } else if (ring.type === A_LOG) {
        const fn = r.u32();
        this.log(fn, r.str());
      }
      ring.release();
    }
    if (results.length === 0) return;
    this.settle(slot, results);
    if (next) this.finish(slot, Atomics.load(slot.ctrl, HEAP_KIB) * 1024);
  }

  private log(fn: number, line: string): void {
    try {
      this.byId.get(fn)?.log('stdout', line);
    } catch {
      // a failing logger must not break the pool
    }
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
      if (now >= deadline) {
        this.slow.add(job.key);
        void this.retire(slot, this.overrun(job), job);
      }
      else this.armTimer(slot, deadline - now);
    }, Math.max(1, delay));
    slot.timer.unref();
  }

  /** Ends the jobs of `results` (in the order they ran). */
  private settle(slot: Slot, results: JobResult[]): void {
    for (const outcome of results) {
      const at = slot.jobs.findIndex((j) => j.id === outcome.job);
      if (at < 0) continue;
      const job = slot.jobs[at] as Job;
      slot.jobs.splice(at, 1);
      this.releaseIn(slot, job.key);
      if (job.kind === 'invoke') {
        if (outcome.ok) this.slow.delete(job.key);
        else if (outcome.code === 'FUNCTION_TIMEOUT') this.slow.add(job.key);
      }
      if (outcome.ok) {
        if (job.kind === 'invoke' && !outcome.response) job.reject(new ZvError('FUNCTION_BAD_RESPONSE'));
        else job.resolve(outcome.response);
      }
      else {
        if (job.kind === 'compile') slot.known.delete(job.key);
        job.reject(new ZvError(outcome.code, outcome.message));
      }
    }
  }

  /** Frees the slot once its batch is done (retiring a worker that grew too much), schedules more. */
  private finish(slot: Slot, heapBytes: number): void {
    slot.heapBytes = heapBytes;
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
    // answers the worker sent before it stopped still count
    this.drain(slot, false);
    slot.gone = true;
    Atomics.notify(slot.ctrl, MAIN_WAIT);
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
