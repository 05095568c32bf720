// What the reconciler needs from its adapters, beyond the Store, Source and runtime interfaces.
import type { DesiredState, StaticFileEntry } from '../core/desired.js';
import type { FunctionRuntimeKind } from '../core/desired.js';
import type { FunctionRuntime } from '../runtimes/types.js';
import type { ServiceSpec } from '../core/services/types.js';

export interface DesiredRead {
  state: DesiredState;
  /** Where each static file's bytes are in the artifact. */
  staticFiles: { entry: StaticFileEntry; absPath: string }[];
  /** Absolute build inputs of docker functions in the artifact, by function path. */
  docker: { path: string; dockerfile: string; context: string }[];
  /** The service specs of the `apps/` folder (empty without one). */
  services: ServiceSpec[];
}

/** Reads one commit's tree into a desired state; rejects with a ZvError naming file:line. */
export interface DesiredReader {
  read(dir: string, opts: { path: string; namespace: string; commit: string; repoURL: string; branch: string }): Promise<DesiredRead>;
}

export type RuntimeSet = ReadonlyMap<FunctionRuntimeKind, FunctionRuntime>;
