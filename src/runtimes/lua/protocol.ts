// Messages between the Lua runtime (main thread, pool.ts) and its worker threads (worker.ts).
// A worker runs the jobs of a `run` message one after another (a batch: several calls per message
// when requests queue); `define`/`drop` only update its cache of function definitions. Each worker
// shares a small progress buffer with the pool (see PROGRESS_*): which job it runs and since when,
// so the pool's backstop can tell a job that overran from the ones that wait behind it.
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

/** One job of a batch: `compile` builds the function's state now (runs the top-level code). */
export type RunJob =
  | { kind: 'compile'; job: number; key: string }
  | { kind: 'invoke'; job: number; key: string; req: FunctionRequest };

export type ToWorker =
  | { t: 'define'; key: string; def: LuaFunctionDef }
  | { t: 'drop'; key: string }
  /** `jobs`: the JSON of a RunJob[] (every request field is a string). */
  | { t: 'run'; jobs: string };

export type JobOutcome =
  | { ok: true; response?: FunctionResponse }
  | { ok: false; code: ErrorCode; message: string };

export type JobResult = { job: number } & JobOutcome;

export type FromWorker =
  | { t: 'ready' }
  | { t: 'fatal'; message: string }
  | { t: 'log'; key: string; stream: LogStream; line: string }
  /** Results of a batch's jobs in order; a long batch sends several. */
  | { t: 'done'; heapBytes: number; results: JobResult[] };

/** The worker's `workerData`. */
export interface WorkerData {
  /** PROGRESS_BYTES shared bytes, read through progressViews. */
  progress: SharedArrayBuffer;
}
export const PROGRESS_BYTES = 16;
/** `job`: the id (progressId) of the job the worker runs, or PROGRESS_IDLE between batches. */
export const PROGRESS_IDLE = -1;
/** The id a job has in the progress buffer. */
export const progressId = (job: number): number => job & 0x7fffffff;

/**
 * The progress buffer: `job[0]` (written with Atomics.store, after `since[0]`) and `since[0]`, the
 * Date.now() when that job started or the worker became idle.
 */
export function progressViews(buffer: SharedArrayBuffer): { job: Int32Array; since: Float64Array } {
  return { job: new Int32Array(buffer, 0, 1), since: new Float64Array(buffer, 8, 1) };
}
