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

/** What take() hands back besides a Packed: the answer is still pending (see shims-glue.ts). */
type Taken = Packed | { kind: 'wait' };

/**
 * A Packed from what the isolate handed back through wire() (shims-glue.ts): a string not starting
 * with NUL is a returned string, NUL + JSON is any other packed answer, an object is one as is.
 */
function unwire(x: unknown): Packed {
  if (typeof x === 'string') return x.charCodeAt(0) === 0 ? JSON.parse(x.slice(1)) as Packed : { kind: 'value', value: x };
  return x as Packed;
}

export type DeathReason = 'timeout' | 'memory' | 'disposed';

const ISOLATE_MIN_MB = 8;

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
  private invokeSyncRef: ivm.Reference | null = null;
  private takeRef: ivm.Reference | null = null;
  private settleRef: ivm.Reference | null = null;
  private fireRef: ivm.Reference | null = null;
  /** CPU time the synchronous part of the last invokeSync used in the isolate (ms). */
  lastSyncMs = 0;
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
    const setup = await isolate.compileScript(SETUP_SCRIPT, { filename: 'zerverless:setup' });
    const api = (await setup.run(context, { reference: true, timeout: 5000 })) as ivm.Reference;
    setup.release();
    const define = (await api.get('define', { reference: true })) as ivm.Reference;
    this.invokeRef = (await api.get('invoke', { reference: true })) as ivm.Reference;
    this.fireRef = (await api.get('fire', { reference: true })) as ivm.Reference;
    this.invokeSyncRef = (await api.get('invokeSync', { reference: true })) as ivm.Reference;
    this.takeRef = (await api.get('take', { reference: true })) as ivm.Reference;
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
    return !this.dead && this.busy === 0 && this.pending.size === 0 && this.invokeSyncRef !== null;
  }

  /**
   * Runs one invocation synchronously on this thread within `budgetMs` (the caller checked
   * canRunSync). Returns the packed answer, or, for a handler whose promise is still pending after
   * its microtasks ran (it waits on a timer), a promise of it, awaited asynchronously for the rest of
   * the function's timeout. Throws (or the promise rejects) like `invoke`.
   */
  callSync(reqJson: string, budgetMs: number): Packed | Promise<Packed> {
    const { timeoutMs } = this.source;
    const invokeSyncRef = this.invokeSyncRef as ivm.Reference;
    // The synchronous part runs within `budgetMs` (it blocks the event loop); a promise it leaves
    // pending gets the rest of the function's timeout asynchronously.
    const syncLimit = Math.max(1, Math.min(budgetMs, timeoutMs));
    const started = performance.now();
    const cpu = this.cpuNow();
    let out: unknown;
    try {
      out = invokeSyncRef.applySync(undefined, [reqJson], { timeout: syncLimit, result: { copy: true } });
      if (typeof out === 'number') {
        const left = Math.max(1, Math.ceil(syncLimit - (performance.now() - started)));
        const took = (this.takeRef as ivm.Reference).applySync(undefined, [out], { timeout: left, result: { copy: true } }) as unknown;
        if ((took as Taken).kind !== 'wait') out = took;
      }
    } catch (e) {
      this.lastSyncMs = (this.cpuNow() - cpu) / 1e6;
      const reason = this.death ?? this.classify(e);
      if (reason) {
        this.kill(reason);
        throw deathError(reason, timeoutMs);
      }
      throw new ZvError('FUNCTION_BAD_RESPONSE', `The function's result could not be read: ${messageOf(e)}`);
    }
    this.lastSyncMs = (this.cpuNow() - cpu) / 1e6;
    if (typeof out === 'number') {
      const left = Math.max(1, Math.ceil(timeoutMs - (performance.now() - started)));
      return this.runAsync(this.settleRef as ivm.Reference, out, left);
    }
    return unwire(out);
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
