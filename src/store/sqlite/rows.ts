// Row shapes of the SQLite tables and their mapping to the store's records. Optional fields are
// left out (not set to undefined) when their column is NULL, so records round-trip with deepEqual.
import type { AppSyncStatus, CodeLanguage, DesiredFunction, DockerBuild, FunctionRuntimeKind, StaticFileEntry } from '../../core/model.js';
import type { Plan } from '../../core/plan.js';
import type { AppRecord, SyncRecord } from '../types.js';
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
}

export interface DeployedRow {
  app_id: number;
  commit_sha: string;
  static_dir: string | null;
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
  hash: string;
}

export interface StaticFileRow {
  path: string;
  hash: string;
  size: number;
}

export function appFromRow(r: AppRow): AppRecord {
  return {
    id: r.id,
    name: r.name,
    namespace: r.namespace,
    source: { repoURL: r.repo_url, branch: r.branch, path: r.source_path },
    status: r.status,
    message: r.message,
    commit: r.commit_sha,
    lastSync: r.last_sync,
    warnings: JSON.parse(r.warnings) as string[],
    createdAt: r.created_at,
  };
}

export function syncFromRow(r: SyncRow): SyncRecord {
  return {
    id: r.id,
    appId: r.app_id,
    commit: r.commit_sha,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    result: r.result,
    message: r.message,
    plan: r.plan === null ? null : (JSON.parse(r.plan) as Plan),
  };
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
    hash: f.hash,
  };
}

export function staticFileFromRow(r: StaticFileRow): StaticFileEntry {
  return { path: r.path, hash: r.hash, size: r.size };
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
