// The Store interface: everything zerverless persists. Every store (SQLite now, PostgreSQL later)
// passes the shared contract suite in ./contract.ts. Methods are async so network stores fit.
import type { AppSyncStatus, DeployedState } from '../core/desired.js';
import type { Plan } from '../core/plan/index.js';
import type { ServiceSpec } from '../core/services/types.js';

export interface AppSource {
  repoURL: string;
  branch: string;
  /** Folder of the repository holding zerverless.yaml / apps (default '' = root). */
  path: string;
  /** Signed-commit policy (PRODUCT.md §10): the head must be signed by one of `keys`. */
  verify?: CommitVerification;
  /**
   * Monorepos (PRODUCT.md §11): globs of repository paths (from the root) whose changes make a poll
   * or webhook sync this application, instead of any change under `path` (schema 10). Absent when none.
   */
  paths?: string[];
}

import type { CommitVerification } from '../core/commit-policy.js';
export type { CommitVerification };

import type { Role } from '../core/access.js';
export type { Role };

/** An API token as stored; the secret itself is never kept, only its hash. */
export interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  /** Namespaces a deployer or reader is limited to; null = all (admin, or an unscoped reader). */
  namespaces: string[] | null;
  /** A deployer may deploy services from apps/ (host processes). */
  services: boolean;
  createdAt: string;
  expiresAt: string | null;
  /** Name of the token that created this one (null for the bootstrap admin token). */
  createdBy: string | null;
}

export type CredentialType = 'ssh' | 'https';

/** A git credential; `secret` is sealed (AES-256-GCM with the master key) and never shown. */
export interface CredentialRecord {
  id: number;
  name: string;
  /** Owning namespace, or '*' (made by an admin) for every namespace. */
  namespace: string;
  urlPrefix: string;
  type: CredentialType;
  username: string | null;
  /** What identifies the secret without revealing it: the SSH key's SHA256 fingerprint, or a hash prefix. */
  fingerprint: string;
  /** known_hosts lines the SSH host key must match (given, or pinned on first use). */
  knownHosts: string | null;
  /** PEM of a CA to trust for this HTTPS server (self-hosted git). */
  caCert: string | null;
  secret: string;
  createdAt: string;
  createdBy: string | null;
}

export type NewCredential = Omit<CredentialRecord, 'id' | 'createdAt'>;

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
  /** Whether a sync may deploy services from apps/ (the registering token had `services`). */
  allowServices: boolean;
  /** Name of the token that registered the application (null before access control). */
  createdBy: string | null;
  /** Automatic syncs are paused (PRODUCT.md §11); absent when they are not. */
  suspended?: Suspension;
  /** Where status changes are posted (PRODUCT.md §11); absent when none. Secrets are sealed. */
  notify?: NotifyTarget[];
  /** The application's own webhook secret, sealed with the master key (schema 9); never shown. Absent when none. */
  webhookSecret?: string;
}

/** Why and since when an application's automatic syncs (poll, webhook, retry, drift repair) are paused. */
export interface Suspension {
  /** ISO 8601 UTC. */
  at: string;
  /** The token's name (null: the server itself). */
  by: string | null;
  reason: string;
  /** Set by a rollback: an explicit sync also ends it (a suspend ends only with resume). */
  untilSync?: boolean;
}

import type { NotifyEventName } from '../core/notify.js';
export type { NotifyEventName };

/** One place an application's status changes are posted to. */
export interface NotifyTarget {
  url: string;
  /** Only these events (default: all). */
  events?: NotifyEventName[];
  format: 'json' | 'slack';
  /** The HMAC key of the signature, sealed like a credential's secret (never shown). */
  secret?: string;
}

/** What the source says of a commit (first line of the message, author, commit time). */
export interface CommitInfo {
  /** The first line of the commit message. */
  message: string;
  /** `Name <email>`. */
  author: string;
  /** When it was authored, ISO 8601 UTC (null: unknown). */
  time: string | null;
}

export interface NewApp {
  name: string;
  namespace: string;
  source: AppSource;
  /** Default true (the server's own --repo and library use). */
  allowServices?: boolean;
  createdBy?: string | null;
  notify?: NotifyTarget[];
  /** Sealed (see AppRecord.webhookSecret). */
  webhookSecret?: string;
}

