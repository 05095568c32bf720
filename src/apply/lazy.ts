// A function that costs nothing while nobody calls it (issue 10, item 3): a LazyFunction holds the
// source of an in-process function (lua, js, python) and loads it through its runtime on the first
// call; once nothing has called it for `idleMs` (and nothing is in flight) it disposes what it
// loaded (the isolate, the Lua state, the Python worker) and the next call loads it again.
// - Concurrent first calls share one load.
// - A load that fails answers the calls waiting on it with FUNCTION_UNAVAILABLE (503: the code
//   compiled when it was synced, so a failure now is about this server, not the commit) naming the
//   cause; `onLoadError` reports it (the Deployer shows it in the status) and the next call tries
//   again.
// - A handle can start loaded (`loaded`: a sync compiles new code eagerly so a commit whose code
//   does not compile still fails the sync); it is then evicted after idle like any other.
// - `dispose()` (the Deployer retires the handle once its in-flight calls ended) frees what is
//   loaded, waits for a load in progress and frees its result: nothing outlives the handle.
// Docker functions are not lazy: their container is the function (drift repair watches it).
import { ZvError, toZvError } from '../errors/registry.js';
import type { FunctionRequest, FunctionResponse } from '../core/function-contract.js';
import type { FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction } from '../runtimes/types.js';
import { passThrough } from '../serving/drain.js';

/** How long a function stays loaded without a call (--function-idle). */
export const DEFAULT_FUNCTION_IDLE_MS = 5 * 60_000;

export interface LazyFunctionOptions {
  runtime: FunctionRuntime;
  /** The source, or how to make it (e.g. decrypting envFrom files) when the function is loaded. */
  source: FunctionSource | (() => Promise<FunctionSource>);
  log: FunctionLogger;
  /** Unloaded after this long without a call and with nothing in flight; 0: never unloaded. */
  idleMs: number;
  /** Already loaded (warm): served at once, evicted after idle like a lazily loaded one. */
  loaded?: LoadedFunction;
  /** A load failed (the call that asked for it answers FUNCTION_UNAVAILABLE). */
  onLoadError?: (err: ZvError) => void;
  /** A load succeeded (on a call; not for `loaded`), after `ms` milliseconds. */
  onLoad?: (ms: number) => void;
  /** What was loaded was disposed after `idleMs` without a call. */
  onEvict?: () => void;
}

export type LazyState = 'unloaded' | 'loading' | 'loaded' | 'disposed';

export class LazyFunction implements LoadedFunction {
  private loaded: LoadedFunction | null;
  private loading: Promise<LoadedFunction> | null = null;
  private disposed = false;
  private inflight = 0;
  private lastUsed = performance.now();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failure: ZvError | null = null;
  private loadCount = 0;
  private evictCount = 0;

  constructor(private readonly opts: LazyFunctionOptions) {
    this.loaded = opts.loaded ?? null;
    if (this.loaded) this.arm();
  }

  get state(): LazyState {
    return this.disposed ? 'disposed' : this.loaded ? 'loaded' : this.loading ? 'loading' : 'unloaded';
  }

  /** The error of the last load when it failed (cleared by a load that succeeds). */
  get lastError(): ZvError | null {
    return this.failure;
  }

  /** Loads done by calls (a warm start does not count) and idle evictions, since the handle was made. */
  get stats(): { loads: number; evictions: number } {
    return { loads: this.loadCount, evictions: this.evictCount };
  }

  invoke(req: FunctionRequest): Promise<FunctionResponse> {
    if (this.disposed) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded'));
    this.inflight++;
    // .then rather than async/await: this sits on every request's path
    let running: Promise<FunctionResponse>;
    try {
      const fn = this.loaded;
      running = fn ? fn.invoke(req) : this.load().then((loaded) => loaded.invoke(req));
    } catch (e) {
      running = Promise.reject(e);
    }
    return running.then(this.passed.answered, this.passed.failed);
  }

  private readonly passed = passThrough(() => this.ended());

  private ended(): void {
    // The idle clock starts when the last call in flight ends (expire waits while any is): the
    // time is read then, not at every call's end.
    if (--this.inflight > 0) return;
    this.lastUsed = performance.now();
    this.arm();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.disarm();
    const fn = this.loaded;
    this.loaded = null;
    const loading = this.loading;
    if (fn) await fn.dispose().catch(() => {});
    // A load in progress frees its result itself once it sees the handle disposed.
    if (loading) await loading.catch(() => {});
  }

  private load(): Promise<LoadedFunction> {
    this.loading ??= this.startLoad().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private async startLoad(): Promise<LoadedFunction> {
    const started = performance.now();
    let fn: LoadedFunction;
    try {
      const { source: src, runtime, log } = this.opts;
      const source = typeof src === 'function' ? await src() : src;
      fn = await runtime.load(source, log);
    } catch (e) {
      const err = toZvError(e, 'FUNCTION_UNAVAILABLE');
      if (this.disposed) throw new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded');
      this.failure = err;
      this.opts.onLoadError?.(err);
      throw new ZvError('FUNCTION_UNAVAILABLE', `the function could not be loaded: ${err.code}: ${err.message}`, undefined, { cause: err });
    }
    if (this.disposed) {
      await fn.dispose().catch(() => {});
      throw new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded');
    }
    this.loaded = fn;
    this.failure = null;
    this.loadCount++;
    this.opts.onLoad?.(performance.now() - started);
    return fn;
  }

  /** Starts the idle clock (once nothing is in flight); a timer runs only while something is loaded. */
  private arm(): void {
    if (this.timer || this.disposed || !this.loaded || this.opts.idleMs <= 0) return;
    const wait = Math.max(1, this.opts.idleMs - (performance.now() - this.lastUsed));
    this.timer = setTimeout(() => this.expire(), wait);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private expire(): void {
    this.timer = null;
    // Calls in flight re-arm the clock when the last one ends.
    if (this.disposed || !this.loaded || this.inflight > 0) return;
    if (performance.now() - this.lastUsed < this.opts.idleMs) {
      this.arm();
      return;
    }
    const fn = this.loaded;
    this.loaded = null;
    this.evictCount++;
    this.opts.onEvict?.();
    // Nothing calls it (nothing is in flight, and a new call loads anew): free it now.
    void fn.dispose().catch(() => {});
  }
}
