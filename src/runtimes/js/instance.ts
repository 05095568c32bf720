// One live copy of a JS function: a V8 isolate (isolated-vm) with the shims and the function's
// compiled code. A call runs either synchronously on the calling (main) thread (`invokeSync`:
// isolated-vm's applySync under the same `timeout`, no thread hop, for functions that answer fast;
// ./function.ts decides) or asynchronously (`invoke`: V8 runs the code on its own thread, so a busy
// loop never blocks Node's event loop). An instance that times out or runs out of memory is killed;
// ./function.ts then creates a fresh one from the same code.
import type ivm from 'isolated-vm';
import { isolatedVm } from './ivm.js';
import { ZvError } from '../../errors/registry.js';
import type { FunctionLogger, FunctionSource } from '../types.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import { compileAt, compileError, firstFrame, v8CompileError } from './compile.js';
import type { CompiledCode } from './compile.js';
import { SETUP_SCRIPT, wrapModule } from './shims-glue.js';

/** What the isolate's invoke() hands back (see pack() in shims-glue.ts). */
export type Packed =
  | { kind: 'response'; status: number; headers: Record<string, string>; body: string | Uint8Array | null }
  | { kind: 'value'; value: unknown }
  | { kind: 'error'; message: string; stack: string }
  | { kind: 'bad'; reason: string }
  /** The response was over --max-response (`size`: bytes counted when the check stopped). */
  | { kind: 'toolarge'; size: number };

/** The most requests one batch runs (callBatch). */
export const MAX_BATCH = 64;

/** What became of one request of a batch (callBatch). */
export type BatchItem =
  /** It answered. */
  | { kind: 'done'; packed: Packed }
  /** Its promise waits on a timer: the answer, settled asynchronously within its timeout. */
  | { kind: 'later'; answer: Promise<Packed> }
  /**
   * The batch was stopped before this request answered: it is to be run (again, when `ran`) from the
   * start on a new instance's thread within `leftMs` of its timeout.
   */
  | { kind: 'again'; leftMs: number; ran: boolean; culprit: boolean }
  /**
   * Not run: a request before it left a promise pending, whose microtasks run when the batch returns
   * and before any later request starts (as when each request ran alone), or the batch had run its
   * slice of time (Batch.sliced). The caller runs it next.
   */
  | { kind: 'skipped' }
  | { kind: 'failed'; error: ZvError };

export interface Batch {
  items: BatchItem[];
  /** Why the batch was stopped (the instance is then dead), or null when it ran to the end. */
  stopped: DeathReason | null;
  /** CPU time the batch used in the isolate (ms). */
  cpuMs: number;
  /** Wall time the batch took (ms). */
  tookMs: number;
  /** The request that ran longest (by the isolate's clock, ms resolution). */
  slowest: number;
  /**
   * Requests are 'skipped' because the batch had run its slice of time (BATCH_SLICE_MS in
   * shims-glue.ts), not because the one before them left a promise pending.
   */
  sliced: boolean;
}

/** The answers of a batch from the string framed() (shims-glue.ts) made of them. */
function unframe(s: string, n: number): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  let at = 0;
  for (let i = 0; i < n && at < s.length; i++) {
    const tag = s.charCodeAt(at);
    const colon = s.indexOf(':', at + 1);
    const end = colon + 1 + Number(s.slice(at + 1, colon));
    if (tag === 115) out[i] = s.slice(colon + 1, end); // s
    else if (tag === 110) out[i] = Number(s.slice(colon + 1, end)); // n
    at = end;
  }
  return out;
}

/**
 * A Packed from what the isolate handed back through wire() (shims-glue.ts): a string not starting
 * with NUL is a returned string, NUL + JSON is any other packed answer, an object is one as is.
 */
function unwire(x: unknown): Packed {
  if (typeof x === 'string') return x.charCodeAt(0) === 0 ? JSON.parse(x.slice(1)) as Packed : { kind: 'value', value: x };
  return x as Packed;
}

export type DeathReason = 'timeout' | 'memory' | 'disposed';

/**
 * A request as a batch hands it to the isolate (decodeRequest in shims-glue.ts): the method, the
 * path, the query's JSON ('' for none) and the number of headers, then each header's name and
 * value, each ended by NUL, then the body. A request a NUL would garble (none the gateway makes:
 * HTTP forbids it in a method, a path or a header) goes as its JSON, which starts with '{'.
 */
