// The Store interface: everything zerverless persists. Every store (SQLite now, PostgreSQL later)
// passes the shared contract suite in ./contract.ts. Methods are async so network stores fit.
import type { AppSyncStatus, DeployedState } from '../core/model.js';
import type { Plan } from '../core/plan.js';

export interface AppSource {
  repoURL: string;
  branch: string;
  /** Folder of the repository holding zerverless.yaml / apps (default '' = root). */
  path: string;
}

export interface AppRecord {
  id: number;
  name: string;
  namespace: string;
  source: AppSource;
  status: AppSyncStatus;
  message: string;
  /** Commit being served (null before the first good sync). */
  commit: string | null;
  /** End of the last sync (good or bad), ISO 8601 UTC. */
  lastSync: string | null;
  warnings: string[];
  createdAt: string;
}

export interface NewApp {
  name: string;
  namespace: string;
  source: AppSource;
}

export interface SyncRecord {
  id: number;
  appId: number;
  /** The commit the sync read (null when it failed before resolving one). */
  commit: string | null;
  startedAt: string;
  finishedAt: string | null;
  result: 'running' | 'success' | 'error';
  message: string;
  plan: Plan | null;
}

export interface AppStatusPatch {
  status?: AppSyncStatus;
  message?: string;
  commit?: string | null;
  lastSync?: string | null;
  warnings?: string[];
}

export interface Store {
  /** Rejects with ZvError APP_EXISTS when (namespace, name) is taken. */
  createApp(app: NewApp): Promise<AppRecord>;
  getApp(namespace: string, name: string): Promise<AppRecord | null>;
  getAppById(id: number): Promise<AppRecord | null>;
  /** Every application with this name, across namespaces. */
  findAppsByName(name: string): Promise<AppRecord[]>;
  listApps(q: { namespace?: string; limit?: number; offset?: number }): Promise<{ apps: AppRecord[]; total: number }>;
  updateApp(id: number, patch: AppStatusPatch): Promise<AppRecord>;
  /** Deletes the application, its history and its deployed state. */
  deleteApp(id: number): Promise<void>;

  startSync(appId: number, startedAt: string): Promise<number>;
  finishSync(syncId: number, r: { commit: string | null; finishedAt: string; result: 'success' | 'error'; message: string; plan: Plan | null }): Promise<void>;
  listSyncs(appId: number, limit?: number): Promise<SyncRecord[]>;

  /** The deployed state of an application, or null before its first good sync. */
  getDeployed(appId: number): Promise<DeployedState | null>;
  /**
   * Records a good sync in one transaction: the new deployed state, the app's status fields and
   * the sync record's end. Either all of it is stored or none of it.
   */
  commitSync(appId: number, syncId: number, deployed: DeployedState, r: { finishedAt: string; plan: Plan; status: AppStatusPatch }): Promise<AppRecord>;

  close(): Promise<void>;
}

/** Content-addressed blob storage for static files (sha256 hex keys). */
export interface BlobStore {
  /** Stores bytes, returns their sha256 hex; storing the same content twice is a no-op. */
  put(data: Uint8Array): Promise<string>;
  has(hash: string): Promise<boolean>;
  get(hash: string): Promise<Buffer>;
  /** A path a file server can stream from. */
  path(hash: string): string;
  /** Removes every blob not in `keep`; returns how many were removed. */
  gc(keep: Set<string>): Promise<number>;
}
