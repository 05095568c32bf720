// One warm Python worker process: spawning it (inside bwrap or not), the line-delimited JSON
// protocol on fds 3/4, forwarding the user's stdout/stderr lines to the function log, and killing
// the whole sandbox.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { FunctionLogger, LogStream } from '../types.js';
import { WORKER_EXIT_MEMORY, WORKER_SOURCE } from './worker-source.js';
import { PYTHON_FLAGS } from './sandbox.js';

/** A reply line from the worker (see worker-source.ts). */
export interface WorkerReply {
  t: 'ready' | 'compile_error' | 'fatal' | 'result' | 'error' | 'memory' | 'bad_response' | 'too_large' | 'timeout' | 'died';
  /** Check zygote replies: the check's id, and the exit code of a child that ended without a reply. */
  id?: number;
  code?: number;
  /** Check replies: what the module printed while imported. */
  stdout?: string;
  stderr?: string;
  message?: string;
  /** too_large: the size the worker measured. */
  size?: number;
  value?: unknown;
  bytes?: 'value' | 'body';
  memory?: boolean;
}

export interface WorkerCommand {
  /** bwrap or the interpreter. */
  file: string;
  /** Arguments before the interpreter flags (the bwrap arguments and the interpreter path), or []. */
  prefix: string[];
}

/** Why a worker ended while a reply was awaited. */
export class WorkerGone extends Error {
  constructor(
    /** `toolarge`: a reply line over the limit (cut off, the worker killed). */
    readonly reason: 'exit' | 'timeout' | 'protocol' | 'toolarge',
    message: string,
    readonly memoryHint: boolean,
  ) {
    super(message);
  }
}

const MAX_LOG_LINE = 16 * 1024;
/**
 * A reply line may be this much bigger than --max-response: the worker checks the response itself
 * and refuses it over the cap, but JSON escaping can take 6 bytes for one (e.g. \u0000) and base64
 * 4 for 3. A line past the limit (user code can write to the reply pipe directly) is cut off there:
 * the worker is killed and at most this much was buffered.
 */
export function maxReplyBytes(maxResponseBytes: number): number {
  return 6 * maxResponseBytes + 1024 * 1024;
}
const STDERR_TAIL = 4096;
const MEMORY_HINT = /MemoryError|Cannot allocate memory|out of memory/i;

class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.write(chunk);
    let i: number;
    while ((i = this.pending.indexOf('\n')) >= 0) {
      this.emitLine(this.pending.slice(0, i));
      this.pending = this.pending.slice(i + 1);
    }
    while (this.pending.length > MAX_LOG_LINE) {
      this.emit(this.pending.slice(0, MAX_LOG_LINE));
      this.pending = this.pending.slice(MAX_LOG_LINE);
    }
  }

  end(): void {
    this.pending += this.decoder.end();
    if (this.pending) this.emitLine(this.pending);
    this.pending = '';
  }

  private emitLine(line: string): void {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    for (let o = 0; o < l.length || o === 0; o += MAX_LOG_LINE) this.emit(l.slice(o, o + MAX_LOG_LINE));
  }
}