/** What started a sync and on whose behalf; recorded in the application's history. */
export interface SyncCause {
  /** `drift`: a drift pass that repaired something (PRODUCT.md §11); see reconciler/drift.ts. */
  trigger: 'register' | 'api' | 'poll' | 'webhook' | 'retry' | 'drift' | 'rollback';
  /** Name of the token behind an API call (null for the poll). */
  actor: string | null;
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
  trigger: SyncCause['trigger'];
  actor: string | null;
  /** The commit's message, author and time, when the source told them. */
  commitInfo?: CommitInfo;
}

export interface AppStatusPatch {
  status?: AppSyncStatus;
  message?: string;
  commit?: string | null;
  lastSync?: string | null;
  warnings?: string[];
  /** null: resume (automatic syncs run again). */
  suspended?: Suspension | null;
}

/** The service specs last applied for an application (schema v5; before it, `applied.json` files). */
export interface AppliedServices {
  /** The commit the specs were last reconciled from (null: never, or only manual operations). */
  commit: string | null;
  /** Sorted by name. */
  specs: ServiceSpec[];
}

/** A kept revision as listed (PRODUCT.md §11, "History and rollback"). */
export interface RevisionInfo {
  /** The commit that was deployed. */
  commit: string;
  /** Its message (first line), author and time, when the source told them. */
  commitInfo: CommitInfo | null;
  /** When it was deployed (the end of its sync), ISO 8601 UTC. */
  deployedAt: string;
  /** What deployed it: the cause of its sync. */
  cause: SyncCause;
  counts: { functions: number; staticFiles: number; services: number };
}

/** Where a kept revision was read from: the application's source at the time of its sync. */
export interface RevisionSource {
  repoURL: string;
  branch: string;
  path: string;
}

/** A kept revision in full: what a rollback switches back to, without git. */
export interface Revision extends RevisionInfo {
  state: DeployedState;
  /** The services' applied specs (null: the application had no services). */
  services: ServiceSpec[] | null;
  /**
   * Where it was read from, for a rollback that must read a file again (its blob went missing): the
   * application may sync from another repository since (PATCH). Absent for revisions kept before
   * sources were recorded, or kept at a restart from the deployed state alone.
   */
  source?: RevisionSource;
}

/** What `addRevision` records. */
export interface NewRevision {
  state: DeployedState;
  services: ServiceSpec[] | null;
  source?: RevisionSource;
  commitInfo: CommitInfo | null;
  deployedAt: string;
  cause: SyncCause;
}

/** How a sync record ends (see `finishSync`). */
export interface SyncEnd {
  commit: string | null;
  finishedAt: string;
  result: 'success' | 'error';
  message: string;
  plan: Plan | null;
  commitInfo?: CommitInfo | null;
}

export interface Store {
  /** Rejects with ZvError APP_EXISTS when (namespace, name) is taken. */
  createApp(app: NewApp): Promise<AppRecord>;
  getApp(namespace: string, name: string): Promise<AppRecord | null>;
  getAppById(id: number): Promise<AppRecord | null>;
  /** Every application with this name, across namespaces. */
  findAppsByName(name: string): Promise<AppRecord[]>;
  /** `namespaces` limits the list to those namespaces (a scoped token's view); `namespace` to one. */
  listApps(q: { namespace?: string; namespaces?: string[]; limit?: number; offset?: number }): Promise<{ apps: AppRecord[]; total: number }>;
  updateApp(id: number, patch: AppStatusPatch): Promise<AppRecord>;
  /** Replaces the application's notification targets (secrets sealed by the caller). */
  setNotify(id: number, targets: NotifyTarget[]): Promise<AppRecord>;
  /** Deletes the application, its history, its deployed state and its applied service specs. */
  deleteApp(id: number): Promise<void>;

