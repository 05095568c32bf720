// A loaded JS function: keeps one live isolate Instance, replaces it after a timeout or a memory
// kill, and turns what the isolate hands back into a FunctionResponse (through normalizeResult).
import { ZvError, toZvError } from '../../errors/registry.js';
import { normalizeResult } from '../../core/function-contract.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { FunctionLogger, FunctionSource, LoadedFunction } from '../types.js';
import { Instance, encodeRequest } from './instance.js';
import { MAX_BATCH } from './instance.js';
import type { BatchItem, Packed } from './instance.js';
import type { CompiledCode } from './compile.js';
import { checkResponse, clipMessage, responseTooLarge } from '../response-cap.js';

/** Calls that take at least this long get their isolate's heap measured afterwards (see invoke). */
const CHECK_AFTER_MS = 1;

/**
 * Synchronous calls (no thread hop: the call runs on the event loop's thread, under the same
 * timeout) are for functions that have shown they answer fast. Every function starts with its
 * calls on the isolate's own thread (a loop never blocks the event loop there); after
 * PROBE_CALLS such calls that used under SYNC_BUDGET_MS of CPU each on average, its calls run
 * synchronously. When the synchronous calls' CPU time (a moving average of each call's time cut
 * at SYNC_SAMPLE_MAX_MS, so one garbage collection does not count) goes over SYNC_BUDGET_MS, the
 * function goes back to its thread for SYNC_BACKOFF_MS (doubling on each slow try, up to
 * SYNC_BACKOFF_MAX_MS).
 *
 * A synchronous call (or batch of them, see invoke) blocks every other request, so it runs within
 * SYNC_LIMIT_MS, not the function's timeout. A call that runs past it is stopped, its isolate
 * replaced (as after a timeout), and the request is run again from the start on the new isolate's
 * thread with the rest of its timeout; that function never runs synchronously again, unless the
 * call run again takes under half the bound in CPU there (then the stop was not its doing: a busy
 * machine preempted the thread, a garbage collection of the server's heap ran meanwhile) and the
 * function only backs off as above. Isolates have no I/O but their logs, so running a handler
 * again is invisible apart from its log lines (and module state, which a replaced isolate loses
 * anyway). And when the runtime sees SYNC_TRIPS_MAX such stops within SYNC_TRIP_WINDOW_MS (many
 * functions turning slow: an attack or an overloaded machine), no call of any function runs
 * synchronously for SYNC_TRIP_WINDOW_MS. So the event loop is blocked at most SYNC_LIMIT_MS per
 * function (per backoff, for stops that were not the function's doing), and at most
 * SYNC_TRIPS_MAX × SYNC_LIMIT_MS per window in all.
 */
const SYNC_BUDGET_MS = 2;
const PROBE_CALLS = 32;
/** Weight of the latest synchronous call in the moving average of their CPU time. */
const SYNC_AVERAGE_WEIGHT = 1 / 8;
/**
 * A call counts at most this much in that average. The isolate's CPU time of one call now and then
 * takes a few to ~100 ms that are not the function's (a garbage collection of the server's heap
 * while the answer is copied in, code being compiled, a profiler): uncut, one such call pushed a
 * 0.01 ms function over the budget (84 ms × 1/8) and its calls off the event loop for 10 s. Cut,
 * one call adds at most 0.5 ms, and a function goes back only after ~6 slow calls in a row (or
 * about as many slow as fast ones); each still runs within SYNC_LIMIT_MS.
 */
const SYNC_SAMPLE_MAX_MS = 2 * SYNC_BUDGET_MS;
const SYNC_BACKOFF_MS = 10_000;
const SYNC_BACKOFF_MAX_MS = 600_000;
/** About how long one batch of synchronous calls should take (its size follows from their average). */
const BATCH_TARGET_MS = 5;
/** How long one synchronous call (or batch of them) may block the event loop. */
export const SYNC_LIMIT_MS = 50;
const SYNC_TRIPS_MAX = 10;
const SYNC_TRIP_WINDOW_MS = 60_000;

/** Synchronous calls stopped at SYNC_LIMIT_MS lately, across every function of this process. */
const trips: number[] = [];
let syncOffUntil = 0;

/** Whether calls may run synchronously now (the clock is read only after a trip turned them off). */
function syncAllowed(): boolean {
  return syncOffUntil === 0 || performance.now() >= syncOffUntil;
}

function recordTrip(now: number): void {
  trips.push(now);
  while (trips.length > 0 && (trips[0] as number) < now - SYNC_TRIP_WINDOW_MS) trips.shift();
  if (trips.length >= SYNC_TRIPS_MAX) {
    syncOffUntil = now + SYNC_TRIP_WINDOW_MS;
    trips.length = 0;
  }
}

