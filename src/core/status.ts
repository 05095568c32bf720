// Builds the application status object of PRODUCT.md §6 from what is recorded and what is served.
import type { AppSyncStatus, DeployedState, FunctionRuntimeKind } from './desired.js';

export type FunctionState = 'ready' | 'building' | 'failed' | 'unavailable';

export interface FunctionStatus {
  path: string;
  runtime: FunctionRuntimeKind;
  url: string;
  status: FunctionState;
  message?: string;
  /** Docker: the image tag and id and the container serving it. */
  image?: string;
  imageId?: string;
  container?: string;
  /** Docker: the end of the last failed build's log. */
  buildLog?: string;
  /** The secrets files (`envFrom`) its env comes from: file names only, never a value. */
  envFrom?: string[];
}

/** What the status shows for a function beside its deployed state: a build under way or a failure. */
export interface FunctionOverlay {
  runtime: FunctionRuntimeKind;
  status: 'building' | 'failed';
  message?: string;
  buildLog?: string;
}

export interface ServiceStatus {
  name: string;
  version: string;
  status: string;
  health: string;
  route?: string;
  message?: string;
}

/** The signed-commit policy as shown: its type and the fingerprints of the trusted keys (never the keys). */
export interface VerifyStatus {
  type: 'ssh' | 'gpg';
  keys: string[];
}

export interface AppStatus {
  name: string;
  namespace: string;
  /**
   * `commit`: what is served. `seenCommit` (monorepos, PRODUCT.md §11): a newer branch head a poll or
   * webhook saw that changed nothing the application reads, so it was not synced; absent otherwise.
   * `paths`: the application's monorepo globs, when it has some.
   */
  source: { repoURL: string; branch: string; path: string; commit: string | null; seenCommit?: string; paths?: string[]; verify?: VerifyStatus };
  lastSync: string | null;
  status: AppSyncStatus;
  message: string;
  functions: FunctionStatus[];
  static: { dir: string; files: number; url: string } | null;
  services: ServiceStatus[];
  warnings?: string[];
  /** A background retry is scheduled (PRODUCT.md §11): the status stays error / degraded meanwhile. */
  retry?: RetryInfo;
  /** Automatic syncs are paused (suspend, or a rollback) until resume; an explicit sync still runs. */
  suspended?: SuspendedInfo;
}

export interface SuspendedInfo {
  /** ISO 8601 UTC. */
  at: string;
  /** The token's name (null: the server). */
  by: string | null;
  reason: string;
  /** A rollback's suspension: an explicit sync ends it too. */
  untilSync?: boolean;
}

export interface RetryInfo {
  /** How many retries in a row (1 after the first failure). */
  attempt: number;
  /** When the next one runs, ISO 8601 UTC. */
  nextAt: string;
}

export interface StatusInput {
  name: string;
  namespace: string;
  source: { repoURL: string; branch: string; path: string; verify?: VerifyStatus };
  commit: string | null;
  lastSync: string | null;
  status: AppSyncStatus;
  message: string;
  warnings: string[];
  deployed: DeployedState | null;
  /**
   * Per function path, when it is not simply ready: failed to restore, or (docker) being built or
   * failed to build in the current sync. Paths not deployed yet are listed too.
   */
  overlays?: ReadonlyMap<string, FunctionOverlay>;
  /** Per function path, facts from the runtime (image, imageId, container). */
  facts?: ReadonlyMap<string, Record<string, string>>;
  services?: ServiceStatus[];
  retry?: RetryInfo;
  suspended?: SuspendedInfo;
}

export function buildStatus(i: StatusInput): AppStatus {
  const entry = (path: string, runtime: FunctionRuntimeKind, overlay: FunctionOverlay | undefined, deployed: boolean): FunctionStatus => {
    // A failed build of a new revision leaves the serving one `ready` (the message says what failed).
    const serving = deployed && (i.facts?.has(path) ?? false);
    const facts = i.facts?.get(path);
    let status: FunctionState = !overlay ? 'ready' : overlay.status === 'failed' && serving ? 'ready' : overlay.status;
    // Served, but its process is not there (a container stopped by hand): requests get 503.
    if (status === 'ready' && facts?.available === 'no') status = 'unavailable';
    const e: FunctionStatus = { path, runtime, url: `/${i.namespace}${path}`, status };
    if (facts?.image) e.image = facts.image;
    if (facts?.imageId) e.imageId = facts.imageId;
    if (facts?.container) e.container = facts.container;
    if (overlay?.message) e.message = overlay.message;
    else if (status === 'unavailable') e.message = 'not running: requests answer 503 until a sync (or drift repair) starts it again';
    if (overlay?.buildLog) e.buildLog = overlay.buildLog;
    return e;
  };
  const deployedPaths = new Set((i.deployed?.functions ?? []).map((f) => f.path));
  const functions: FunctionStatus[] = (i.deployed?.functions ?? []).map((f) => {
    const e = entry(f.path, f.runtime, i.overlays?.get(f.path), true);
    if (f.secrets?.length) e.envFrom = f.secrets.map((s) => s.file);
    return e;
  });
  for (const [path, o] of i.overlays ?? []) if (!deployedPaths.has(path)) functions.push(entry(path, o.runtime, o, false));
  const site = i.deployed?.static ?? null;
  let status = i.status;
  if (status === 'synced' && functions.some((f) => f.status === 'failed' || f.status === 'unavailable')) status = 'degraded';
  const out: AppStatus = {
    name: i.name,
    namespace: i.namespace,
    source: { ...i.source, commit: i.commit },
    lastSync: i.lastSync,
    status,
    message: i.message,
    functions,
    static: site ? { dir: site.dir, files: site.files.length, url: `/static/${i.namespace}/` } : null,
    services: i.services ?? [],
  };
  if (out.status === 'synced' && out.services.some((s) => s.health === 'unhealthy' || s.status === 'failed' || s.status === 'crash-loop')) {
    out.status = 'degraded';
  }
  if (i.warnings.length) out.warnings = i.warnings;
  if (i.retry) out.retry = { attempt: i.retry.attempt, nextAt: i.retry.nextAt };
  if (i.suspended) {
    out.suspended = { at: i.suspended.at, by: i.suspended.by, reason: i.suspended.reason };
    if (i.suspended.untilSync) out.suspended.untilSync = true;
  }
  return out;
}
