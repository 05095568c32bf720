// Messages between the Lua runtime (main thread, pool.ts) and its worker threads (worker.ts).
// The hot path (calls and their answers, printed lines) goes through the shared rings of channel.ts;
// what does not fit there (a definition, a drop, a request or answer too large for a ring) goes as
// a message on the channel's MessagePort, in order with the ring's records. A worker runs the jobs
// it is sent one after another (a batch: several calls at once when requests queue); `define`/`drop`
// only update its cache of function definitions. Each worker shares a small progress buffer with the
// pool (see PROGRESS_*): which job it runs and since when, so the pool's backstop can tell a job
// that overran from the ones that wait behind it. `ready`/`fatal` come on the worker's parentPort.
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { ErrorCode } from '../../errors/registry.js';
import type { MessagePort } from 'node:worker_threads';
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
  | { kind: 'compile'; job: number; fn: number }
  | { kind: 'invoke'; job: number; fn: number; req: FunctionRequest };

/** Messages on the channel's port to the worker (`fn`: the function's number in the pool). */
export type ToWorker =
  | { t: 'define'; fn: number; def: LuaFunctionDef }
  | { t: 'drop'; fn: number }
  | { t: 'run'; jobs: RunJob[] };

export type JobOutcome =
  | { ok: true; response?: FunctionResponse }
  | { ok: false; code: ErrorCode; message: string };

export type JobResult = { job: number } & JobOutcome;

/** Messages on the channel's port to the pool. */
export type FromWorker =
  | { t: 'log'; fn: number; stream: LogStream; line: string }
  | { t: 'done'; results: JobResult[] };

/** Messages on the worker's parentPort. */
export type WorkerStatus =
  | { t: 'ready' }
  | { t: 'fatal'; message: string };

/** The worker's `workerData`. */
export interface WorkerData {
  /** PROGRESS_BYTES shared bytes, read through progressViews. */
  progress: SharedArrayBuffer;
  /** The channel's rings and control words (channel.ts). */
  channel: SharedArrayBuffer;
  /** The channel's port (the pool holds the other end). */
  port: MessagePort;
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