/** A synchronous call waiting for its batch. */
interface Queued {
  req: FunctionRequest;
  resolve: (r: FunctionResponse) => void;
  reject: (e: unknown) => void;
}

/** Errors that mean the isolate could not get memory outside its heap (array buffers). */
const ALLOCATION_FAILED = /^RangeError: (Array buffer allocation failed|.*could not allocate memory)/;

export class JsFunction implements LoadedFunction {
  private disposed = false;
  private creating: Promise<Instance> | null = null;
  /** Whether calls run synchronously now (see SYNC_BUDGET_MS). */
  private sync = false;
  /** Synchronous calls waiting for the end of this turn of the event loop (see enqueue). */
  private queue: Queued[] = [];
  /** A synchronous call ran in this turn of the event loop (see invoke). */
  private inTurn = false;
  /** performance.now() before which calls are not made synchronously (Infinity: never again). */
  private asyncUntil = 0;
  private backoffMs = SYNC_BACKOFF_MS;
  /** Moving average of the synchronous calls' CPU time in the isolate (ms). */
  private syncMs = 0;
  /** The probe of the asynchronous calls: how many, on which instance, from what CPU time. */
  private probe: { inst: Instance | null; calls: number; cpuNs: number } = { inst: null, calls: 0, cpuNs: 0 };

  constructor(
    private readonly source: FunctionSource,
    private readonly compiled: CompiledCode,
    private readonly log: FunctionLogger,
    private current: Instance | null,
    private readonly maxResponseBytes: number,
    private readonly onDispose: (fn: JsFunction) => void = () => {},
  ) {}

  /**
   * Synchronous calls wait for the end of the turn of the event loop they came in (setImmediate:
   * after the poll phase, so every request read in this turn is in, and at once on a server with
   * nothing else to do) and run together, BATCH_TARGET_MS worth at a time, in one applySync: one
   * entry into the isolate and one timer for the lot. A server under load reads many requests per
   * turn (about 24 at 32 connections in `npm run bench`); an entry costs about 6 µs, so running the
   * first call of a turn at once, alone, cost ~1.5 µs a request there.
   */
  invoke(req: FunctionRequest): Promise<FunctionResponse> {
    const inst = this.current;
    if (this.sync && !this.disposed && inst !== null && syncAllowed()) {
      // (endTurn checks again that the instance can run them, once for the turn's calls)
      if (!this.inTurn) {
        if (!inst.canRunSync) return this.invokeAsync(req);
        this.inTurn = true;
        setImmediate(this.endTurn);
      }
      return new Promise((resolve, reject) => this.queue.push({ req, resolve, reject }));
    }
    return this.invokeAsync(req);
  }

  private readonly endTurn = (): void => {
    this.inTurn = false;
    let queue = this.queue;
    this.queue = [];
    while (queue.length > 0) {
      const inst = this.current;
      if (!(this.sync && !this.disposed && inst !== null && inst.canRunSync && syncAllowed())) {
        // things changed since these calls came (the function went back to its thread, was disposed…)
        for (const q of queue) this.invokeAsync(q.req).then(q.resolve, q.reject);
        return;
      }
      const size = Math.max(1, Math.min(MAX_BATCH, Math.floor(BATCH_TARGET_MS / Math.max(this.syncMs, 0.001))));
      const sliced = this.runBatch(inst, queue.length <= size ? queue : queue.slice(0, size));
      queue = queue.length <= size ? [] : queue.slice(size);
      if (sliced) {
        // the rest of this turn's calls wait behind the ones the slice left
        this.queue = this.queue.concat(queue);
        return;
      }
    }
  };

