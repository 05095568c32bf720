// The Python runtime: real CPython 3, sandboxed worker processes — one per called function to
// start with, more while calls to it wait (function.ts: the pool), never more than
// --python-max-workers in all (budget.ts: a function with none takes the worker idle the longest
// from another, or waits in line for one; the other keeps its code loaded). `compile` (a sync)
// imports the module in a child forked from the namespace's check zygote (checker.ts), so a synced
// function keeps no process until it is called. A worker is taken from the spares (spares.ts:
// sandboxed interpreters started ahead of calls) when one is up. See sandbox.ts for what the
// sandbox protects against and worker-source.ts for the protocol.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ZvError } from '../../errors/registry.js';
import type { FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction } from '../types.js';
import { PythonFunction } from './function.js';
import type { WorkerFactory } from './function.js';
import { WorkerBudget } from './budget.js';
import { SparePool } from './spares.js';
import type { SpareOptions } from './spares.js';
import { Checker } from './checker.js';
import { bwrapArgs, checkSandbox, probeInterpreter } from './sandbox.js';
import type { InterpreterInfo } from './sandbox.js';
import { maxReplyBytes } from './worker-process.js';
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
  /** Worker processes at most per function (--python-workers, default 4). */
  workersPerFunction?: number;
  /**
   * Worker processes at most in all (--python-max-workers): a function that has none takes the
   * worker idle the longest from another function, or waits in line (within its timeout).
   */
  maxWorkers?: number;
  /**
   * An extra worker (not a function's last) idle this long is stopped (default 10 s); a function's
   * last worker idle this long may be stopped for another function's extra one at the budget.
   */
  workerIdleMs?: number;
  /** Spare workers started ahead of calls (spares.ts); `{ perCommand: 0 }` keeps none. */
  spares?: SpareOptions;
}

export const DEFAULT_PYTHON_WORKERS = 4;
/** Default --python-max-workers: four per core, at least 8. */
export function defaultPythonMaxWorkers(): number {
  return Math.max(8, 4 * availableParallelism());
}
const DEFAULT_WORKER_IDLE_MS = 10_000;
/** The private /tmp of a check zygote (wiped after every check). */
const CHECKER_TMP_MB = 256;

/** The namespace of a function: its id is `namespace/app/path@hash`. */
function namespaceOf(source: FunctionSource): string {
  const i = source.id.indexOf('/');
  return i < 0 ? source.id : source.id.slice(0, i);
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
  private readonly budget: WorkerBudget;
  private readonly workersPerFunction: number;
  private readonly workerIdleMs: number;
  /** Sandboxed interpreters started ahead of time, each taken by one function for good. */
  private readonly spares: SparePool;
  /** The check zygotes, by namespace (each stops itself when idle). */
  private readonly checkers = new Map<string, Checker>();
  private closed = false;

  constructor(opts: PythonRuntimeOptions = {}) {
    this.python = opts.python ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
    this.bwrap = opts.bwrap ?? 'bwrap';
    this.sandbox = opts.sandbox ?? true;
    this.maxResponseBytes = responseCap(opts);
    this.workersPerFunction = Math.max(1, Math.floor(opts.workersPerFunction ?? DEFAULT_PYTHON_WORKERS));
    this.workerIdleMs = opts.workerIdleMs ?? DEFAULT_WORKER_IDLE_MS;
    this.budget = new WorkerBudget(Math.max(1, Math.floor(opts.maxWorkers ?? defaultPythonMaxWorkers())), this.workerIdleMs);
    this.spares = new SparePool(maxReplyBytes(this.maxResponseBytes), opts.spares);
  }

  async available(): Promise<{ ok: true } | { ok: false; reason: string }> {
    const a = await this.availability();
    return a.ok ? { ok: true } : { ok: false, reason: a.reason };
  }

  async load(source: FunctionSource, log: FunctionLogger): Promise<LoadedFunction> {
    const cmd = await this.command(source);
    const workers: WorkerFactory = { take: (l) => this.spares.take(cmd, l), settled: () => this.spares.refill(cmd) };
    const pool = { maxWorkers: this.workersPerFunction, workerIdleMs: this.workerIdleMs, budget: this.budget };
    const fn: PythonFunction = new PythonFunction(source, workers, this.sandbox, log, this.maxResponseBytes, () => this.loaded.delete(fn), pool);
    this.loaded.add(fn);
    try {
      // The first worker, which proves the module loads (or, every worker busy, a place in line).
      await fn.start();
    } catch (e) {
      await fn.dispose();
      if (this.closed) throw new ZvError('RUNTIME_UNAVAILABLE', 'python: the runtime is closed');
      throw e;
    }
    if (this.closed) {
      await fn.dispose();
      throw new ZvError('RUNTIME_UNAVAILABLE', 'python: the runtime is closed');
    }
    return fn;
  }

  /**
   * Compiles and imports the module exactly as `load` does (a syntax error, an exception at import
   * or a missing handle is FUNCTION_COMPILE_ERROR) in a child forked from the namespace's check
   * zygote (checker.ts), which ends with the check: nothing of the function stays running.
   */
  async compile(source: FunctionSource, log: FunctionLogger): Promise<void> {
    const ns = namespaceOf(source);
    let checker = this.checkers.get(ns);
    if (!checker) {
      const cmd = await this.command({ ...source, memoryMb: CHECKER_TMP_MB });
      checker = this.checkers.get(ns) ?? new Checker(cmd, this.sandbox, this.maxResponseBytes);
      this.checkers.set(ns, checker);
    }
    await checker.check(source, log);
  }

  /** Host pid of a namespace's check zygote while it runs, for tests. */
  checkerPid(namespace: string): number | undefined {
    return this.checkers.get(namespace)?.pid;
  }

  private async command(source: FunctionSource): Promise<WorkerCommand> {
    if (this.closed) throw new ZvError('RUNTIME_UNAVAILABLE', 'python: the runtime is closed');
    const a = await this.availability();
    if (!a.ok) throw new ZvError('RUNTIME_UNAVAILABLE', `python: ${a.reason}`);
    return this.sandbox
      ? { file: this.bwrap, prefix: [...bwrapArgs(a.info, { memoryMb: source.memoryMb }), a.info.executable] }
      : { file: a.info.executable, prefix: [] };
  }

  /** Functions loaded and not yet disposed (each with its code loaded; a worker only when the budget allows). */
  get liveCount(): number {
    return this.loaded.size;
  }

  /** Worker processes running, starting or stopping (not yet exited), of all functions: at most maxWorkers. */
  get workerCount(): number {
    return this.budget.total;
  }

  /** Functions waiting in line for a first worker, for tests. */
  get waitingForWorker(): number {
    return this.budget.waiting;
  }

  /** Host pids of the spare workers alive (not counted in workerCount), for tests. */
  get sparePids(): number[] {
    return this.spares.pids;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.loaded].map((f) => f.dispose()));
    await this.spares.close();
    await Promise.all([...this.checkers.values()].map((c) => c.close()));
  }

  private availability(): Promise<Availability> {
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
