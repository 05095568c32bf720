// Entry of a Lua worker thread (see pool.ts). It owns one WASM Lua module and a cache of function
// definitions and their Lua states, built lazily on first use. Jobs arrive in batches; each runs
// synchronously under its own deadline that the instruction-count hook enforces, and the shared
// progress buffer says which one runs since when. A state that timed out or ran out of memory is
// freed and rebuilt on its next call.
import { parentPort, workerData } from 'node:worker_threads';
import type { ErrorCode } from '../../errors/registry.js';
import { responseTooLarge } from '../response-cap.js';
import { PROGRESS_IDLE, progressId, progressViews } from './protocol.js';
import type { FromWorker, JobOutcome, JobResult, LuaFunctionDef, RunJob, ToWorker, WorkerData } from './protocol.js';
import { LuaFailure, LuaFunctionState, LuaHost } from './state.js';

const MAX_LOG_LINES = 1000;
const MAX_LOG_LINE = 16 * 1024;
const CLOSE_BUDGET_MS = 500;
/** Results of a long batch are sent at least this often (ms), not all at its end. */
const FLUSH_MS = 2;

interface Entry {
  def: LuaFunctionDef;
  state?: LuaFunctionState;
}

const port = parentPort;
if (!port) throw new Error('the Lua worker must run in a worker thread');

const post = (msg: FromWorker): void => port.postMessage(msg);
const { progress } = workerData as WorkerData;
const shared = progressViews(progress);
/** Says what the worker does from now on (the time first, then the job id, which publishes it). */
function setProgress(job: number): void {
  shared.since[0] = Date.now();
  Atomics.store(shared.job, 0, job);
}

let host: LuaHost;
try {
  host = await LuaHost.create();
} catch (e) {
  post({ t: 'fatal', message: e instanceof Error ? e.message : String(e) });
  process.exit(1);
}

const entries = new Map<string, Entry>();
let logKey = '';
let logLines = 0;

host.onLog = (text) => {
  for (const raw of text.split('\n')) {
    if (logLines > MAX_LOG_LINES) return;
    const line = logLines === MAX_LOG_LINES ? '[zerverless: further log lines of this invocation were dropped]' : raw.slice(0, MAX_LOG_LINE);
    logLines++;
    post({ t: 'log', key: logKey, stream: 'stdout', line });
  }
};

function closeState(entry: Entry): void {
  const state = entry.state;
  entry.state = undefined;
  if (!state) return;
  host.deadline = Date.now() + CLOSE_BUDGET_MS;
  try {
    state.close();
  } finally {
    host.deadline = Infinity;
    host.timedOut = false;
  }
}

function compileOutcome(e: LuaFailure, def: LuaFunctionDef): JobOutcome {
  const messages: Record<LuaFailure['kind'], string> = {
    syntax: e.message,
    error: e.message,
    nohandle: e.message,
    bad: e.message,
    timeout: `${def.filename}: the top-level code did not finish within ${def.timeoutMs} ms`,
    memory: `${def.filename}: the top-level code went over the memory limit of ${def.memoryMb} MiB`,
    toolarge: e.message,
  };
  return { ok: false, code: 'FUNCTION_COMPILE_ERROR', message: messages[e.kind] };
}

function invokeOutcome(e: LuaFailure, def: LuaFunctionDef): JobOutcome {
  const codes: Record<LuaFailure['kind'], ErrorCode> = {
    syntax: 'FUNCTION_ERROR',
    error: 'FUNCTION_ERROR',
    nohandle: 'FUNCTION_ERROR',
    bad: 'FUNCTION_BAD_RESPONSE',
    timeout: 'FUNCTION_TIMEOUT',
    memory: 'FUNCTION_MEMORY_LIMIT',
    toolarge: 'FUNCTION_RESPONSE_TOO_LARGE',
  };
  let message = e.message;
  if (e.kind === 'timeout') message = `The function did not answer within ${def.timeoutMs} ms`;
  if (e.kind === 'memory') message = `The function went over its memory limit of ${def.memoryMb} MiB`;
  if (e.kind === 'toolarge') message = responseTooLarge(def.maxResponseBytes ?? 0, e.size).message;
  return { ok: false, code: codes[e.kind], message };
}

/** Runs one job; `broken` when the WASM module failed and the worker must stop after answering. */
function runJob(msg: RunJob): { result: JobResult; broken: boolean } {
  const entry = entries.get(msg.key);
  let outcome: JobOutcome;
  let broken = false;
  if (!entry) {
    outcome = { ok: false, code: 'FUNCTION_UNAVAILABLE', message: 'The function is not loaded' };
  } else {
    logKey = msg.key;
    logLines = 0;
    host.timedOut = false;
    host.deadline = Date.now() + entry.def.timeoutMs;
    try {
      entry.state ??= LuaFunctionState.create(host, entry.def);
      outcome = msg.kind === 'invoke' ? { ok: true, response: entry.state.call(msg.req) } : { ok: true };
    } catch (e) {
      if (e instanceof LuaFailure) {
        outcome = msg.kind === 'compile' ? compileOutcome(e, entry.def) : invokeOutcome(e, entry.def);
        if (e.kind === 'timeout' || e.kind === 'memory') closeState(entry);
      } else {
        // the WASM module itself failed: answer, then let the pool replace this worker
        broken = true;
        const message = `The Lua runtime failed: ${e instanceof Error ? e.message : String(e)}`;
        outcome = { ok: false, code: msg.kind === 'compile' ? 'FUNCTION_COMPILE_ERROR' : 'FUNCTION_ERROR', message };
      }
    } finally {
      host.deadline = Infinity;
      host.timedOut = false;
    }
    if (msg.kind === 'compile' && !outcome.ok) entries.delete(msg.key);
  }
  return { result: { job: msg.job, ...outcome }, broken };
}

let results: JobResult[] = [];
let flushedAt = 0;
/** Sends the answers of the batch so far. */
function flush(): void {
  host.lateAt = Infinity;
  flushedAt = Date.now();
  if (results.length === 0) return;
  post({ t: 'done', heapBytes: host.heapBytes(), results });
  results = [];
}
// A job that runs long (its Lua code reaches the hook FLUSH_MS after the last answers were sent)
// sends the answers finished before it first, so they neither wait for it nor die with the worker
// if it has to be stopped.
host.onLate = flush;

function runBatch(jobs: RunJob[]): void {
  flushedAt = Date.now();
  for (const job of jobs) {
    setProgress(progressId(job.job));
    if (results.length > 0) host.lateAt = flushedAt + FLUSH_MS;
    const { result, broken } = runJob(job);
    // (after the job: onLate may have replaced `results` while it ran)
    results.push(result);
    host.lateAt = Infinity;
    if (broken) {
      flush();
      process.exit(1);
    }
    if (Date.now() - flushedAt >= FLUSH_MS) flush();
  }
  setProgress(PROGRESS_IDLE);
  flush();
}

port.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'define':
      entries.set(msg.key, { def: msg.def });
      break;
    case 'drop': {
      const entry = entries.get(msg.key);
      entries.delete(msg.key);
      if (entry) {
        try {
          closeState(entry);
        } catch {
          process.exit(1);
        }
      }
      break;
    }
    case 'run':
      runBatch(JSON.parse(msg.jobs) as RunJob[]);
      break;
  }
});

post({ t: 'ready' });
