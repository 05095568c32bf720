// The JavaScript/TypeScript function runtime: each function runs in its own V8 isolate
// (isolated-vm) with a memory limit, a per-invocation timeout and only small Web-standard shims
// (console, Request/Response/Headers, URL, TextEncoder/TextDecoder, timers): no require, process,
// imports, file system or network.
import { availableParallelism } from 'node:os';
import { isolatedVm } from './ivm.js';
import { ZvError } from '../../errors/registry.js';
import { Semaphore } from '../../core/semaphore.js';
import type { FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction } from '../types.js';
import { compileError, compileSource } from './compile.js';
import { JsFunction } from './function.js';
import { Instance } from './instance.js';
import { responseCap } from '../response-cap.js';
import type { ResponseCapOptions } from '../response-cap.js';

export { JsFunction } from './function.js';

export type JsRuntimeOptions = ResponseCapOptions;

/**
 * How many compile() calls check a function at once. A sync hands the runtime all its functions at
 * once, and with 1,000 of them in flight 1,000 isolates lived together: the server peaked near
 * 450 MB and kept most of it (malloc does not give back the memory of the isolates' threads), 300 to
 * 400 MB idle. A few at a time (4 on two cores) keep the cores busy and the peak near 60 MB over the
 * idle server, and the sync takes no longer (scale bench js row, issue 10).
 */
const COMPILE_CONCURRENCY = Math.max(4, Math.min(8, availableParallelism()));

export class JsRuntime implements FunctionRuntime {
  readonly name = 'js' as const;
  private readonly loaded = new Set<JsFunction>();
  private closed = false;
  private readonly maxResponseBytes: number;
  private readonly checking = new Semaphore(COMPILE_CONCURRENCY);

  constructor(opts: JsRuntimeOptions = {}) {
    this.maxResponseBytes = responseCap(opts);
  }

  async load(source: FunctionSource, log: FunctionLogger): Promise<LoadedFunction> {
    if (this.closed) throw new ZvError('RUNTIME_UNAVAILABLE', 'The js runtime was closed');
    const compiled = await compileSource(source);
    let first: Instance;
    try {
      first = await Instance.create(source, compiled, log, this.maxResponseBytes);
    } catch (e) {
      if (e instanceof ZvError && e.code === 'FUNCTION_COMPILE_ERROR') throw e;
      const why = e instanceof ZvError && e.code === 'FUNCTION_TIMEOUT' ? `top-level code did not finish within ${source.timeoutMs} ms`
        : e instanceof ZvError && e.code === 'FUNCTION_MEMORY_LIMIT' ? `top-level code went over the memory limit of ${source.memoryMb} MiB`
          : `the function could not start: ${e instanceof Error ? e.message : String(e)}`;
      throw compileError(source, why);
    }
    const fn = new JsFunction(source, compiled, log, first, this.maxResponseBytes, (f) => this.loaded.delete(f));
    this.loaded.add(fn);
    return fn;
  }

  /**
   * Compiles and starts `source` exactly as `load` does (same errors: syntax, top-level code that
   * throws, loops or runs out of memory), then lets the isolate go: a synced function keeps no
   * isolate until its first call (issue 10: idle functions cost nothing). At most
   * COMPILE_CONCURRENCY run at once; the others wait their turn (first come, first served).
   */
  async compile(source: FunctionSource, log: FunctionLogger): Promise<void> {
    await this.checking.run(async () => {
      const fn = await this.load(source, log);
      await fn.dispose();
    });
  }

  /** Functions loaded and not yet disposed (each keeps an isolate). */
  get liveCount(): number {
    return this.loaded.size;
  }

  async available(): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      const iso = new (isolatedVm().Isolate)({ memoryLimit: 8 });
      const ctx = await iso.createContext();
      const two: unknown = await ctx.eval('1 + 1');
      iso.dispose();
      return two === 2 ? { ok: true } : { ok: false, reason: 'isolated-vm returned a wrong result' };
    } catch (e) {
      return { ok: false, reason: `isolated-vm cannot run here: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.loaded].map((f) => f.dispose()));
    this.loaded.clear();
  }
}
