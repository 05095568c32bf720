// The Python runtime: real CPython 3, one warm sandboxed worker process per loaded function.
// See sandbox.ts for what the sandbox protects against and worker-source.ts for the protocol.
import { existsSync } from 'node:fs';
import { ZvError } from '../../errors/registry.js';
import type { FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction } from '../types.js';
import { PythonFunction, startWorker } from './function.js';
import { bwrapArgs, checkSandbox, probeInterpreter } from './sandbox.js';
import type { InterpreterInfo } from './sandbox.js';
import type { WorkerCommand } from './worker-process.js';
import { responseCap } from '../response-cap.js';
import type { ResponseCapOptions } from '../response-cap.js';

export interface PythonRuntimeOptions extends ResponseCapOptions {
  /** The interpreter; default /usr/bin/python3 when it exists, else `python3` from PATH. */
  python?: string;
  /** The bubblewrap binary; default `bwrap` from PATH. */
  bwrap?: string;
  /**
   * Run workers inside bwrap with the seccomp filter (default true). `false` runs the interpreter
   * directly with no file, process or network isolation: only for trusted code / development.
   */
  sandbox?: boolean;
}

type Availability = { ok: true; info: InterpreterInfo } | { ok: false; reason: string };

export class PythonRuntime implements FunctionRuntime {
  readonly name = 'python' as const;
  private readonly python: string;
  private readonly bwrap: string;
  private readonly sandbox: boolean;
  private readonly maxResponseBytes: number;
  private probe: Promise<Availability> | undefined;
  private readonly loaded = new Set<PythonFunction>();
  private closed = false;

  constructor(opts: PythonRuntimeOptions = {}) {
    this.python = opts.python ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
    this.bwrap = opts.bwrap ?? 'bwrap';
    this.sandbox = opts.sandbox ?? true;
    this.maxResponseBytes = responseCap(opts);
  }

  async available(): Promise<{ ok: true } | { ok: false; reason: string }> {
    const a = await this.check();
    return a.ok ? { ok: true } : { ok: false, reason: a.reason };
  }

  async load(source: FunctionSource, log: FunctionLogger): Promise<LoadedFunction> {
    if (this.closed) throw new ZvError('RUNTIME_UNAVAILABLE', 'python: the runtime is closed');
    const a = await this.check();
    if (!a.ok) throw new ZvError('RUNTIME_UNAVAILABLE', `python: ${a.reason}`);
    const cmd: WorkerCommand = this.sandbox
      ? { file: this.bwrap, prefix: [...bwrapArgs(a.info, { memoryMb: source.memoryMb }), a.info.executable] }
      : { file: a.info.executable, prefix: [] };
    const first = await startWorker(source, cmd, this.sandbox, log, this.maxResponseBytes);
    if (this.closed) {
      first.kill();
      throw new ZvError('RUNTIME_UNAVAILABLE', 'python: the runtime is closed');
    }
    const fn: PythonFunction = new PythonFunction(source, cmd, this.sandbox, log, this.maxResponseBytes, first, () => this.loaded.delete(fn));
    this.loaded.add(fn);
    return fn;
  }

  /** Functions loaded and not yet disposed (each keeps a worker process). */
  get liveCount(): number {
    return this.loaded.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.loaded].map((f) => f.dispose()));
  }

  private check(): Promise<Availability> {
    this.probe ??= (async (): Promise<Availability> => {
      let info: InterpreterInfo;
      try {
        info = await probeInterpreter(this.python);
      } catch (e) {
        return { ok: false, reason: e instanceof Error ? e.message : String(e) };
      }
      if (!this.sandbox) return { ok: true, info };
      try {
        await checkSandbox(this.bwrap, info);
      } catch (e) {
        return { ok: false, reason: `${e instanceof Error ? e.message : String(e)} (or construct PythonRuntime with sandbox: false to run unconfined)` };
      }
      return { ok: true, info };
    })();
    return this.probe;
  }
}