  /** Runs a batch and answers its calls; true when the batch's slice of time was up and the rest wait for the next turn. */
  private runBatch(inst: Instance, batch: Queued[]): boolean {
    const limit = Math.min(SYNC_LIMIT_MS, this.source.timeoutMs);
    const run = inst.callBatch(batch.map((q) => encodeRequest(q.req)), limit);
    if (run.stopped === 'timeout') {
      // the batch ran past the bound on the event loop's thread: this function never runs there again
      this.toAsync(Infinity);
      recordTrip(performance.now());
    } else if (run.stopped === null) {
      const ran = run.items.reduce((k, item) => (item.kind === 'skipped' ? k : k + 1), 0);
      this.syncMs += (Math.min(run.cpuMs / Math.max(1, ran), SYNC_SAMPLE_MAX_MS) - this.syncMs) * SYNC_AVERAGE_WEIGHT;
      if (this.syncMs > SYNC_BUDGET_MS) this.toAsync(this.backoffMs);
    }
    // Measuring the heap costs a few µs. A call that ends within CHECK_AFTER_MS cannot have written
    // enough to go far past the limit (memory is written at some GB/s), so only longer batches pay
    // it; over the limit, the call that ran longest fails (and the instance is replaced).
    let overIndex = -1;
    if (run.stopped === null && run.tookMs >= CHECK_AFTER_MS && inst.canRunSync && inst.overLimitSync()) overIndex = run.slowest;
    // Calls run again go to the new instance's thread in this order, the one that was running when
    // the batch stopped last: should it loop or run out of memory again, the others are done by then.
    const culprits: number[] = [];
    const skipped: Queued[] = [];
    for (let i = 0; i < batch.length; i++) {
      const item = run.items[i] as BatchItem;
      if (item.kind === 'again' && item.culprit) culprits.push(i);
      else if (item.kind === 'skipped') skipped.push(batch[i] as Queued);
      else this.settle(inst, batch[i] as Queued, item, i === overIndex, limit);
    }
    for (const i of culprits) this.settle(inst, batch[i] as Queued, run.items[i] as BatchItem, false, limit, culprits.length === 1);
    // the calls the batch did not start
    if (skipped.length === 0) return false;
    if (run.sliced) {
      // the batch had run its slice of time: the rest wait for the next turn of the event loop,
      // ahead of the calls that come meanwhile (I/O runs between slices)
      this.queue = skipped.concat(this.queue);
      if (!this.inTurn) {
        this.inTurn = true;
        setImmediate(this.endTurn);
      }
      return true;
    }
    // The calls after one that left a promise pending (its microtasks have run now), one at a time:
    // a handler that left a promise pending likely does it again, and each batch would stop after
    // its first call and send all the others again.
    for (let k = 0; k < skipped.length; k++) {
      if (this.sync && !this.disposed && inst === this.current && inst.canRunSync && syncAllowed()) {
        this.runBatch(inst, [skipped[k] as Queued]);
        continue;
      }
      for (const q of skipped.slice(k)) this.invokeAsync(q.req).then(q.resolve, q.reject);
      break;
    }
    return false;
  }

  /** Answers a call of a batch from what became of it. */
  private settle(inst: Instance, q: Queued, item: BatchItem, overMemory: boolean, limit: number, judge = false): void {
    if (overMemory) {
      q.reject(this.overMemory(inst));
      return;
    }
    switch (item.kind) {
      case 'done':
        try {
          q.resolve(this.answer(inst, item.packed));
        } catch (e) {
          q.reject(e);
        }
        return;
      case 'later':
        // the handler's promise waits on a timer: the rest runs asynchronously
        item.answer.then(async (packed) => {
          if (await inst.overLimit()) throw this.overMemory(inst);
          return this.answer(inst, packed);
        }).then(q.resolve, q.reject);
        return;
      case 'again':
        if (item.culprit) {
          this.log('stderr', `[zerverless] a call ran past ${limit} ms on the server's event loop; it is run again on the function's own thread (${Math.round(item.leftMs)} ms left)`);
        }
        this.runAgain(q.req, item.leftMs, judge ? limit : 0).then(q.resolve, q.reject);
        return;
      case 'failed':
        q.reject(item.error);
    }
  }

  /** A call a stopped batch did not answer, run from the start on a (new) instance's thread. */
  /**
   * A call a stopped batch did not answer, run from the start on a (new) instance's thread. With
   * `limit` (the one call that ran past that bound), its CPU time there says whose doing the stop
   * was: under half the bound, not the call's, and the function backs off instead of never running
   * synchronously again.
   */
  private async runAgain(req: FunctionRequest, leftMs: number, limit = 0): Promise<FunctionResponse> {
    const inst = await this.instance();
    const cpu = inst.cpuNs();
    const packed = await inst.invoke(JSON.stringify(req), leftMs);
    // (the CPU time may include calls that ran beside it: that errs towards never)
    const ms = (inst.cpuNs() - cpu) / 1e6;
    if (limit > 0 && ms >= 0 && ms < limit / 2 && this.asyncUntil === Infinity) {
      this.asyncUntil = 0;
      this.toAsync(this.backoffMs);
      this.log('stderr', `[zerverless] run again, the call took ${ms.toFixed(1)} ms: the stop was not its doing, calls return to the event loop's thread after a backoff`);
    }
    if (await inst.overLimit()) throw this.overMemory(inst);
    return this.answer(inst, packed);
  }

