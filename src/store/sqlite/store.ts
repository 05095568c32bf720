// The embedded Store: one SQLite file (better-sqlite3, WAL journal, foreign keys on). Writes run in
// IMMEDIATE transactions so several connections or processes sharing the file queue up on the
// busy timeout instead of failing; commitDeployed (state + the app's commit) and finishSync (record
// + the app's status) are each one transaction.
import type Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DeployedState, StaticFileEntry } from '../../core/desired.js';
import type { ServiceSpec } from '../../core/services/types.js';
import { ZvError } from '../../errors/registry.js';
import type {
  AppRecord, AppStatusPatch, AppliedServices, CredentialRecord, NewApp, NewCredential, NotifyTarget, Store, SyncCause, SyncEnd, SyncRecord, TokenRecord,
  AppSource, NewRevision, Revision, RevisionInfo,
} from '../types.js';
import { RevisionTable } from './revisions.js';
import { sqlite } from './driver.js';
import { MIGRATIONS, migrate } from './migrations.js';
import {
  appFromRow, credentialFromRow, tokenFromRow, functionFromRow, functionParams, isoUtc, staticFilesFromRows, syncFromRow, toJson,
  type AppRow, type CredentialRow, type TokenRow, type DeployedRow, type FunctionRow, type StaticFileRow, type SyncRow,
} from './rows.js';

export interface SqliteStoreOptions {
  /** Sync records kept per application; older ones are dropped when a new sync starts. Default 100. */
  historyLimit?: number;
  /** How long a write waits for another connection's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
}

const APP_COLUMNS = 'id, namespace, name, repo_url, branch, source_path, status, message, commit_sha, last_sync, warnings, created_at, verify, allow_services, created_by, suspended, notify, webhook_secret, paths';
const SYNC_COLUMNS = 'id, app_id, commit_sha, started_at, finished_at, result, message, plan, trigger, actor, commit_info';
const TOKEN_COLUMNS = 'id, name, role, namespaces, services, created_at, expires_at, created_by';

function isUniqueViolation(e: unknown): boolean {
  return e instanceof sqlite().SqliteError && (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY');
}

/** A non-negative integer, or `fallback` for undefined / NaN / negative input. */
function count(n: number | undefined, fallback: number): number {
  return n === undefined || !Number.isFinite(n) || n < 0 ? fallback : Math.floor(n);
}

function appNotFound(id: number): ZvError {
  return new ZvError('APP_NOT_FOUND', `no application with id ${id}`, { id });
}

export class SqliteStore implements Store {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly historyLimit: number;
  /** Prepared statements by SQL text, each prepared once on first use (preparing on every call cost ~0.9 s in a profile of 1,000 applications). */
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;