  startSync(appId: number, startedAt: string, cause?: SyncCause): Promise<number>;
  /**
   * Ends a sync: closes its record and applies `status` to its application's status fields, in one
   * transaction (both are stored or neither), and returns the application as it is after. The sync's
   * one `finish(outcome)` write. `status` may be `{}` (the record only).
   */
  finishSync(syncId: number, r: SyncEnd, status: AppStatusPatch): Promise<AppRecord>;
  listSyncs(appId: number, limit?: number): Promise<SyncRecord[]>;

  /** The deployed state of an application, or null before its first good sync. */
  getDeployed(appId: number): Promise<DeployedState | null>;
  /**
   * The sync's commit step: stores the new deployed state and sets the application's `commit`
   * (= deployed.commit) and `warnings` (= deployed.warnings) in one transaction, so what is served
   * and the commit the application shows always agree. A state that cannot be stored leaves the old
   * one (and the application) untouched. Rejects with APP_NOT_FOUND for an unknown application.
   */
  commitDeployed(appId: number, deployed: DeployedState): Promise<AppRecord>;

  /** The service specs last applied for the application; null when none were ever saved. */
  getAppliedServices(appId: number): Promise<AppliedServices | null>;
  /** Replaces the applied service specs (kept sorted by name). Rejects with APP_NOT_FOUND for an unknown application. */
  saveAppliedServices(appId: number, applied: AppliedServices): Promise<void>;

  /**
   * Records a deployed revision as the application's newest (one with the same commit is replaced)
   * and keeps only the newest `keep`. Rejects with APP_NOT_FOUND for an unknown application.
   */
  addRevision(appId: number, revision: NewRevision, keep: number): Promise<void>;
  /** The application's kept revisions, newest first. */
  listRevisions(appId: number): Promise<RevisionInfo[]>;
  /** A kept revision by its full commit id, or null. */
  getRevision(appId: number, commit: string): Promise<Revision | null>;
  /** Every static blob hash some kept revision references (kept by the blob collector). */
  revisionBlobHashes(): Promise<Set<string>>;
  /** Changes where an application syncs from (PRODUCT.md §11: what it deployed stays until a sync replaces it). */
  setSource(id: number, source: AppSource): Promise<AppRecord>;

  /** Stores a token (by its hash); replaces one with the same id (the bootstrap admin token). */
  putToken(token: TokenRecord, hash: string): Promise<void>;
  /** The token whose secret hashes to `hash`, or null. */
  findTokenByHash(hash: string): Promise<TokenRecord | null>;
  listTokens(): Promise<TokenRecord[]>;
  /** Revokes (deletes) a token; false when there was none with that id. */
  deleteToken(id: string): Promise<boolean>;
  countTokens(): Promise<number>;

  /** Rejects with CREDENTIAL_EXISTS when (namespace, name) is taken. */
  createCredential(c: NewCredential): Promise<CredentialRecord>;
  getCredential(namespace: string, name: string): Promise<CredentialRecord | null>;
  /** Credentials of these namespaces (and '*'); all of them when `namespaces` is null. */
  listCredentials(namespaces: string[] | null): Promise<CredentialRecord[]>;
  deleteCredential(id: number): Promise<boolean>;
  /** Records the host key pinned on first use. */
  setCredentialKnownHosts(id: number, knownHosts: string): Promise<void>;

  close(): Promise<void>;
}

/** Content-addressed blob storage for static files (sha256 hex keys). */
export interface BlobStore {
  /**
   * Stores bytes, returns their sha256 hex; storing the same content twice is a no-op, unless
   * `replace` (drift repair of a corrupt blob): then the stored bytes are replaced atomically.
   */
  put(data: Uint8Array, opts?: { replace?: boolean }): Promise<string>;
  /**
   * Stores many blobs at once (a sync's new static files), each durable before it is visible under
   * its hash; `read` gives the bytes, which must hash to `hash`. Returns how many were written.
   */
  putMany?(items: readonly { hash: string; read: () => Promise<Uint8Array>; label?: string }[]): Promise<number>;
  has(hash: string): Promise<boolean>;
  get(hash: string): Promise<Buffer>;
  /** A path a file server can stream from. */
  path(hash: string): string;
  /** Removes every blob not in `keep`; returns how many were removed. */
  gc(keep: Set<string>): Promise<number>;
}
