// A loaded Python function: one warm worker, a FIFO queue of invocations (one at a time), and the
// recovery rules — a timed-out, memory-exhausted, crashed or externally killed worker is replaced
// by a fresh one while the function keeps answering.
import { normalizeResult } from '../../core/function-contract.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import { ZvError } from '../../errors/registry.js';
import type { FunctionLogger, FunctionSource, LoadedFunction } from '../types.js';
import { WorkerGone, WorkerProcess, maxReplyBytes } from './worker-process.js';
import { checkResponse, clipMessage, responseTooLarge } from '../response-cap.js';
import type { WorkerCommand, WorkerReply } from './worker-process.js';

/** Extra time a worker gets to start and import the module, on top of the function's timeout. */
const STARTUP_GRACE_MS = 10000;
const MAX_RESTART_DELAY_MS = 30000;

interface Job {
  req: FunctionRequest;
  resolve: (r: FunctionResponse) => void;
  reject: (e: unknown) => void;
}

/** Starts a worker and loads the code; resolves once `handle` is ready. */
export async function startWorker(
  source: FunctionSource, cmd: WorkerCommand, seccomp: boolean, log: FunctionLogger, maxResponseBytes: number,
): Promise<WorkerProcess> {
  const w = new WorkerProcess(cmd, log, maxReplyBytes(maxResponseBytes));
  const msg = {
    t: 'load', code: source.code, filename: source.filename, lineOffset: source.lineOffset ?? 1,
    memoryMb: source.memoryMb, env: source.env, seccomp, maxResponse: maxResponseBytes,
  };
  let reply: WorkerReply;
  try {
    reply = await w.request(msg, source.timeoutMs + STARTUP_GRACE_MS);
  } catch (e) {
    w.kill();
    if (e instanceof WorkerGone && e.reason === 'timeout') {
      throw new ZvError('FUNCTION_COMPILE_ERROR', `${source.filename}: the module did not finish loading within ${source.timeoutMs} ms`);
    }
    if (e instanceof WorkerGone && e.memoryHint) {
      throw new ZvError('FUNCTION_COMPILE_ERROR', `${source.filename}: loading the module went over the memory limit of ${source.memoryMb} MiB`);
    }
    throw new ZvError('FUNCTION_UNAVAILABLE', `${source.filename}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (reply.t === 'ready') return w;
  w.kill();
  if (reply.t === 'compile_error') throw new ZvError('FUNCTION_COMPILE_ERROR', reply.message ?? `${source.filename}: cannot load`);
  if (reply.t === 'fatal') throw new ZvError('RUNTIME_UNAVAILABLE', reply.message);
  throw new ZvError('FUNCTION_UNAVAILABLE', `${source.filename}: unexpected worker reply ${reply.t}`);
}

function toResponse(reply: WorkerReply): FunctionResponse {
  let value = reply.value;
  if (reply.bytes === 'value' && typeof value === 'string') value = new Uint8Array(Buffer.from(value, 'base64'));
  if (reply.bytes === 'body' && value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.body === 'string') value = { ...v, body: new Uint8Array(Buffer.from(v.body, 'base64')) };
  }
  if (value instanceof Uint8Array) {
    return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: value };
  }
  const n = normalizeResult(value);
  if (!n.ok) throw new ZvError('FUNCTION_BAD_RESPONSE', n.reason);
  return n.response;
}

export class PythonFunction implements LoadedFunction {
  private worker: WorkerProcess | undefined;
  private starting: Promise<WorkerProcess> | undefined;
  private readonly queue: Job[] = [];
  private busy = false;
  private disposed = false;
  private restartDelay = 100;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: FunctionSource,
    private readonly cmd: WorkerCommand,
    private readonly seccomp: boolean,
    private readonly log: FunctionLogger,
    private readonly maxResponseBytes: number,
    first: WorkerProcess,
    private readonly onDispose: () => void = () => {},
  ) {
    this.adopt(first);
  }

  /** Host pid of the current worker (bwrap when sandboxed), for diagnostics and tests. */
  get pid(): number | undefined {
    return this.worker?.alive ? this.worker.pid : undefined;
  }

  invoke(req: FunctionRequest): Promise<FunctionResponse> {
    if (this.disposed) return Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', `${this.source.id} has been unloaded`));
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.pump();
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.restartTimer);
    this.onDispose();
    for (const job of this.queue.splice(0)) job.reject(new ZvError('FUNCTION_UNAVAILABLE', `${this.source.id} has been unloaded`));
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      w.kill();
      await w.exited;
    }
    const s = this.starting;
    if (s) await s.then((w2) => { w2.kill(); return w2.exited; }, () => {});
  }

  private adopt(w: WorkerProcess): void {
    this.worker = w;
    w.onExit = () => {
      if (this.worker !== w) return;
      this.worker = undefined;
      // Died while idle (killed from outside, crashed in a thread…): start a replacement, backing off
      // if replacements keep dying. A death during an invocation is handled by run().
      if (!this.busy && !this.disposed) this.scheduleRestart();
    };
  }

  private scheduleRestart(): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.disposed && !this.worker) this.ensureWorker().catch(() => {});
    }, this.restartDelay);
    this.restartTimer.unref();
    this.restartDelay = Math.min(this.restartDelay * 2, MAX_RESTART_DELAY_MS);
  }

  private ensureWorker(): Promise<WorkerProcess> {
    if (this.worker?.alive) return Promise.resolve(this.worker);
    if (!this.starting) {
      const p = startWorker(this.source, this.cmd, this.seccomp, this.log, this.maxResponseBytes).then(
        (w) => {
          if (this.starting === p) this.starting = undefined;
          if (this.disposed) {
            w.kill();
            throw new ZvError('FUNCTION_UNAVAILABLE', `${this.source.id} has been unloaded`);
          }
          this.adopt(w);
          return w;
        },
        (e: unknown) => {
          if (this.starting === p) this.starting = undefined;
          throw e;
        },
      );
      this.starting = p;
    }
    return this.starting;
  }

  private pump(): void {
    if (this.busy || this.disposed) return;
    const job = this.queue.shift();
    if (!job) return;
    this.busy = true;
    this.run(job.req).then(job.resolve, job.reject).finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  private async run(req: FunctionRequest): Promise<FunctionResponse> {
    let w: WorkerProcess;
    try {
      w = await this.ensureWorker();
    } catch (e) {
      throw new ZvError('FUNCTION_UNAVAILABLE', `${this.source.id}: cannot start the python worker: ${e instanceof Error ? e.message : String(e)}`);
    }
    let reply: WorkerReply;
    try {
      reply = await w.request({ t: 'invoke', req }, this.source.timeoutMs);
    } catch (e) {
      this.replace(w);
      if (this.disposed) throw new ZvError('FUNCTION_UNAVAILABLE', `${this.source.id} has been unloaded`);
      if (e instanceof WorkerGone && e.reason === 'timeout') {
        throw new ZvError('FUNCTION_TIMEOUT', `${this.source.id} did not answer within ${this.source.timeoutMs} ms`);
      }
      if (e instanceof WorkerGone && e.reason === 'toolarge') throw responseTooLarge(this.maxResponseBytes);
      if (e instanceof WorkerGone && e.memoryHint) {
        throw new ZvError('FUNCTION_MEMORY_LIMIT', `${this.source.id} went over its memory limit of ${this.source.memoryMb} MiB`);
      }
      throw new ZvError('FUNCTION_ERROR', `${this.source.id}: ${e instanceof Error ? e.message : String(e)}`);
    }
    switch (reply.t) {
      case 'result':
        this.restartDelay = 100;
        return checkResponse(toResponse(reply), this.maxResponseBytes);
      case 'error':
        throw new ZvError('FUNCTION_ERROR', clipMessage(reply.message ?? 'the function raised an error'));
      case 'bad_response':
        throw new ZvError('FUNCTION_BAD_RESPONSE', reply.message === undefined ? undefined : clipMessage(reply.message));
      case 'too_large':
        this.restartDelay = 100;
        throw responseTooLarge(this.maxResponseBytes, typeof reply.size === 'number' ? reply.size : undefined);
      case 'memory':
        this.replace(w);
        throw new ZvError('FUNCTION_MEMORY_LIMIT', `${this.source.id} went over its memory limit of ${this.source.memoryMb} MiB`);
      default:
        this.replace(w);
        throw new ZvError('FUNCTION_ERROR', `${this.source.id}: unexpected worker reply ${reply.t}`);
    }
  }

  /** Kills a worker that cannot be trusted any more and warms up a fresh one for the queue. */
  private replace(w: WorkerProcess): void {
    w.kill();
    if (this.worker === w) this.worker = undefined;
    if (!this.disposed) this.ensureWorker().catch(() => {});
  }
}
