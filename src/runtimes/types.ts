// The runtime interface: how the platform loads function code and invokes it.
// Every runtime (lua, js, python, and later docker) implements FunctionRuntime and passes the
// shared contract suite in ./contract.ts.
import type { FunctionRequest, FunctionResponse } from '../core/function-contract.js';
import type { DockerBuild, FunctionRuntimeKind } from '../core/desired.js';

export type RuntimeName = 'lua' | 'js' | 'python' | 'docker';

export interface FunctionSource {
  /** Unique, human-readable id used in logs: `namespace/app/path@hash`. */
  id: string;
  runtime: RuntimeName;
  /** For `js`: whether the code is TypeScript (compiled at load). */
  language?: 'javascript' | 'typescript';
  code: string;
  /** Where the code came from, for error messages: `handlers/x.py`, or `zerverless.yaml` for inline code. */
  filename: string;
  /** For inline code: the 1-based line of `filename` where the code starts (errors are shifted by it). */
  lineOffset?: number;
  timeoutMs: number;
  memoryMb: number;
  env: Record<string, string>;
  /** Docker only: how to build and run the image. */
  docker?: DockerSource;
}

export interface DockerSource {
  /** What the image is built from; `build.contextHash` names the image. */
  build: DockerBuild;
  /**
   * Absolute paths of the context folder and the Dockerfile in the commit being synced. Absent when
   * a stored function is restored after a restart: the runtime then uses the image it built before.
   */
  contextDir?: string;
  dockerfilePath?: string;
  /**
   * With `contextDir`: the entries of the context that `build.contextHash` was computed over (files,
   * folders and links; POSIX paths relative to `contextDir`), as the source reader listed them
   * (`.dockerignore` applied, `.git` and special files left out). The build sends exactly these.
   */
  contextFiles?: string[];
  /**
   * Without `contextDir`: writes the context's entries (`contextFiles`) and the Dockerfile from the
   * commit into a temporary folder, called only when the image has to be built; `dispose` removes it.
   */
  materialise?: () => Promise<{ contextDir: string; dockerfilePath: string; dispose(): Promise<void> }>;
  /**
   * The port the container listens on (PORT). Absent when the manifest sets none: the runtime uses
   * the image's single EXPOSEd port, else 8080.
   */
  port?: number;
  /** Labels that let the platform find its own containers again. */
  owner: { namespace: string; app: string; path: string };
  /** Receives the build log line by line. */
  buildLog?: (line: string) => void;
}

/** Where a proxied function (docker) answers; the gateway streams requests to it. */
export interface Upstream {
  host: string;
  port: number;
}

export type LogStream = 'stdout' | 'stderr';
export type FunctionLogger = (stream: LogStream, line: string) => void;

/**
 * Drift (PRODUCT.md §11): what runs no longer matches what was loaded, e.g. the container of a
 * docker function was removed or stopped by hand. Found by `LoadedFunction.check`.
 */
export interface DriftFinding {
  /** What is wrong, in a few words: `container removed`, `container stopped`. */
  problem: string;
  /** Details for the log and the history (e.g. the container id). */
  detail?: string;
}

/** A function whose code is compiled and ready to serve. */
export interface LoadedFunction {
  /**
   * Runs the function. Rejects with a ZvError:
   * FUNCTION_TIMEOUT (over `timeoutMs`), FUNCTION_MEMORY_LIMIT (over `memoryMb`),
   * FUNCTION_ERROR (the function threw), FUNCTION_BAD_RESPONSE (unusable return value),
   * FUNCTION_UNAVAILABLE (disposed / cannot run).
   */
  invoke(req: FunctionRequest): Promise<FunctionResponse>;
  /** Frees everything. The platform only calls it once no invocation is in flight (see drain.ts). */
  dispose(): Promise<void>;
  /**
   * For proxied runtimes (docker): where requests are forwarded, or null while it cannot take them
   * (the gateway answers 503). The gateway streams to it instead of calling `invoke`.
   */
  upstream?(): Upstream | null;
  /** Facts for the status (e.g. image and container ids). */
  describe?(): Record<string, string>;
  /**
   * Drift check: null while what runs matches what was loaded, else what differs. Looks only (no
   * side effects); what the runtime repairs by itself (e.g. Docker restarting a crashed container)
   * is not drift. Absent: the runtime has nothing outside the platform that can drift (lua, js, python).
   */
  check?(): Promise<DriftFinding | null>;
  /**
   * Puts back what `check` finds (e.g. starts a stopped container, recreates a removed one with the
   * same image, limits and network); resolves at once when nothing drifted, once the function
   * answers again otherwise. Rejects with a ZvError when it cannot.
   */
  repair?(): Promise<void>;
}

export interface FunctionRuntime {
  readonly name: RuntimeName;
  /**
   * Compiles `source` and gets it ready to serve. Rejects with ZvError FUNCTION_COMPILE_ERROR whose
   * message names `filename:line` when the code does not compile.
   */
  load(source: FunctionSource, log: FunctionLogger): Promise<LoadedFunction>;
  /** Whether the runtime can run on this host (e.g. python needs python3 and bwrap), and why not. */
  available(): Promise<{ ok: true } | { ok: false; reason: string }>;
  /** Stops everything the runtime started (a docker runtime leaves its containers to be adopted). */
  close(): Promise<void>;
  /** Drops what none of `live` uses (e.g. orphan containers, unused images). */
  gc?(live: LoadedFunction[]): Promise<void>;
  /**
   * Compiles `source` as `load` would (same errors) without keeping anything running: a sync calls
   * it instead of `load` and the function is loaded on its first call (e.g. python, whose loaded
   * functions each keep a process). Absent: a sync loads the function.
   */
  compile?(source: FunctionSource, log: FunctionLogger): Promise<void>;
}

/** The function runtimes a server has, by the manifest's runtime name. */
export type RuntimeSet = ReadonlyMap<FunctionRuntimeKind, FunctionRuntime>;