  private async invokeAsync(req: FunctionRequest): Promise<FunctionResponse> {
    if (this.disposed) throw new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded');
    let inst = this.current && !this.current.dead ? this.current : await this.instance();
    if (this.sync && !inst.canRunSync) {
      // calls made before the switch (or a timer callback) are still running on the isolate's
      // thread: wait for them rather than block the event loop on the isolate's lock
      await inst.whenIdle();
      inst = this.current && !this.current.dead ? this.current : await this.instance();
    }
    const started = performance.now();
    if (this.sync && inst.canRunSync && syncAllowed()) return this.invoke(req);
    if (!this.sync && started >= this.asyncUntil && this.probe.inst !== inst) this.probe = { inst, calls: 0, cpuNs: inst.cpuNs() };
    const packed = await inst.invoke(JSON.stringify(req));
    if (!this.sync && this.probe.inst === inst && ++this.probe.calls >= PROBE_CALLS) {
      const perCallMs = (inst.cpuNs() - this.probe.cpuNs) / this.probe.calls / 1e6;
      this.probe = { inst: null, calls: 0, cpuNs: 0 };
      if (perCallMs >= 0 && perCallMs < SYNC_BUDGET_MS && performance.now() >= this.asyncUntil) {
        this.sync = true;
        this.syncMs = perCallMs;
      }
    }
    // Measuring the heap costs ~40 µs. A call that ends within CHECK_AFTER_MS cannot have written
    // enough to go far past the limit (memory is written at some GB/s), so only longer calls pay it.
    if (performance.now() - started >= CHECK_AFTER_MS && await inst.overLimit()) throw this.overMemory(inst);
    return this.answer(inst, packed);
  }

  /** The isolate went over its memory limit: it is killed (when current), the call fails. */
  private overMemory(inst: Instance): ZvError {
    if (this.current === inst) inst.kill('memory');
    return new ZvError('FUNCTION_MEMORY_LIMIT', `The function went over its memory limit of ${this.source.memoryMb} MiB`);
  }

  /** The FunctionResponse of a packed answer (throws the ZvError it stands for). */
  private answer(inst: Instance, packed: Packed): FunctionResponse {
    if (packed.kind === 'error' && ALLOCATION_FAILED.test(packed.message)) {
      // an array buffer over the isolate's memory limit: the same as running out of heap
      this.log('stderr', `[zerverless] ${clipMessage(packed.message)}`);
      throw this.overMemory(inst);
    }
    // the isolate refused anything over the cap before the copy; this is the exact count
    return checkResponse(this.toResponse(packed), this.maxResponseBytes);
  }

  /** Calls go back to the isolate's thread for `ms` (then a new probe may promote them again). */
  private toAsync(ms: number): void {
    this.sync = false;
    this.probe = { inst: null, calls: 0, cpuNs: 0 };
    if (this.asyncUntil === Infinity) return;
    this.asyncUntil = performance.now() + ms;
    this.backoffMs = Math.min(this.backoffMs * 2, SYNC_BACKOFF_MAX_MS);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.current?.kill('disposed');
    this.current = null;
    const creating = this.creating;
    if (creating) await creating.then((i) => i.kill('disposed'), () => {});
    this.onDispose(this);
  }

  private instance(): Promise<Instance> {
    if (this.current && !this.current.dead) return Promise.resolve(this.current);
    this.current = null;
    if (!this.creating) {
      this.creating = Instance.create(this.source, this.compiled, this.log, this.maxResponseBytes).then(
        (inst) => {
          this.creating = null;
          if (this.disposed) {
            inst.kill('disposed');
            throw new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded');
          }
          this.current = inst;
          return inst;
        },
        (e: unknown) => {
          this.creating = null;
          const err = toZvError(e, 'FUNCTION_UNAVAILABLE');
          // the code compiled at load, so a failure here is about this run, not the code
          throw err.code === 'FUNCTION_COMPILE_ERROR' ? new ZvError('FUNCTION_UNAVAILABLE', err.message, undefined, { cause: err }) : err;
        },
      );
    }
    return this.creating;
  }

  private toResponse(packed: Packed): FunctionResponse {
    switch (packed.kind) {
      case 'response':
        return { status: packed.status, headers: packed.headers, body: packed.body ?? '' };
      case 'error': {
        if (packed.stack) this.log('stderr', this.compiled.mapper.stack(packed.stack));
        let message = clipMessage(packed.message);
        if (/WebAssembly is not defined/.test(message)) message += ' (WebAssembly is not available to functions: its memory would not count against the memory limit)';
        throw new ZvError('FUNCTION_ERROR', message);
      }
      case 'bad':
        throw new ZvError('FUNCTION_BAD_RESPONSE', clipMessage(packed.reason));
      case 'toolarge':
        throw responseTooLarge(this.maxResponseBytes, packed.size, true);
      case 'value': {
        const r = normalizeResult(packed.value);
        if (!r.ok) throw new ZvError('FUNCTION_BAD_RESPONSE', r.reason);
        return r.response;
      }
    }
  }
}