export class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly toWorker: Writable;
  private readonly streams: unknown[];
  private replyChunks: Buffer[] = [];
  private replyBytes = 0;
  private waiter: { resolve: (r: WorkerReply) => void; reject: (e: WorkerGone) => void; timer: NodeJS.Timeout | undefined } | undefined;
  private stderrTail = '';
  private dead: WorkerGone | undefined;
  readonly exited: Promise<void>;
  /** Called once when the process is gone, whatever the reason. */
  onExit: (gone: WorkerGone) => void = () => {};
  /** Where the user's stdout/stderr lines go (a spare gets its function's log when it is taken). */
  log: FunctionLogger;

  constructor(cmd: WorkerCommand, log: FunctionLogger, private readonly maxReply = maxReplyBytes(10 * 1024 * 1024), source = WORKER_SOURCE) {
    this.log = log;
    this.child = spawn(cmd.file, [...cmd.prefix, ...PYTHON_FLAGS, '-c', source], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { MALLOC_ARENA_MAX: '1' }, // nothing of the host's env; see sandbox.ts for why this one
      detached: true,
    });
    const [, out, err, toWorker, fromWorker] = this.child.stdio as [null, Readable, Readable, Writable, Readable];
    this.toWorker = toWorker;
    for (const s of [out, err, toWorker, fromWorker]) s.on('error', () => {});
    const logLines = (stream: LogStream) => new LineSplitter((line) => {
      try { this.log(stream, line); } catch { /* a failing logger must not break the worker */ }
    });
    const so = logLines('stdout');
    const se = logLines('stderr');
    out.on('data', (c: Buffer) => so.push(c));
    out.on('end', () => so.end());
    err.on('data', (c: Buffer) => {
      this.stderrTail = (this.stderrTail + c.toString('utf8')).slice(-STDERR_TAIL);
      se.push(c);
    });
    err.on('end', () => se.end());
    fromWorker.on('data', (c: Buffer) => this.onReplyData(c));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.fail(new WorkerGone('exit', `cannot start the python worker: ${e.message}`, false));
        resolve();
      });
      this.child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const memory = code === WORKER_EXIT_MEMORY || MEMORY_HINT.test(this.stderrTail);
        this.fail(new WorkerGone('exit', `the python worker ${how}`, memory));
        resolve();
      });
    });
    // An idle warm worker must not keep the host's event loop alive on its own (a pending request
    // holds its timer; a kill re-refs the process until it is gone).
    this.streams = [out, err, toWorker, fromWorker];
    this.setRef(false);
  }

  private setRef(on: boolean): void {
    if (on) this.child.ref();
    else this.child.unref();
    for (const s of this.streams) {
      const h = s as { ref?: () => void; unref?: () => void };
      if (on) h.ref?.();
      else h.unref?.();
    }
  }

  /** The host pid of the process that was spawned (bwrap, or the interpreter without sandbox). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /** Sends one message and waits for the next reply line (one outstanding request at a time). */
  request(msg: Record<string, unknown>, timeoutMs: number): Promise<WorkerReply> {
    return this.requestRaw(`${JSON.stringify(msg)}\n`, timeoutMs);
  }

  /** Sends `data` as it is (the check zygote's framing) and waits for the next reply line. */
  requestRaw(data: string | Buffer, timeoutMs: number): Promise<WorkerReply> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.waiter) return Promise.reject(new Error('python worker is busy'));
    return new Promise<WorkerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new WorkerGone('timeout', `no answer within ${timeoutMs} ms`, false));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
      this.toWorker.write(data);
    });
  }

  /**
   * Ends the worker's input: one that has not had its first message yet (a spare) exits by itself.
   * A spare is stopped this way, not killed: a SIGKILL while bwrap is still setting the sandbox up
   * can leave its inner process (a new session, so not in the process group) running on its own.
   */
  end(): void {
    this.setRef(true); // as kill(): the host waits for it to be gone
    this.toWorker.end();
  }

  /** Kills the whole sandbox (bwrap's pid namespace dies with it). */
  kill(): void {
    const pid = this.child.pid;
    if (pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      this.setRef(true);
      try { process.kill(-pid, 'SIGKILL'); } catch { this.child.kill('SIGKILL'); }
    }
  }

  private onReplyData(chunk: Buffer): void {
    if (this.dead) return;
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(10, start)) >= 0) {
      if (this.replyBytes + (nl - start) > this.maxReply) return this.tooLarge();
      this.replyChunks.push(chunk.subarray(start, nl));
      const line = Buffer.concat(this.replyChunks).toString('utf8');
      this.replyChunks = [];
      this.replyBytes = 0;
      start = nl + 1;
      this.onReplyLine(line);
      if (this.dead) return;
    }
    if (start < chunk.length) {
      this.replyChunks.push(chunk.subarray(start));
      this.replyBytes += chunk.length - start;
      if (this.replyBytes > this.maxReply) this.tooLarge();
    }
  }

  private tooLarge(): void {
    const bytes = this.replyBytes;
    this.replyChunks = [];
    this.replyBytes = 0;
    this.fail(new WorkerGone('toolarge', `the python worker sent a reply of more than ${bytes} bytes`, false));
  }

  private onReplyLine(line: string): void {
    let reply: WorkerReply;
    try {
      reply = JSON.parse(line) as WorkerReply;
    } catch {
      this.fail(new WorkerGone('protocol', 'the python worker sent an unreadable reply', false));
      return;
    }
    const w = this.waiter;
    if (!w || typeof reply !== 'object' || reply === null || typeof reply.t !== 'string') {
      this.fail(new WorkerGone('protocol', 'the python worker sent an unexpected reply', false));
      return;
    }
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.resolve(reply);
  }

  /** Marks the worker dead (once), kills it and rejects a pending request. */
  private fail(gone: WorkerGone): void {
    if (!this.dead) {
      this.dead = gone;
      this.kill();
      this.onExit(gone);
    }
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(gone);
    }
  }
}
