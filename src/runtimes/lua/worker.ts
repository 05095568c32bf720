// Entry of a Lua worker thread (see pool.ts). It owns one WASM Lua module and a cache of function
// definitions and their Lua states, built lazily on first use. Jobs come through the channel's
// request ring (channel.ts), several at once when calls queue; each runs synchronously under its own
// deadline that the instruction-count hook enforces, and the shared progress buffer says which one
// runs since when. Its answer goes into the answer ring as soon as it ends; the pool is rung when a
// batch is done, or when answers have waited FLUSH_MS (after a job, or from the hook while a long
// one runs), so they neither wait for it nor die with the worker if it has to be stopped. With
// nothing to do the thread sleeps in Atomics.wait: it never returns to its event loop. A state that
// timed out or ran out of memory is freed and rebuilt on its next call.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { FunctionResponse } from '../../core/function-contract.js';
import type { ErrorCode } from '../../errors/registry.js';
import { responseTooLarge } from '../response-cap.js';
import {
  A_FAIL, A_LOG, A_OK, ANS_BESIDE, HEAP_KIB, MAIN_WAIT, R_COMPILE, R_INVOKE, REQ_BESIDE, RecordReader, RecordWriter, SEQ, WORKER_SLEEP, answerRing,
  requestRing,
} from './channel.js';
import type { PortMessage } from './channel.js';
import { PROGRESS_IDLE, progressId, progressViews } from './protocol.js';
import type { FromWorker, JobOutcome, LuaFunctionDef, RunJob, ToWorker, WorkerData, WorkerStatus } from './protocol.js';
import { DEFAULT_TEXT_TYPE, LuaFailure, LuaFunctionState, LuaHost } from './state.js';
import type { RawAnswer } from './state.js';

const MAX_LOG_LINES = 1000;
const MAX_LOG_LINE = 16 * 1024;
const CLOSE_BUDGET_MS = 500;
/** Answers are rung to the pool at least this often (ms) during a long batch, not only at its end. */
const FLUSH_MS = 2;

interface Entry {
  def: LuaFunctionDef;
  state?: LuaFunctionState;
}

const status = parentPort;
if (!status) throw new Error('the Lua worker must run in a worker thread');
const { progress, channel, port } = workerData as WorkerData;
const shared = progressViews(progress);
const requests = requestRing(channel);
const answers = answerRing(channel);
const ctrl = requests.ctrl;
const reader = new RecordReader();
const writer = new RecordWriter();

/** Says what the worker does from now on (the time first, then the job id, which publishes it). */
function setProgress(job: number): void {
  shared.since[0] = Date.now();
  Atomics.store(shared.job, 0, job);
}

let host: LuaHost;
try {
  host = await LuaHost.create();
} catch (e) {
  status.postMessage({ t: 'fatal', message: e instanceof Error ? e.message : String(e) } satisfies WorkerStatus);
  process.exit(1);
}

const entries = new Map<number, Entry>();
let logFn = 0;
let logLines = 0;
/** Answers written since the pool was last rung, and when it was. */
let unrung = false;
let rungAt = 0;

/** Sends `msg` beside the answer ring, in order with its records. */
function postBeside(msg: FromWorker): void {
  port.postMessage({ pos: answers.written, msg } satisfies PortMessage<FromWorker>);
  Atomics.add(ctrl, ANS_BESIDE, 1);
}

/** Tells the pool that answers wait, if it waits for them. */
function ring(): void {
  host.lateAt = Infinity;
  rungAt = Date.now();
  if (!unrung) return;
  unrung = false;
  Atomics.store(ctrl, HEAP_KIB, Math.ceil(host.heapBytes() / 1024));
  if (Atomics.compareExchange(ctrl, MAIN_WAIT, 1, 0) === 1) Atomics.notify(ctrl, MAIN_WAIT);
}
// A job that runs long (its Lua code reaches the hook FLUSH_MS after the pool was last rung) rings
// for the answers finished before it.
host.onLate = ring;

