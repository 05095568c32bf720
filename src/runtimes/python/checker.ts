// The check zygote's host side (a sync's compile check, PythonRuntime.compile): one sandboxed
// zygote per namespace, started on the first check and stopped after CHECKER_IDLE_MS without one.
// Checks of one namespace run one at a time through it; each is a fork of the zygote (a few ms)
// instead of a fresh sandbox and interpreter (55–85 ms on an idle machine, far more under load).
// What is shared and why that is safe: worker-source.ts (CHECKER_SOURCE) and docs/security.md.
import { ZvError } from '../../errors/registry.js';
import type { FunctionLogger, FunctionSource, LogStream } from '../types.js';
import { WorkerGone, WorkerProcess } from './worker-process.js';
import type { WorkerCommand, WorkerReply } from './worker-process.js';
import { CHECKER_SOURCE } from './worker-source.js';

/** A zygote with no check for this long is stopped. */
export const CHECKER_IDLE_MS = 5_000;
/** Extra time a check gets to import the module, on top of the function's timeout (as a worker start). */
const STARTUP_GRACE_MS = 10_000;
/** The host waits this much longer than the zygote's own deadline before giving up on it. */
const HOST_MARGIN_MS = 5_000;
const MAX_CHECK_REPLY = 8 * 1024 * 1024;
const MAX_LOG_LINE = 16 * 1024;

/** What a module printed while checked, line by line to its function's log. */
function logCaptured(log: FunctionLogger, stream: LogStream, text: string | undefined): void {
  if (!text) return;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    for (let o = 0; o < line.length || o === 0; o += MAX_LOG_LINE) {
      try { log(stream, line.slice(o, o + MAX_LOG_LINE)); } catch { /* a failing logger must not fail the check */ }
    }
  }
}

const digits = (n: number, width: number): string => {
  const s = String(Math.max(0, Math.floor(n)));
  if (s.length > width) throw new ZvError('INTERNAL', `python check: ${n} does not fit the header`);
  return s.padStart(width, '0');
};

export class Checker {
  private proc: WorkerProcess | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private pending = 0;
  private closed = false;

  constructor(private readonly cmd: WorkerCommand, private readonly seccomp: boolean, private readonly maxResponseBytes: number) {}

  /** Host pid of the zygote while it runs (bwrap when sandboxed), for tests. */
  get pid(): number | undefined {
    return this.proc?.alive ? this.proc.pid : undefined;
  }

  /** Imports `source` in a forked child; resolves when the module loads, rejects as a worker start would. */
  check(source: FunctionSource, log: FunctionLogger): Promise<void> {
    this.pending++;
    clearTimeout(this.idleTimer);
    const run = this.tail.then(() => this.run(source, log));
    this.tail = run.catch(() => {});
    return run.finally(() => {
      if (--this.pending === 0) this.armIdle();
    });
  }

  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    return this.stop();
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.stop(), CHECKER_IDLE_MS);
    this.idleTimer.unref();
  }

  private async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p) {
      p.kill();
      await p.exited;
    }
  }

  private async run(source: FunctionSource, log: FunctionLogger): Promise<void> {
    if (this.closed) throw new ZvError('RUNTIME_UNAVAILABLE', 'python: the runtime is closed');
    if (!this.proc?.alive) {
      // The zygote itself prints nothing (a check's output comes back in its reply).
      this.proc = new WorkerProcess(this.cmd, () => {}, MAX_CHECK_REPLY, CHECKER_SOURCE);
    }
    const proc = this.proc;
    const id = ++this.seq;
    const payload = Buffer.from(JSON.stringify({
      id, code: source.code, filename: source.filename, lineOffset: source.lineOffset ?? 1,
      memoryMb: source.memoryMb, env: source.env, seccomp: this.seccomp, maxResponse: this.maxResponseBytes,
    }), 'utf8');
    const allowMs = source.timeoutMs + STARTUP_GRACE_MS;
    const header = Buffer.from(digits(id, 12) + digits(payload.length, 12) + digits(allowMs, 8), 'ascii');
    let reply: WorkerReply;
    try {
      reply = await proc.requestRaw(Buffer.concat([header, payload]), allowMs + HOST_MARGIN_MS);
    } catch (e) {
      proc.kill();
      if (e instanceof WorkerGone && e.reason === 'timeout') {
        throw new ZvError('FUNCTION_COMPILE_ERROR', `${source.filename}: the module did not finish loading within ${source.timeoutMs} ms`);
      }
      throw new ZvError('FUNCTION_UNAVAILABLE', `${source.filename}: the python check process failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (reply.id !== id) {
      proc.kill();
      throw new ZvError('FUNCTION_UNAVAILABLE', `${source.filename}: the python check process sent an unexpected reply`);
    }
    logCaptured(log, 'stdout', reply.stdout);
    logCaptured(log, 'stderr', reply.stderr);
    switch (reply.t) {
      case 'ready':
        return;
      case 'compile_error':
        throw new ZvError('FUNCTION_COMPILE_ERROR', reply.message ?? `${source.filename}: cannot load`);
      case 'fatal':
        throw new ZvError('RUNTIME_UNAVAILABLE', reply.message);
      case 'timeout':
        throw new ZvError('FUNCTION_COMPILE_ERROR', `${source.filename}: the module did not finish loading within ${source.timeoutMs} ms`);
      case 'died':
        if (reply.code === 86) throw new ZvError('FUNCTION_COMPILE_ERROR', `${source.filename}: loading the module went over the memory limit of ${source.memoryMb} MiB`);
        throw new ZvError('FUNCTION_UNAVAILABLE', `${source.filename}: the python process ${typeof reply.code === 'number' && reply.code < 0 ? `was killed by signal ${-reply.code}` : `exited with code ${reply.code}`} while loading the module`);
      default:
        proc.kill();
        throw new ZvError('FUNCTION_UNAVAILABLE', `${source.filename}: unexpected check reply ${reply.t}`);
    }
  }
}
