// Builds the application status object of PRODUCT.md §6 from what is recorded and what is served.
import type { AppSyncStatus, DeployedState, FunctionRuntimeKind } from './model.js';

export type FunctionState = 'ready' | 'loading' | 'failed';

export interface FunctionStatus {
  path: string;
  runtime: FunctionRuntimeKind;
  url: string;
  status: FunctionState;
  message?: string;
}

export interface ServiceStatus {
  name: string;
  version: string;
  status: string;
  health: string;
}

export interface AppStatus {
  name: string;
  namespace: string;
  source: { repoURL: string; branch: string; path: string; commit: string | null };
  lastSync: string | null;
  status: AppSyncStatus;
  message: string;
  functions: FunctionStatus[];
  static: { dir: string; files: number; url: string } | null;
  services: ServiceStatus[];
  warnings?: string[];
}

export interface StatusInput {
  name: string;
  namespace: string;
  source: { repoURL: string; branch: string; path: string };
  commit: string | null;
  lastSync: string | null;
  status: AppSyncStatus;
  message: string;
  warnings: string[];
  deployed: DeployedState | null;
  /** Per function path, when it is not simply ready (e.g. failed to load after a restart). */
  functionStates?: ReadonlyMap<string, { status: FunctionState; message?: string }>;
}

export function buildStatus(i: StatusInput): AppStatus {
  const functions: FunctionStatus[] = (i.deployed?.functions ?? []).map((f) => {
    const st = i.functionStates?.get(f.path);
    const entry: FunctionStatus = { path: f.path, runtime: f.runtime, url: `/${i.namespace}${f.path}`, status: st?.status ?? 'ready' };
    if (st?.message) entry.message = st.message;
    return entry;
  });
  const site = i.deployed?.static ?? null;
  let status = i.status;
  if (status === 'synced' && functions.some((f) => f.status === 'failed')) status = 'degraded';
  const out: AppStatus = {
    name: i.name,
    namespace: i.namespace,
    source: { ...i.source, commit: i.commit },
    lastSync: i.lastSync,
    status,
    message: i.message,
    functions,
    static: site ? { dir: site.dir, files: site.files.length, url: `/static/${i.namespace}/` } : null,
    services: [],
  };
  if (i.warnings.length) out.warnings = i.warnings;
  return out;
}