host.onLog = (text) => {
  for (const raw of text.split('\n')) {
    if (logLines > MAX_LOG_LINES) return;
    const line = logLines === MAX_LOG_LINES ? '[zerverless: further log lines of this invocation were dropped]' : raw.slice(0, MAX_LOG_LINE);
    logLines++;
    unrung = true;
    const at = answers.reserve(line.length * 3 + 8);
    if (at < 0) postBeside({ t: 'log', fn: logFn, stream: 'stdout', line });
    else {
      writer.begin(answers.buf, at);
      writer.u32(logFn);
      writer.str(line);
      answers.commit(A_LOG, writer.length);
    }
  }
};

/** Sends a job's outcome to the pool (rung later). */
function answer(job: number, outcome: JobOutcome): void {
  unrung = true;
  if (outcome.ok) {
    const res = outcome.response;
    if (writeResponse(job, res)) return;
  } else {
    const at = answers.reserve(16 + (outcome.code.length + outcome.message.length) * 3);
    if (at >= 0) {
      writer.begin(answers.buf, at);
      writer.u32(job);
      writer.str(outcome.code);
      writer.str(outcome.message);
      answers.commit(A_FAIL, writer.length);
      return;
    }
  }
  postBeside({ t: 'done', results: [{ job, ...outcome }] });
}

/** The job whose plain answer writeRaw copies into the answer ring. */
let rawJob = 0;
/** A plain answer straight from WASM memory into the answer ring (false when it does not fit). */
function writeRaw(a: RawAnswer): boolean {
  const { heap, headers } = a;
  let bound = 24 + a.bodyLen + (a.contentType ? 48 : 0);
  for (let i = 0; i < headers.length; i += 4) bound += (headers[i + 1] as number) + (headers[i + 3] as number) + 8;
  const at = answers.reserve(bound);
  if (at < 0) return false;
  writer.begin(answers.buf, at);
  writer.u32(rawJob);
  writer.u32(a.status);
  writer.u32(headers.length / 4 + (a.contentType ? 1 : 0));
  for (let i = 0; i < headers.length; i += 4) {
    writer.copy(heap, headers[i] as number, headers[i + 1] as number);
    writer.copy(heap, headers[i + 2] as number, headers[i + 3] as number);
  }
  if (a.contentType) {
    writer.str('content-type');
    writer.str(DEFAULT_TEXT_TYPE);
  }
  writer.u32(a.text ? 0 : 1);
  writer.copy(heap, a.bodyPtr, a.bodyLen);
  answers.commit(A_OK, writer.length);
  unrung = true;
  return true;
}

function writeResponse(job: number, res: FunctionResponse | undefined): boolean {
  let bound = 24;
  if (res) {
    for (const k of Object.keys(res.headers)) bound += (k.length + String(res.headers[k]).length) * 3 + 8;
    bound += typeof res.body === 'string' ? res.body.length * 3 : res.body.length;
  }
  const at = answers.reserve(bound);
  if (at < 0) return false;
  writer.begin(answers.buf, at);
  writer.u32(job);
  if (!res) writer.u32(0);
  else {
    writer.u32(res.status);
    const names = Object.keys(res.headers);
    writer.u32(names.length);
    for (const k of names) {
      writer.str(k);
      writer.str(String(res.headers[k]));
    }
    if (typeof res.body === 'string') {
      writer.u32(0);
      writer.str(res.body);
    } else {
      writer.u32(1);
      writer.bytes(res.body);
    }
  }
  answers.commit(A_OK, writer.length);
  return true;
}

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

/**
 * Runs one job and answers it: `req` is the request, either encoded (a view of the request ring) or
 * an object (sent beside the ring); none for a compile job. The worker stops after answering when
 * the WASM module itself failed.
 */
