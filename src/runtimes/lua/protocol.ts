// Messages between the Lua runtime (main thread, pool.ts) and its worker threads (worker.ts).
// A worker runs one job at a time; `define`/`drop` only update its cache of function definitions.
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { ErrorCode } from '../../errors/registry.js';
import type { LogStream } from '../types.js';

/** Everything a worker needs to build a function's Lua state. */
export interface LuaFunctionDef {
  filename: string;
  code: string;
  lineOffset?: number;
  timeoutMs: number;
  memoryMb: number;
  env: Record<string, string>;
  /** --max-response: a larger response fails with FUNCTION_RESPONSE_TOO_LARGE inside the worker. */
  maxResponseBytes?: number;
}

export type ToWorker =
  | { t: 'define'; key: string; def: LuaFunctionDef }
  | { t: 'drop'; key: string }
  /** Build the function's state now (runs the top-level code) and report compile errors. */
  | { t: 'compile'; job: number; key: string }
  | { t: 'invoke'; job: number; key: string; req: FunctionRequest };

export type JobOutcome =
  | { ok: true; response?: FunctionResponse }
  | { ok: false; code: ErrorCode; message: string };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'fatal'; message: string }
  | { t: 'log'; key: string; stream: LogStream; line: string }
  | ({ t: 'done'; job: number; heapBytes: number } & JobOutcome);