  constructor(file: string, opts: SqliteStoreOptions = {}) {
    this.file = file;
    this.historyLimit = Math.max(1, Math.floor(opts.historyLimit ?? 100));
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const db = new (sqlite())(file, { timeout: opts.busyTimeoutMs ?? 5000 });
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db, MIGRATIONS, file);
    } catch (e) {
      db.close();
      throw e;
    }
    this.db = db;
  }

  /** The statement for `text`, prepared on first use and reused after (the SQL texts are a fixed set: only patchApp's SET list varies, over at most 31 combinations). */
  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (st === undefined) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  private appRow(id: number): AppRow | undefined {
    return this.sql(`SELECT ${APP_COLUMNS} FROM applications WHERE id = ?`).get(id) as AppRow | undefined;
  }

  private mustApp(id: number): AppRecord {
    const row = this.appRow(id);
    if (!row) throw appNotFound(id);
    return appFromRow(row);
  }

  async createApp(app: NewApp): Promise<AppRecord> {
    try {
      const info = this.sql('INSERT INTO applications (namespace, name, repo_url, branch, source_path, created_at, verify, allow_services, created_by, notify, webhook_secret, paths) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(app.namespace, app.name, app.source.repoURL, app.source.branch, app.source.path ?? '', new Date().toISOString(),
          app.source.verify ? toJson(app.source.verify, 'source.verify') : null, app.allowServices === false ? 0 : 1, app.createdBy ?? null,
          app.notify?.length ? toJson(app.notify, 'notify') : null, app.webhookSecret ?? null, app.source.paths?.length ? toJson(app.source.paths, 'source.paths') : null);
      return this.mustApp(Number(info.lastInsertRowid));
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ZvError('APP_EXISTS', `application '${app.name}' already exists in namespace '${app.namespace}'`, {
          name: app.name,
          namespace: app.namespace,
        });
      }
      throw e;
    }
  }

  async getApp(namespace: string, name: string): Promise<AppRecord | null> {
    const row = this.sql(`SELECT ${APP_COLUMNS} FROM applications WHERE namespace = ? AND name = ?`).get(namespace, name) as AppRow | undefined;
    return row ? appFromRow(row) : null;
  }

  async getAppById(id: number): Promise<AppRecord | null> {
    const row = this.appRow(id);
    return row ? appFromRow(row) : null;
  }

  async findAppsByName(name: string): Promise<AppRecord[]> {
    const rows = this.sql(`SELECT ${APP_COLUMNS} FROM applications WHERE name = ? ORDER BY namespace`).all(name) as AppRow[];
    return rows.map(appFromRow);
  }

  async listApps(q: { namespace?: string; namespaces?: string[]; limit?: number; offset?: number }): Promise<{ apps: AppRecord[]; total: number }> {
    const ns = q.namespace ?? null;
    // A JSON array of allowed namespaces (json_each), or NULL for no limit.
    const within = q.namespaces === undefined ? null : JSON.stringify(q.namespaces);
    const limit = count(q.limit, -1);
    const offset = count(q.offset, 0);
    const where = '(@ns IS NULL OR namespace = @ns) AND (@within IS NULL OR namespace IN (SELECT value FROM json_each(@within)))';
    const read = this.db.transaction(() => {
      const rows = this.sql(`SELECT ${APP_COLUMNS} FROM applications WHERE ${where} ORDER BY namespace, name LIMIT @limit OFFSET @offset`)
        .all({ ns, within, limit, offset }) as AppRow[];
      const { n } = this.sql(`SELECT COUNT(*) AS n FROM applications WHERE ${where}`).get({ ns, within }) as { n: number };
      return { apps: rows.map(appFromRow), total: n };
    });
    return read.deferred();
  }

  /** Applies a status patch inside the caller's transaction (fields left undefined are kept). */
  private patchApp(id: number, patch: AppStatusPatch): void {
    const sets: string[] = [];
    const params: Record<string, unknown> = { id };
    if (patch.status !== undefined) { sets.push('status = @status'); params.status = patch.status; }
    if (patch.message !== undefined) { sets.push('message = @message'); params.message = patch.message; }
    if (patch.commit !== undefined) { sets.push('commit_sha = @commit'); params.commit = patch.commit; }
    if (patch.lastSync !== undefined) {
      sets.push('last_sync = @lastSync');
      params.lastSync = patch.lastSync === null ? null : isoUtc(patch.lastSync, 'lastSync');
    }
    if (patch.warnings !== undefined) { sets.push('warnings = @warnings'); params.warnings = toJson(patch.warnings, 'warnings'); }
    if (patch.suspended !== undefined) {
      sets.push('suspended = @suspended');
      params.suspended = patch.suspended === null ? null : toJson({ ...patch.suspended, at: isoUtc(patch.suspended.at, 'suspended.at') }, 'suspended');
    }
    if (sets.length === 0) {
      if (!this.appRow(id)) throw appNotFound(id);
      return;
    }
    const info = this.sql(`UPDATE applications SET ${sets.join(', ')} WHERE id = @id`).run(params);
    if (info.changes === 0) throw appNotFound(id);
  }

  async updateApp(id: number, patch: AppStatusPatch): Promise<AppRecord> {
    return this.db.transaction(() => {
      this.patchApp(id, patch);
      return this.mustApp(id);
    }).immediate();
  }

  async setNotify(id: number, targets: NotifyTarget[]): Promise<AppRecord> {
    return this.db.transaction(() => {
      if (this.sql('UPDATE applications SET notify = ? WHERE id = ?').run(targets.length ? toJson(targets, 'notify') : null, id).changes === 0) throw appNotFound(id);
      return this.mustApp(id);
    }).immediate();
  }

  async deleteApp(id: number): Promise<void> {
    // syncs, deployed, deployed_functions, deployed_static_files, applied_services and
    // applied_service_specs go by ON DELETE CASCADE
    this.sql('DELETE FROM applications WHERE id = ?').run(id);
    this.revisions.dropUnusedChunks();
    this.staticWritten.delete(id);
  }

  async startSync(appId: number, startedAt: string, cause: SyncCause = { trigger: 'poll', actor: null }): Promise<number> {
    const at = isoUtc(startedAt, 'startedAt');
    return this.db.transaction(() => {
      if (!this.appRow(appId)) throw appNotFound(appId);
      const info = this.sql('INSERT INTO syncs (app_id, started_at, trigger, actor) VALUES (?, ?, ?, ?)').run(appId, at, cause.trigger, cause.actor);
      this.sql('DELETE FROM syncs WHERE app_id = @appId AND id < (SELECT id FROM syncs WHERE app_id = @appId ORDER BY id DESC LIMIT 1 OFFSET @skip)')
        .run({ appId, skip: this.historyLimit - 1 });
      return Number(info.lastInsertRowid);
    }).immediate();
  }

  /** Closes a sync record inside the caller's transaction; the sync must exist. Returns its application's id. */
  private endSync(syncId: number, r: SyncEnd): number {
    const row = this.sql('SELECT app_id FROM syncs WHERE id = ?').get(syncId) as { app_id: number } | undefined;
    if (!row) throw new ZvError('INTERNAL', `no sync record with id ${syncId}`, { syncId });
    this.sql('UPDATE syncs SET commit_sha = @commit, finished_at = @finishedAt, result = @result, message = @message, plan = @plan, commit_info = @commitInfo WHERE id = @id')
      .run({
        id: syncId,
        commit: r.commit,
        finishedAt: isoUtc(r.finishedAt, 'finishedAt'),
        result: r.result,
        message: r.message,
        plan: r.plan === null ? null : toJson(r.plan, 'the sync plan'),
        commitInfo: r.commitInfo ? toJson(r.commitInfo, 'the commit info') : null,
      });
    return row.app_id;
  }

  async finishSync(syncId: number, r: SyncEnd, status: AppStatusPatch): Promise<AppRecord> {
    return this.db.transaction(() => {
      const appId = this.endSync(syncId, r);
      this.patchApp(appId, status);
      return this.mustApp(appId);
    }).immediate();
  }

  async listSyncs(appId: number, limit?: number): Promise<SyncRecord[]> {
    const n = count(limit, -1);
    const rows = this.sql(`SELECT ${SYNC_COLUMNS} FROM syncs WHERE app_id = ? ORDER BY id DESC LIMIT ?`).all(appId, n) as SyncRow[];
    return rows.map(syncFromRow);
  }

  private readDeployed(appId: number): DeployedState | null {
    const d = this.sql('SELECT app_id, commit_sha, static_dir, static_dirs, warnings FROM deployed WHERE app_id = ?').get(appId) as DeployedRow | undefined;
    if (!d) return null;
    const fns = this.sql('SELECT * FROM deployed_functions WHERE app_id = ? ORDER BY position').all(appId) as FunctionRow[];
    let site: DeployedState['static'] = null;
    if (d.static_dir !== null) {
      const rows = this.sql('SELECT path, hash, size, git_oid AS oid, position FROM deployed_static_files WHERE app_id = ? ORDER BY position').all(appId) as StaticFileRow[];
      site = { dir: d.static_dir, files: staticFilesFromRows(rows) };
      if (d.static_dirs !== null) site.dirs = JSON.parse(d.static_dirs) as Record<string, string>;
      this.staticWritten.set(appId, site.files);
    }
    return { commit: d.commit_sha, functions: fns.map(functionFromRow), static: site, warnings: JSON.parse(d.warnings) as string[] };
  }

  async getDeployed(appId: number): Promise<DeployedState | null> {
    return this.db.transaction(() => this.readDeployed(appId)).deferred();
  }

  /**
   * Per application, the static file list last committed or read: a state whose list is that same
   * array (the reader hands back the deployed list when no file changed) has no row to write. (One
   * server owns a data directory: no other connection writes its deployed rows.)
   */
  private readonly staticWritten = new Map<number, readonly StaticFileEntry[]>();

  private writeDeployed(appId: number, s: DeployedState): void {
    // The row is updated in place (a DELETE would cascade to every static file row).
    this.sql(`INSERT INTO deployed (app_id, commit_sha, static_dir, static_dirs, warnings) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (app_id) DO UPDATE SET commit_sha = excluded.commit_sha, static_dir = excluded.static_dir,
        static_dirs = excluded.static_dirs, warnings = excluded.warnings`)
      .run(appId, s.commit, s.static ? s.static.dir : null, s.static?.dirs ? toJson(s.static.dirs, 'static folder ids') : null,
        toJson(s.warnings ?? [], 'deployed warnings'));
    this.sql('DELETE FROM deployed_functions WHERE app_id = ?').run(appId);
    const fn = this.sql(
      `INSERT INTO deployed_functions (app_id, position, path, runtime, language, code, filename, line_offset, timeout_ms, memory_mb, env, port, build, secrets, hash)
       VALUES (@app_id, @position, @path, @runtime, @language, @code, @filename, @line_offset, @timeout_ms, @memory_mb, @env, @port, @build, @secrets, @hash)`,
    );
    s.functions.forEach((f, i) => fn.run(functionParams(appId, i, f)));
    this.writeStaticFiles(appId, s.static?.files ?? null);
  }

  /**
   * Only the rows that changed: each file is compared with its row by path and inserted, updated or
   * deleted. A list sorted by path (what the tree reader gives) is stored with position -1 and read
   * back in path order, so adding a file does not move every row after it; any other order is kept
   * by its positions.
   */
  private writeStaticFiles(appId: number, files: readonly StaticFileEntry[] | null): void {
    if (files === null) {
      this.sql('DELETE FROM deployed_static_files WHERE app_id = ?').run(appId);
      return;
    }
    if (this.staticWritten.get(appId) === files) return;
    const sorted = files.every((f, i) => i === 0 || (files[i - 1] as StaticFileEntry).path < f.path);
    const rows = new Map<string, StaticFileRow>();
    for (const r of this.sql('SELECT path, hash, size, git_oid AS oid, position FROM deployed_static_files WHERE app_id = ?').all(appId) as StaticFileRow[]) rows.set(r.path, r);
    const insert = this.sql('INSERT INTO deployed_static_files (app_id, position, path, hash, size, git_oid) VALUES (?, ?, ?, ?, ?, ?)');
    const update = this.sql('UPDATE deployed_static_files SET position = ?, hash = ?, size = ?, git_oid = ? WHERE app_id = ? AND path = ?');
    files.forEach((f, i) => {
      const position = sorted ? -1 : i;
      const oid = f.oid ?? null;
      const row = rows.get(f.path);
      if (!row) insert.run(appId, position, f.path, f.hash, f.size, oid);
      else {
        rows.delete(f.path);
        if (row.position !== position || row.hash !== f.hash || row.size !== f.size || row.oid !== oid) update.run(position, f.hash, f.size, oid, appId, f.path);
      }
    });
    const remove = this.sql('DELETE FROM deployed_static_files WHERE app_id = ? AND path = ?');
    for (const path of rows.keys()) remove.run(appId, path);
  }

  async commitDeployed(appId: number, deployed: DeployedState): Promise<AppRecord> {
    const rec = this.db.transaction(() => {
      if (!this.appRow(appId)) throw appNotFound(appId);
      this.writeDeployed(appId, deployed);
      this.patchApp(appId, { commit: deployed.commit, warnings: deployed.warnings ?? [] });
      return this.mustApp(appId);
    }).immediate();
    // Only once committed: a rolled-back write leaves the rows as they were.
    if (deployed.static) this.staticWritten.set(appId, deployed.static.files);
    else this.staticWritten.delete(appId);
    return rec;
  }

  async getAppliedServices(appId: number): Promise<AppliedServices | null> {
    return this.db.transaction(() => {
      const head = this.sql('SELECT commit_sha FROM applied_services WHERE app_id = ?').get(appId) as { commit_sha: string | null } | undefined;
      if (!head) return null;
      const rows = this.sql('SELECT spec FROM applied_service_specs WHERE app_id = ? ORDER BY name').all(appId) as { spec: string }[];
      return { commit: head.commit_sha, specs: rows.map((r) => JSON.parse(r.spec) as ServiceSpec) };
    }).deferred();
  }

  async saveAppliedServices(appId: number, applied: AppliedServices): Promise<void> {
    this.db.transaction(() => {
      if (!this.appRow(appId)) throw appNotFound(appId);
      // the specs go away with their head row (ON DELETE CASCADE)
      this.sql('DELETE FROM applied_services WHERE app_id = ?').run(appId);
      this.sql('INSERT INTO applied_services (app_id, commit_sha) VALUES (?, ?)').run(appId, applied.commit);
      const spec = this.sql('INSERT INTO applied_service_specs (app_id, name, spec) VALUES (?, ?, ?)');
      for (const s of applied.specs) {
        try {
          spec.run(appId, s.name, toJson(s, `the applied spec of service ${s.name}`));
        } catch (e) {
          if (isUniqueViolation(e)) throw new ZvError('INTERNAL', `two applied service specs are named ${s.name}`, { appId, service: s.name });
          throw e;
        }
      }
    }).immediate();
  }

  /** Kept revisions (schema 8): revisions.ts. */
  private readonly revisions = new RevisionTable((text) => this.sql(text));

  async addRevision(appId: number, revision: NewRevision, keep: number): Promise<void> {
    this.db.transaction(() => {
      if (!this.appRow(appId)) throw appNotFound(appId);
      this.revisions.add(appId, revision, keep);
    }).immediate();
  }

  async listRevisions(appId: number): Promise<RevisionInfo[]> {
    return this.revisions.list(appId);
  }

  async getRevision(appId: number, commit: string): Promise<Revision | null> {
    return this.db.transaction(() => this.revisions.get(appId, commit)).deferred();
  }

  async revisionBlobHashes(): Promise<Set<string>> {
    return this.db.transaction(() => this.revisions.blobHashes()).deferred();
  }

  async setSource(id: number, source: AppSource): Promise<AppRecord> {
    return this.db.transaction(() => {
      const info = this.sql('UPDATE applications SET repo_url = ?, branch = ?, source_path = ?, verify = ?, paths = ? WHERE id = ?')
        .run(source.repoURL, source.branch, source.path ?? '', source.verify ? toJson(source.verify, 'source.verify') : null,
          source.paths?.length ? toJson(source.paths, 'source.paths') : null, id);
      if (info.changes === 0) throw appNotFound(id);
      return this.mustApp(id);
    }).immediate();
  }

  /** Every static-file blob hash some application serves (the `keep` set for BlobStore.gc). */
  async liveBlobHashes(): Promise<Set<string>> {
    const rows = this.sql('SELECT DISTINCT hash FROM deployed_static_files').all() as { hash: string }[];
    return new Set(rows.map((r) => r.hash));
  }

  async putToken(token: TokenRecord, hash: string): Promise<void> {
    this.sql(`INSERT OR REPLACE INTO tokens (${TOKEN_COLUMNS}, hash) VALUES (@id, @name, @role, @namespaces, @services, @createdAt, @expiresAt, @createdBy, @hash)`)
      .run({
        ...token,
        namespaces: token.namespaces === null ? null : toJson(token.namespaces, 'token namespaces'),
        services: token.services ? 1 : 0,
        expiresAt: token.expiresAt === null ? null : isoUtc(token.expiresAt, 'expiresAt'),
        hash,
      });
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | null> {
    const row = this.sql(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE hash = ?`).get(hash) as TokenRow | undefined;
    return row ? tokenFromRow(row) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    const rows = this.sql(`SELECT ${TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id`).all() as TokenRow[];
    return rows.map(tokenFromRow);
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.sql('DELETE FROM tokens WHERE id = ?').run(id).changes > 0;
  }

  async countTokens(): Promise<number> {
    return (this.sql('SELECT COUNT(*) AS n FROM tokens').get() as { n: number }).n;
  }

  async createCredential(c: NewCredential): Promise<CredentialRecord> {
    try {
      const info = this.sql(`INSERT INTO credentials (namespace, name, url_prefix, type, username, fingerprint, known_hosts, ca_cert, secret, created_at, created_by)
                  VALUES (@namespace, @name, @urlPrefix, @type, @username, @fingerprint, @knownHosts, @caCert, @secret, @createdAt, @createdBy)`)
        .run({ ...c, createdAt: new Date().toISOString() });
      return credentialFromRow(this.sql('SELECT * FROM credentials WHERE id = ?').get(Number(info.lastInsertRowid)) as CredentialRow);
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ZvError('CREDENTIAL_EXISTS', `credential '${c.name}' already exists in namespace '${c.namespace}'`, { name: c.name, namespace: c.namespace });
      }
      throw e;
    }
  }

  async getCredential(namespace: string, name: string): Promise<CredentialRecord | null> {
    const row = this.sql('SELECT * FROM credentials WHERE namespace = ? AND name = ?').get(namespace, name) as CredentialRow | undefined;
    return row ? credentialFromRow(row) : null;
  }

  async listCredentials(namespaces: string[] | null): Promise<CredentialRecord[]> {
    const rows = this.sql('SELECT * FROM credentials ORDER BY namespace, name').all() as CredentialRow[];
    const keep = namespaces === null ? null : new Set([...namespaces, '*']);
    return rows.filter((r) => keep === null || keep.has(r.namespace)).map(credentialFromRow);
  }

  async deleteCredential(id: number): Promise<boolean> {
    return this.sql('DELETE FROM credentials WHERE id = ?').run(id).changes > 0;
  }

  async setCredentialKnownHosts(id: number, knownHosts: string): Promise<void> {
    this.sql('UPDATE credentials SET known_hosts = ? WHERE id = ?').run(knownHosts, id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

export function openSqliteStore(file: string, opts: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(file, opts);
}
