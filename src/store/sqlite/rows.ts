// Row shapes of the SQLite tables and their mapping to the store's records. Optional fields are
// left out (not set to undefined) when their column is NULL, so records round-trip with deepEqual.
import type { AppSyncStatus, CodeLanguage, DesiredFunction, DockerBuild, FunctionRuntimeKind, SecretEnvFile, StaticFileEntry } from '../../core/desired.js';
import type { Plan } from '../../core/plan/index.js';
import type { AppRecord, CommitInfo, CommitVerification, CredentialRecord, NotifyTarget, Role, Suspension, SyncRecord, TokenRecord } from '../types.js';
import { ZvError } from '../../errors/registry.js';

export interface AppRow {
  id: number;
  namespace: string;
  name: string;
  repo_url: string;
  branch: string;
  source_path: string;
  status: AppSyncStatus;
  message: string;
  commit_sha: string | null;
  last_sync: string | null;
  warnings: string;
  created_at: string;
  verify: string | null;
  allow_services: number;
  created_by: string | null;
  suspended: string | null;
  notify: string | null;
  webhook_secret: string | null;
  paths: string | null;
}

export interface TokenRow {
  id: string;
  name: string;
  role: Role;
  namespaces: string | null;
  services: number;
  created_at: string;
  expires_at: string | null;
  created_by: string | null;
}

export interface CredentialRow {
  id: number;
  namespace: string;
  name: string;
  url_prefix: string;
  type: CredentialRecord['type'];
  username: string | null;
  fingerprint: string;
  known_hosts: string | null;
  ca_cert: string | null;
  secret: string;
  created_at: string;
  created_by: string | null;
}

export function tokenFromRow(r: TokenRow): TokenRecord {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    namespaces: r.namespaces === null ? null : (JSON.parse(r.namespaces) as string[]),
    services: r.services === 1,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    createdBy: r.created_by,
  };
}