function runJob(job: number, fn: number, kind: 'compile' | 'invoke', req: Uint8Array | RunJob | null): void {
  setProgress(progressId(job));
  if (unrung) host.lateAt = rungAt + FLUSH_MS;
  const entry = entries.get(fn);
  let outcome: JobOutcome | null;
  let broken = false;
  if (!entry) {
    outcome = { ok: false, code: 'FUNCTION_UNAVAILABLE', message: 'The function is not loaded' };
  } else {
    logFn = fn;
    logLines = 0;
    host.timedOut = false;
    host.deadline = Date.now() + entry.def.timeoutMs;
    try {
      entry.state ??= LuaFunctionState.create(host, entry.def);
      if (kind === 'compile') outcome = { ok: true };
      else if (req instanceof Uint8Array) {
        rawJob = job;
        // null: the answer went straight into the ring
        const response = entry.state.callEncoded(req, writeRaw);
        outcome = response ? { ok: true, response } : null;
      }
      else outcome = { ok: true, response: entry.state.call((req as RunJob & { kind: 'invoke' }).req) };
    } catch (e) {
      if (e instanceof LuaFailure) {
        outcome = kind === 'compile' ? compileOutcome(e, entry.def) : invokeOutcome(e, entry.def);
        if (e.kind === 'timeout' || e.kind === 'memory') closeState(entry);
      } else {
        // the WASM module itself failed: answer, then let the pool replace this worker
        broken = true;
        const message = `The Lua runtime failed: ${e instanceof Error ? e.message : String(e)}`;
        outcome = { ok: false, code: kind === 'compile' ? 'FUNCTION_COMPILE_ERROR' : 'FUNCTION_ERROR', message };
      }
    } finally {
      host.deadline = Infinity;
      host.timedOut = false;
      host.lateAt = Infinity;
    }
    if (kind === 'compile' && !outcome?.ok) entries.delete(fn);
  }
  if (outcome) answer(job, outcome);
  if (broken) {
    ring();
    process.exit(1);
  }
  if (Date.now() - rungAt >= FLUSH_MS) ring();
}

function onMessage(msg: ToWorker): void {
  switch (msg.t) {
    case 'define':
      entries.set(msg.fn, { def: msg.def });
      break;
    case 'drop': {
      const entry = entries.get(msg.fn);
      entries.delete(msg.fn);
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
      for (const job of msg.jobs) runJob(job.job, job.fn, job.kind, job);
      break;
  }
}

function onRecord(): void {
  reader.begin(requests.buf, requests.pos);
  const job = reader.u32();
  const fn = reader.u32();
  if (requests.type === R_INVOKE) runJob(job, fn, 'invoke', requests.buf.subarray(reader.p, requests.pos + requests.len));
  else if (requests.type === R_COMPILE) runJob(job, fn, 'compile', null);
}

/** The next message beside the request ring, held until the ring reaches its position. */
let held: PortMessage<ToWorker> | undefined;
let besideSeen = 0;
function beside(): PortMessage<ToWorker> | undefined {
  if (held || Atomics.load(ctrl, REQ_BESIDE) === besideSeen) return held;
  const got = receiveMessageOnPort(port);
  if (!got) return undefined;
  besideSeen++;
  held = got.message as PortMessage<ToWorker>;
  return held;
}

status.postMessage({ t: 'ready' } satisfies WorkerStatus);
setProgress(PROGRESS_IDLE);
rungAt = Date.now();
for (;;) {
  const seq = Atomics.load(ctrl, SEQ);
  for (;;) {
    const msg = beside();
    if (msg && ((msg.pos - requests.consumed) | 0) <= 0) {
      held = undefined;
      onMessage(msg.msg);
      continue;
    }
    if (!requests.read()) break;
    onRecord();
    requests.release();
  }
  setProgress(PROGRESS_IDLE);
  ring();
  Atomics.store(ctrl, WORKER_SLEEP, 1);
  if (Atomics.load(ctrl, SEQ) === seq) Atomics.wait(ctrl, SEQ, seq);
  Atomics.store(ctrl, WORKER_SLEEP, 0);
  // the answers of what comes now are rung when it is done, or FLUSH_MS from now
  rungAt = Date.now();
}