export function encodeRequest(req: FunctionRequest): string {
  const { method, path, query, headers, body } = req;
  if (typeof method !== 'string' || typeof path !== 'string' || typeof body !== 'string' || method.charCodeAt(0) === 123 || method.includes('\0') || path.includes('\0')) {
    return JSON.stringify(req);
  }
  let q = '';
  for (const _ in query) {
    q = JSON.stringify(query);
    break;
  }
  const names = Object.keys(headers);
  let s = `${method}\0${path}\0${q}\0${names.length}\0`;
  for (const name of names) {
    const value = headers[name];
    if (typeof value !== 'string' || name.includes('\0') || value.includes('\0')) return JSON.stringify(req);
    s += `${name}\0${value}\0`;
  }
  return s + body;
}

const ISOLATE_MIN_MB = 8;

/**
 * V8's code cache of SETUP_SCRIPT (the shims and the glue, the same in every isolate), made by the
 * first compile of this process and used by every later one: a new isolate then skips most of that
 * parse and compile (~0.9 → ~0.15 ms of a cold start of ~3 ms). Only ever made from our own script.
 */
let setupCache: ivm.ExternalCopy<ArrayBuffer> | null = null;

function deathError(reason: DeathReason, timeoutMs: number): ZvError {
  if (reason === 'timeout') return new ZvError('FUNCTION_TIMEOUT', `The function did not answer within ${timeoutMs} ms`);
  if (reason === 'memory') return new ZvError('FUNCTION_MEMORY_LIMIT');
  return new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded');
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class Instance {
  private death: DeathReason | null = null;
  private readonly pending = new Set<(e: ZvError) => void>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private invokeRef: ivm.Reference | null = null;
  private batchRef: ivm.Reference | null = null;
  private takeManyRef: ivm.Reference | null = null;
  private boxRef: ivm.Reference | null = null;
  /** Written by the isolate during a batch (see invokeBatch in shims-glue.ts). */
  private readonly progress = new Float64Array(new SharedArrayBuffer(8 * (2 + 2 * MAX_BATCH)));
  private settleRef: ivm.Reference | null = null;
  private fireRef: ivm.Reference | null = null;
  /** Async calls into the isolate in flight (invocations, timer callbacks, heap measurements). */
  private busy = 0;
  private idleWaiters: (() => void)[] = [];

  private constructor(
    private readonly isolate: ivm.Isolate,
    private readonly source: FunctionSource,
    private readonly log: FunctionLogger,
  ) {}

  /**
   * Creates the isolate and runs the function's top-level code. Rejects with FUNCTION_COMPILE_ERROR
   * when the code does not compile, throws at the top level or defines no entry point, and with
   * FUNCTION_TIMEOUT / FUNCTION_MEMORY_LIMIT when its top level runs too long or too big.
   */
  static async create(source: FunctionSource, compiled: CompiledCode, log: FunctionLogger, maxResponseBytes: number): Promise<Instance> {
    const isolate = new (isolatedVm().Isolate)({
      memoryLimit: Math.max(ISOLATE_MIN_MB, Math.ceil(source.memoryMb)),
      onCatastrophicError: (message) => log('stderr', `[zerverless] isolate failure: ${message}`),
    });
    const inst = new Instance(isolate, source, log);
    try {
      await inst.setup(compiled, maxResponseBytes);
      // the top-level code may have left one big allocation V8 let past the limit (see overLimit)
      if (await inst.overLimit()) inst.kill('memory');
      if (inst.death) throw deathError(inst.death, source.timeoutMs);
      return inst;
    } catch (e) {
      const reason = inst.death ?? inst.classify(e);
      inst.kill(reason ?? 'disposed');
      if (e instanceof ZvError) throw e;
      if (reason === 'timeout' || reason === 'memory') throw deathError(reason, source.timeoutMs);
      throw compileError(source, messageOf(e));
    }
  }

  private async setup(compiled: CompiledCode, maxResponseBytes: number): Promise<void> {
    const { isolate, source } = this;
    const context = await isolate.createContext();
    await context.global.set('__zv_log', new (isolatedVm().Callback)((stream: unknown, text: unknown) => this.onLog(stream, text), { ignored: true }));
    await context.global.set('__zv_timer', new (isolatedVm().Callback)((id: unknown, ms: unknown) => this.onTimer(id, ms), { ignored: true }));
    // the same memory on both sides: the isolate writes a batch's progress, the host reads it
    await context.global.set('__zv_progress', new (isolatedVm().ExternalCopy)(this.progress.buffer).copyInto({ release: true }));
    const cached = setupCache;
    // (isolated-vm sets cachedData / cachedDataRejected on the script; its typings leave them out)
    const setup = await isolate.compileScript(SETUP_SCRIPT, { filename: 'zerverless:setup', ...(cached ? { cachedData: cached } : { produceCachedData: true }) }) as
      ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer>; cachedDataRejected?: boolean };
    if (cached === null && setup.cachedData) setupCache ??= setup.cachedData;
    else if (cached !== null && setup.cachedDataRejected === true && setupCache === cached) setupCache = null;
    const api = (await setup.run(context, { reference: true, timeout: 5000 })) as ivm.Reference;
    setup.release();
    const define = (await api.get('define', { reference: true })) as ivm.Reference;
    this.invokeRef = (await api.get('invoke', { reference: true })) as ivm.Reference;
    this.fireRef = (await api.get('fire', { reference: true })) as ivm.Reference;
    this.batchRef = (await api.get('invokeBatch', { reference: true })) as ivm.Reference;
    this.takeManyRef = (await api.get('takeMany', { reference: true })) as ivm.Reference;
    this.boxRef = (await api.get('box', { reference: true })) as ivm.Reference;
    this.settleRef = (await api.get('settle', { reference: true })) as ivm.Reference;
    api.release();

    let script: ivm.Script;
    try {
      script = await isolate.compileScript(wrapModule(compiled.code), { filename: source.filename });
    } catch (e) {
      if (this.classify(e) === null) throw v8CompileError(source, compiled, e);
      throw e;
    }
    const factory = (await script.run(context, { reference: true, timeout: source.timeoutMs })) as ivm.Reference;
    script.release();
    const result = (await define.apply(undefined, [factory.derefInto(), JSON.stringify(source.env), maxResponseBytes], {
      timeout: source.timeoutMs,
      result: { copy: true },
    })) as { ok: boolean; kind: string; message?: string; stack?: string };
    factory.release();
    define.release();
    if (!result.ok) {
      if (result.kind !== 'error') throw compileError(source, result.message ?? 'invalid code');
      const stack = result.stack ?? '';
      if (stack) this.log('stderr', compiled.mapper.stack(stack));
      let what = `top-level code threw: ${result.message ?? ''}`;
      if (/require is not defined/.test(what)) what += ' (functions cannot import or require modules)';
      const at = firstFrame(compiled, source.filename, stack);
      throw at ? compileAt(source, what, at.line, at.column) : compileError(source, what);
    }
  }

  /**
   * isolated-vm enforces `memoryLimit` after V8's full collections, and V8 lets one large allocation
   * (a big flat string) go past the limit before one runs, so a call could end holding far more.
   * After a call, when no other call is in flight (the measurement waits for the isolate to be
   * free), the heap is measured: true when the isolate is over its limit.
   */
  async overLimit(): Promise<boolean> {
    if (this.dead || this.pending.size > 0) return false;
    this.busy++;
    try {
      const h = await this.isolate.getHeapStatistics();
      return h.used_heap_size + h.externally_allocated_size > this.limitMb * 1024 * 1024;
    } catch {
      return false;
    } finally {
      this.notBusy();
    }
  }

  /** overLimit, measured synchronously (after a synchronous call: the isolate is free). */
  overLimitSync(): boolean {
    if (this.dead || this.pending.size > 0) return false;
    try {
      const h = this.isolate.getHeapStatisticsSync();
      return h.used_heap_size + h.externally_allocated_size > this.limitMb * 1024 * 1024;
    } catch {
      return false;
    }
  }

  private notBusy(): void {
    if (--this.busy > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once no async call is in flight (at once when none is, or when the instance died). */
  whenIdle(): Promise<void> {
    if (this.busy === 0 || this.dead) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** CPU time the isolate has used so far (ns), 0 once it is gone. */
  cpuNs(): number {
    try {
      return this.dead ? 0 : Number(this.isolate.cpuTime);
    } catch {
      return 0;
    }
  }

  /**
   * Whether a synchronous call can start now: nothing else is running in or waiting for the isolate
   * (an applySync would otherwise block the event loop until the isolate is free).
   */
  get canRunSync(): boolean {
    return !this.dead && this.busy === 0 && this.pending.size === 0 && this.batchRef !== null;
  }

  /**
   * Runs the requests (JSON) one after another synchronously on this thread, all within `budgetMs`
   * (the caller checked canRunSync). What each became: see BatchItem. When the batch runs out of
   * time or memory the instance is killed; the requests that had answered keep their answers (read
   * from the isolate, which a timeout leaves readable), the one that was running is run again or
   * fails (FUNCTION_TIMEOUT when its own time is up, FUNCTION_MEMORY_LIMIT), the others are run
   * again (after an out-of-memory kill that includes those that had answered: their answers died
   * with the isolate).
   */
  callBatch(reqs: string[], budgetMs: number): Batch {
    const { timeoutMs } = this.source;
    const n = reqs.length;
    if (n > MAX_BATCH) throw new RangeError(`a batch runs at most ${MAX_BATCH} requests`);
    // The synchronous part runs within `budgetMs` (it blocks the event loop); a promise it leaves
    // pending gets the rest of the function's timeout asynchronously.
    const syncLimit = Math.max(1, Math.min(budgetMs, timeoutMs));
    const started = performance.now();
    const cpu = this.cpuNow();
    let raw: Record<number, unknown> | null = null;
    let failure: unknown = null;
    let failed = false;
    try {
      const got = (this.batchRef as ivm.Reference).applySync(undefined, reqs, { timeout: syncLimit, result: { copy: true } }) as unknown;
      raw = n === 1 ? { 0: got } : typeof got === 'string' ? unframe(got, n) : got as Record<number, unknown>;
      let ids: number[] | null = null;
      for (let i = 0; i < n; i++) if (typeof raw[i] === 'number') (ids ??= []).push(raw[i] as number);
      if (ids !== null) {
        // the microtasks ran when the batch returned: most promises have settled by now
        const left = Math.max(1, Math.ceil(syncLimit - (performance.now() - started)));
        const took = (this.takeManyRef as ivm.Reference).applySync(undefined, [JSON.stringify(ids)], { timeout: left, result: { copy: true } }) as Record<number, unknown>;
        for (let i = 0, j = 0; i < n; i++) {
          if (typeof raw[i] !== 'number') continue;
          if (took[j] !== 0) raw[i] = took[j];
          j++;
        }
      }
    } catch (e) {
      failure = e;
      failed = true;
    }
    const cpuMs = (this.cpuNow() - cpu) / 1e6;
    const tookMs = performance.now() - started;
    const p = this.progress;
    let slowest = 0;
    for (let i = 0, most = -1; i < n; i++) {
      const own = (p[1 + 2 * (i + 1)] as number) - (p[1 + 2 * i] as number);
      if (own > most) [slowest, most] = [i, own];
    }
    const items: BatchItem[] = new Array<BatchItem>(n);
    if (!failed && raw !== null) {
      for (let i = 0; i < n; i++) {
        const x = raw[i];
        if (typeof x === 'number') {
          const left = Math.max(1, Math.ceil(timeoutMs - (performance.now() - started)));
          items[i] = { kind: 'later', answer: this.runAsync(this.settleRef as ivm.Reference, x, left) };
        } else if (x === undefined) {
          items[i] = { kind: 'skipped' };
        } else {
          items[i] = this.doneItem(x);
        }
      }
      const ran = items.findIndex((item) => item.kind === 'skipped');
      // the one before the first skipped one left a promise pending, or the slice was up
      const sliced = ran > 0 && p[2 + 2 * (ran - 1)] !== 1;
      return { items, stopped: null, cpuMs, tookMs, slowest, sliced };
    }

    const reason = this.death ?? this.classify(failure);
    // A timeout leaves the isolate readable: what had answered is in the box (see shims-glue.ts).
    if (raw === null && !this.isolate.isDisposed) {
      try {
        const box = (this.boxRef as ivm.Reference).copySync() as { items: Record<number, unknown>; count: number };
        raw = box.items;
      } catch {
        raw = null;
      }
    }
    const running = Math.min(Math.max(0, Math.floor(p[0] as number)), n);
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const x = raw?.[i];
      if (x !== undefined && typeof x !== 'number') {
        items[i] = this.doneItem(x);
        continue;
      }
      const ran = i <= running;
      // its own time so far, by the isolate's clock (a start in the future counts as none)
      const own = ran ? Math.min(Math.max(0, now - (p[1 + 2 * i] as number)), tookMs + 1) : 0;
      const culprit = i === running || (running === n && p[2 + 2 * i] === 1);
      if (reason === 'timeout' || (reason === 'memory' && !culprit)) {
        const leftMs = timeoutMs - own;
        items[i] = leftMs < 1 ? { kind: 'failed', error: deathError('timeout', timeoutMs) } : { kind: 'again', leftMs, ran, culprit };
      } else if (reason !== null) {
        items[i] = { kind: 'failed', error: deathError(reason, timeoutMs) };
      } else {
        items[i] = { kind: 'failed', error: new ZvError('FUNCTION_BAD_RESPONSE', `The function's result could not be read: ${messageOf(failure)}`) };
      }
    }
    if (reason !== null) this.kill(reason);
    return { items, stopped: reason, cpuMs, tookMs, slowest, sliced: false };
  }

  private doneItem(x: unknown): BatchItem {
    try {
      return { kind: 'done', packed: unwire(x) };
    } catch (e) {
      return { kind: 'failed', error: new ZvError('FUNCTION_BAD_RESPONSE', `The function's result could not be read: ${messageOf(e)}`) };
    }
  }

  /** CPU time of the isolate (ns), 0 once it is gone (cpuNs without the check whether it is). */
  private cpuNow(): number {
    try {
      return Number(this.isolate.cpuTime);
    } catch {
      return 0;
    }
  }

  private get limitMb(): number {
    return Math.max(ISOLATE_MIN_MB, Math.ceil(this.source.memoryMb));
  }

  get dead(): boolean {
    return this.death !== null || this.isolate.isDisposed;
  }

  /**
   * Runs one invocation on the isolate's thread within `timeoutMs` (default: the function's);
   * rejects with a ZvError (the instance is killed on timeout / memory).
   */
  invoke(reqJson: string, timeoutMs = this.source.timeoutMs): Promise<Packed> {
    if (!this.invokeRef) return Promise.reject(deathError(this.death ?? 'memory', this.source.timeoutMs));
    return this.runAsync(this.invokeRef, reqJson, Math.max(1, Math.ceil(timeoutMs)));
  }

  /** Calls `ref(arg)` asynchronously; its promise's packed result, within `timeoutMs`. */
  private runAsync(ref: ivm.Reference, arg: string | number, timeoutMs: number): Promise<Packed> {
    if (this.dead) return Promise.reject(deathError(this.death ?? 'memory', this.source.timeoutMs));
    this.busy++;
    return new Promise<Packed>((resolve, reject) => {
      let settled = false;
      const finish = (): void => {
        settled = true;
        this.notBusy();
        clearTimeout(timer);
        this.pending.delete(onKill);
      };
      const onKill = (e: ZvError): void => {
        if (settled) return;
        finish();
        reject(e);
      };
      const timer = setTimeout(() => this.kill('timeout'), timeoutMs);
      this.pending.add(onKill);
      ref
        .apply(undefined, [arg], { timeout: timeoutMs, arguments: { copy: true }, result: { promise: true, copy: true } })
        .then(
          (packed: unknown) => {
            if (settled) return;
            finish();
            try {
              resolve(unwire(packed));
            } catch (e) {
              reject(new ZvError('FUNCTION_BAD_RESPONSE', `The function's result could not be read: ${messageOf(e)}`));
            }
          },
          (e: unknown) => {
            if (settled) return;
            const reason = this.death ?? this.classify(e);
            if (reason) {
              this.kill(reason); // rejects this call and every other one in flight
              onKill(deathError(reason, this.source.timeoutMs));
              return;
            }
            finish();
            // isolated-vm failed to hand the result over (e.g. it could not be cloned)
            reject(new ZvError('FUNCTION_BAD_RESPONSE', `The function's result could not be read: ${messageOf(e)}`));
          },
        );
    });
  }

  /** Which limit an isolated-vm error means, if any. */
  private classify(e: unknown): DeathReason | null {
    const msg = messageOf(e);
    if (/memory limit/i.test(msg)) return 'memory';
    if (/Script execution timed out/i.test(msg)) return 'timeout';
    if (this.isolate.isDisposed) return /during execution/i.test(msg) ? 'memory' : 'disposed';
    return null;
  }

  /** Disposes the isolate and rejects every invocation in flight with the reason's error. */
  kill(reason: DeathReason): void {
    if (this.death === null) this.death = reason;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (!this.isolate.isDisposed) {
      try {
        this.isolate.dispose();
      } catch {
        // already disposed by isolated-vm (memory limit)
      }
    }
    const err = deathError(this.death, this.source.timeoutMs);
    for (const reject of [...this.pending]) reject(err);
    this.pending.clear();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private onLog(stream: unknown, text: unknown): void {
    const s = stream === 'stderr' ? 'stderr' : 'stdout';
    for (const line of String(text).split('\n')) this.log(s, line);
  }

  private onTimer(id: unknown, ms: unknown): void {
    if (this.dead || typeof id !== 'number') return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.dead || !this.fireRef) return;
      this.busy++;
      this.fireRef.apply(undefined, [id], { timeout: this.source.timeoutMs }).then(() => {
        this.notBusy();
      }, (e: unknown) => {
        this.notBusy();
        const reason = this.death ?? this.classify(e);
        if (reason) this.kill(reason);
      });
    }, typeof ms === 'number' ? ms : 0);
    t.unref();
    this.timers.add(t);
  }
}
