// The Lua 5.4 function runtime (PRODUCT.md §4): `LuaRuntime` compiles Lua handlers and invokes them
// in a pool of worker threads running wasmoon (Lua compiled to WASM); see pool.ts for scheduling,
// worker.ts/state.ts for the per-function Lua states and prelude.ts for the sandbox.
import { availableParallelism } from 'node:os';
import { ZvError } from '../../errors/registry.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction } from '../types.js';
import { LuaPool } from './pool.js';
import { responseCap } from '../response-cap.js';
import type { ResponseCapOptions } from '../response-cap.js';

export interface LuaRuntimeOptions extends ResponseCapOptions {
  /** Most worker threads running Lua at once (default: the number of cores, at least 2). */
  workers?: number;
  /** How long after its timeout a job may run before its worker is terminated (default 1000 ms). */
  graceMs?: number;
  /** A worker whose WASM memory grew past this is replaced once idle (default 512 MiB). */
  recycleMb?: number;
}

export class LuaRuntime implements FunctionRuntime {
  readonly name = 'lua' as const;
  private readonly pool: LuaPool;
  private nextKey = 1;
  private readonly maxResponseBytes: number;

  constructor(opts: LuaRuntimeOptions = {}) {
    this.maxResponseBytes = responseCap(opts);
    this.pool = new LuaPool({
      maxWorkers: Math.max(2, Math.floor(opts.workers ?? availableParallelism())),
      graceMs: Math.max(0, opts.graceMs ?? 1000),
      recycleMb: Math.max(16, opts.recycleMb ?? 512),
    });
  }

  async load(source: FunctionSource, log: FunctionLogger): Promise<LoadedFunction> {
    const key = `${this.nextKey++}:${source.id}`;
    this.pool.register(key, {
      filename: source.filename,
      code: source.code,
      lineOffset: source.lineOffset,
      timeoutMs: Math.max(1, source.timeoutMs),
      memoryMb: Math.max(1, source.memoryMb),
      env: { ...source.env },
      maxResponseBytes: this.maxResponseBytes,
    }, log);
    try {
      await this.pool.run(key, 'compile');
    } catch (e) {
      this.pool.unregister(key);
      if (e instanceof ZvError && e.code === 'FUNCTION_UNAVAILABLE') throw new ZvError('RUNTIME_UNAVAILABLE', e.message, undefined, { cause: e });
      throw e;
    }
    return new LuaFunction(this.pool, key);
  }

  async available(): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      await this.pool.warm();
      return { ok: true };
    } catch (e) {
      return { ok: false, reason: `wasmoon cannot start: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  /** Functions loaded and not yet disposed (each has a Lua state in the workers that ran it). */
  get liveCount(): number {
    return this.pool.registered;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

class LuaFunction implements LoadedFunction {
  private disposed = false;

  constructor(private readonly pool: LuaPool, private readonly key: string) {}

  invoke(req: FunctionRequest): Promise<FunctionResponse> {
    if (this.disposed) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', 'The function was unloaded'));
    // the pool answers an invoke job with a response or rejects it (FUNCTION_BAD_RESPONSE without one)
    return this.pool.run(this.key, 'invoke', req) as Promise<FunctionResponse>;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.pool.unregister(this.key);
  }
}