export function credentialFromRow(r: CredentialRow): CredentialRecord {
  return {
    id: r.id,
    name: r.name,
    namespace: r.namespace,
    urlPrefix: r.url_prefix,
    type: r.type,
    username: r.username,
    fingerprint: r.fingerprint,
    knownHosts: r.known_hosts,
    caCert: r.ca_cert,
    secret: r.secret,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}

export interface SyncRow {
  id: number;
  app_id: number;
  commit_sha: string | null;
  started_at: string;
  finished_at: string | null;
  result: SyncRecord['result'];
  message: string;
  plan: string | null;
  trigger: SyncRecord['trigger'];
  actor: string | null;
  commit_info: string | null;
}

export interface DeployedRow {
  app_id: number;
  commit_sha: string;
  static_dir: string | null;
  /** JSON of StaticSite.dirs, or NULL. */
  static_dirs: string | null;
  warnings: string;
}

export interface FunctionRow {
  app_id: number;
  position: number;
  path: string;
  runtime: FunctionRuntimeKind;
  language: CodeLanguage | null;
  code: string;
  filename: string;
  line_offset: number | null;
  timeout_ms: number;
  memory_mb: number;
  env: string;
  port: number | null;
  /** JSON of DockerBuild (schema v2); NULL for non-docker functions and rows written before v2. */
  build: string | null;
  /** JSON of SecretEnvFile[] (schema v4): envFrom ciphertext and digests; NULL without envFrom. */
  secrets: string | null;
  hash: string;
}

export interface StaticFileRow {
  path: string;
  hash: string;
  size: number;
  oid: string | null;
  /** The file's place in the list, or -1 for every file of a list sorted by path. */
  position: number;
}

export function appFromRow(r: AppRow): AppRecord {
  const source: AppRecord['source'] = { repoURL: r.repo_url, branch: r.branch, path: r.source_path };
  if (r.verify !== null) source.verify = JSON.parse(r.verify) as CommitVerification;
  if (r.paths !== null) source.paths = JSON.parse(r.paths) as string[];
  const app: AppRecord = {
    id: r.id,
    name: r.name,
    namespace: r.namespace,
    source,
    status: r.status,
    message: r.message,
    commit: r.commit_sha,
    lastSync: r.last_sync,
    warnings: JSON.parse(r.warnings) as string[],
    createdAt: r.created_at,
    allowServices: r.allow_services === 1,
    createdBy: r.created_by,
  };
  // Absent rather than null, so records from before schema 6 look the same.
  if (r.suspended) app.suspended = JSON.parse(r.suspended) as Suspension;
  if (r.notify) app.notify = JSON.parse(r.notify) as NotifyTarget[];
  if (r.webhook_secret) app.webhookSecret = r.webhook_secret;
  return app;
}

export function syncFromRow(r: SyncRow): SyncRecord {
  const s: SyncRecord = {
    id: r.id,
    appId: r.app_id,
    commit: r.commit_sha,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    result: r.result,
    message: r.message,
    plan: r.plan === null ? null : (JSON.parse(r.plan) as Plan),
    trigger: r.trigger,
    actor: r.actor,
  };
  if (r.commit_info) s.commitInfo = JSON.parse(r.commit_info) as CommitInfo;
  return s;
}

export function functionFromRow(r: FunctionRow): DesiredFunction {
  const f: DesiredFunction = {
    path: r.path,
    runtime: r.runtime,
    code: r.code,
    filename: r.filename,
    timeoutMs: r.timeout_ms,
    memoryMb: r.memory_mb,
    env: JSON.parse(r.env) as Record<string, string>,
    hash: r.hash,
  };
  if (r.language !== null) f.language = r.language;
  if (r.line_offset !== null) f.lineOffset = r.line_offset;
  if (r.port !== null) f.port = r.port;
  if (r.build !== null) f.build = JSON.parse(r.build) as DockerBuild;
  if (r.secrets !== null && r.secrets !== undefined) f.secrets = JSON.parse(r.secrets) as SecretEnvFile[];
  return f;
}

/** Named parameters for inserting one function (undefined → NULL). */
export function functionParams(appId: number, position: number, f: DesiredFunction): Record<string, unknown> {
  return {
    app_id: appId,
    position,
    path: f.path,
    runtime: f.runtime,
    language: f.language ?? null,
    code: f.code,
    filename: f.filename,
    line_offset: f.lineOffset ?? null,
    timeout_ms: f.timeoutMs,
    memory_mb: f.memoryMb,
    env: toJson(f.env ?? {}, `env of function ${f.path}`),
    port: f.port ?? null,
    build: f.build === undefined ? null : toJson(f.build, `build of function ${f.path}`),
    secrets: f.secrets === undefined ? null : toJson(f.secrets, `envFrom of function ${f.path}`),
    hash: f.hash,
  };
}

export function staticFileFromRow(r: StaticFileRow): StaticFileEntry {
  return r.oid === null ? { path: r.path, hash: r.hash, size: r.size } : { path: r.path, hash: r.hash, size: r.size, oid: r.oid };
}

/** The files of a site from its rows (read ORDER BY position): rows of a path-sorted list (position -1) in path order. */
export function staticFilesFromRows(rows: StaticFileRow[]): StaticFileEntry[] {
  const files = rows.map(staticFileFromRow);
  if (rows.some((r) => r.position === -1)) files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return files;
}

/** JSON.stringify that fails loudly (BigInt, cycles, or a value with no JSON form). */
export function toJson(value: unknown, what: string): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch (e) {
    throw new ZvError('INTERNAL', `cannot store ${what}: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e });
  }
  if (s === undefined) throw new ZvError('INTERNAL', `cannot store ${what}: it has no JSON form`);
  return s;
}

/** Normalises a timestamp to ISO 8601 UTC (`…Z`), refusing anything Date cannot read. */
export function isoUtc(value: string, what: string): string {
  const d = new Date(value);
  if (typeof value !== 'string' || Number.isNaN(d.getTime())) {
    throw new ZvError('INTERNAL', `${what} is not a valid timestamp: ${JSON.stringify(value)}`);
  }
  return d.toISOString();
}
