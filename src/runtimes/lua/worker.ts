// Entry of a Lua worker thread (see pool.ts). It owns one WASM Lua module and a cache of function
// definitions and their Lua states, built lazily on first use. Jobs arrive one at a time; each runs
// synchronously under a deadline that the instruction-count hook enforces. A state that timed out or
// ran out of memory is freed and rebuilt on its next call.
import { parentPort } from 'node:worker_threads';
import type { ErrorCode } from '../../errors/registry.js';
import { responseTooLarge } from '../response-cap.js';
import type { FromWorker, JobOutcome, LuaFunctionDef, ToWorker } from './protocol.js';
import { LuaFailure, LuaFunctionState, LuaHost } from './state.js';

const MAX_LOG_LINES = 1000;
const MAX_LOG_LINE = 16 * 1024;
const CLOSE_BUDGET_MS = 500;

interface Entry {
  def: LuaFunctionDef;
  state?: LuaFunctionState;
}

const port = parentPort;
if (!port) throw new Error('the Lua worker must run in a worker thread');

const post = (msg: FromWorker): void => port.postMessage(msg);

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

function runJob(msg: Extract<ToWorker, { t: 'compile' | 'invoke' }>): void {
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
      outcome = msg.t === 'invoke' ? { ok: true, response: entry.state.call(msg.req) } : { ok: true };
    } catch (e) {
      if (e instanceof LuaFailure) {
        outcome = msg.t === 'compile' ? compileOutcome(e, entry.def) : invokeOutcome(e, entry.def);
        if (e.kind === 'timeout' || e.kind === 'memory') closeState(entry);
      } else {
        // the WASM module itself failed: answer, then let the pool replace this worker
        broken = true;
        const message = `The Lua runtime failed: ${e instanceof Error ? e.message : String(e)}`;
        outcome = { ok: false, code: msg.t === 'compile' ? 'FUNCTION_COMPILE_ERROR' : 'FUNCTION_ERROR', message };
      }
    } finally {
      host.deadline = Infinity;
      host.timedOut = false;
    }
    if (msg.t === 'compile' && !outcome.ok) entries.delete(msg.key);
  }
  post({ t: 'done', job: msg.job, heapBytes: host.heapBytes(), ...outcome });
  if (broken) process.exit(1);
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
    case 'compile':
    case 'invoke':
      runJob(msg);
      break;
  }
});

post({ t: 'ready' });
