// Versioned schema migrations for the SQLite store: an ordered list of SQL steps. Each step runs in
// its own transaction and is recorded in `schema_migrations`; a database whose version is newer
// than the last step known here is refused rather than touched.
import type { Database } from 'better-sqlite3';
import { ZvError } from '../../errors/registry.js';
import { REVISIONS_SQL } from './revisions.js';

export interface Migration {
  /** 1, 2, 3, … with no gaps. */
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'applications, sync history, deployed state',
    sql: `
      CREATE TABLE applications (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace   TEXT NOT NULL,
        name        TEXT NOT NULL,
        repo_url    TEXT NOT NULL,
        branch      TEXT NOT NULL,
        source_path TEXT NOT NULL DEFAULT '',
        status      TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'syncing', 'synced', 'degraded', 'error')),
        message     TEXT NOT NULL DEFAULT '',
        commit_sha  TEXT,
        last_sync   TEXT,
        warnings    TEXT NOT NULL DEFAULT '[]',
        created_at  TEXT NOT NULL,
        UNIQUE (namespace, name)
      );
      CREATE INDEX applications_by_name ON applications (name, namespace);

      CREATE TABLE syncs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id      INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
        commit_sha  TEXT,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        result      TEXT NOT NULL DEFAULT 'running' CHECK (result IN ('running', 'success', 'error')),
        message     TEXT NOT NULL DEFAULT '',
        plan        TEXT
      );
      CREATE INDEX syncs_by_app ON syncs (app_id, id);

      CREATE TABLE deployed (
        app_id      INTEGER PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
        commit_sha  TEXT NOT NULL,
        static_dir  TEXT,
        warnings    TEXT NOT NULL DEFAULT '[]'
      );

      CREATE TABLE deployed_functions (
        app_id      INTEGER NOT NULL REFERENCES deployed (app_id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        path        TEXT NOT NULL,
        runtime     TEXT NOT NULL,
        language    TEXT,
        code        TEXT NOT NULL,
        filename    TEXT NOT NULL,
        line_offset INTEGER,
        timeout_ms  INTEGER NOT NULL,
        memory_mb   INTEGER NOT NULL,
        env         TEXT NOT NULL DEFAULT '{}',
        port        INTEGER,
        hash        TEXT NOT NULL,
        PRIMARY KEY (app_id, path)
      );

      CREATE TABLE deployed_static_files (
        app_id      INTEGER NOT NULL REFERENCES deployed (app_id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        path        TEXT NOT NULL,
        hash        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        PRIMARY KEY (app_id, path)
      );
      CREATE INDEX deployed_static_files_by_hash ON deployed_static_files (hash);
    `,
  },
  {
    version: 2,
    name: 'docker build inputs of deployed functions',
    // JSON of DockerBuild ({dockerfile, context, contextHash, capabilities}); NULL for other runtimes.
    sql: `ALTER TABLE deployed_functions ADD COLUMN build TEXT;`,
  },
  {
    version: 3,
    name: 'access control: tokens, credentials, signed-commit policy, who triggered each sync',
    sql: `
      CREATE TABLE tokens (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        hash         TEXT NOT NULL UNIQUE,
        role         TEXT NOT NULL CHECK (role IN ('admin', 'deployer', 'reader')),
        namespaces   TEXT,
        services     INTEGER NOT NULL DEFAULT 0,
        created_at   TEXT NOT NULL,
        expires_at   TEXT,
        created_by   TEXT
      );

      CREATE TABLE credentials (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace    TEXT NOT NULL,
        name         TEXT NOT NULL,
        url_prefix   TEXT NOT NULL,
        type         TEXT NOT NULL CHECK (type IN ('ssh', 'https')),
        username     TEXT,
        fingerprint  TEXT NOT NULL,
        known_hosts  TEXT,
        ca_cert      TEXT,
        secret       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        created_by   TEXT,
        UNIQUE (namespace, name)
      );

      ALTER TABLE applications ADD COLUMN verify TEXT;
      ALTER TABLE applications ADD COLUMN allow_services INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE applications ADD COLUMN created_by TEXT;
      ALTER TABLE syncs ADD COLUMN trigger TEXT NOT NULL DEFAULT 'poll';
      ALTER TABLE syncs ADD COLUMN actor TEXT;
    `,
  },
  {
    version: 4,
    name: 'envFrom secrets of deployed functions (ciphertext and keyed digests, never values)',
    // JSON of SecretEnvFile[] ({file, data: base64 ciphertext, digests}); NULL without envFrom.
    sql: `ALTER TABLE deployed_functions ADD COLUMN secrets TEXT;`,
  },
  {
    version: 5,
    name: 'applied service specs of each application (were applied.json files)',
    // A row in applied_services means "saved" (even with no specs); each spec is JSON of ServiceSpec.
    sql: `
      CREATE TABLE applied_services (
        app_id      INTEGER PRIMARY KEY REFERENCES applications (id) ON DELETE CASCADE,
        commit_sha  TEXT
      );

      CREATE TABLE applied_service_specs (
        app_id      INTEGER NOT NULL REFERENCES applied_services (app_id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        spec        TEXT NOT NULL,
        PRIMARY KEY (app_id, name)
      );
    `,
  },
  {
    version: 6,
    name: 'suspended applications, notification targets, commit message of each sync',
    // suspended: JSON {at, by, reason, untilSync?} or NULL; notify: JSON [{url, events?, format, secret? (sealed)}];
    // commit_info: JSON {message, author, time} of the sync's commit, when the source told it.
    sql: `
      ALTER TABLE applications ADD COLUMN suspended TEXT;
      ALTER TABLE applications ADD COLUMN notify TEXT;
      ALTER TABLE syncs ADD COLUMN commit_info TEXT;
    `,
  },
  {
    version: 7,
    name: 'content ids of deployed static files and folders',
    // git_oid: the file's content id in its commit (git blob id), NULL for files deployed before; a later
    // sync reuses hash and size of a file whose id is unchanged. static_dirs: JSON {folder path: tree
    // id} of the static site (StaticSite.dirs), NULL when the site has symlinks or was deployed before.
    // Files of a list sorted by path are stored with position -1 (read back in path order).
    // Not named `oid`: that is an alias of rowid, and newer SQLite (better-sqlite3 on Node 22+)
    // refuses a column of that name.
    sql: `
      ALTER TABLE deployed_static_files ADD COLUMN git_oid TEXT;
      ALTER TABLE deployed ADD COLUMN static_dirs TEXT;
    `,
  },
  {
    version: 8,
    name: 'kept revisions of each application',
    // The last deployed revisions (PRODUCT.md §11) for rollback without git; static file lists are
    // shared content-addressed chunks (src/store/sqlite/revisions.ts).
    sql: REVISIONS_SQL,
  },
  {
    version: 9,
    name: 'per-application webhook secret',
    // Sealed with the master key (AES-256-GCM, bound to the application's namespace and name).
    sql: `
      ALTER TABLE applications ADD COLUMN webhook_secret TEXT;
    `,
  },
  {
    version: 10,
    name: 'monorepo path globs of each application',
    // paths: JSON array of globs from the repository root (AppSource.paths), NULL when none.
    sql: `
      ALTER TABLE applications ADD COLUMN paths TEXT;
    `,
  },
];

function ensureTable(db: Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
}

/** The highest applied version (0 for a new database). */
export function schemaVersion(db: Database): number {
  ensureTable(db);
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

function checkList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list out of order: entry ${i} has version ${m.version}, expected ${i + 1}`);
  });
}

function tooNew(version: number, known: number, where: string): ZvError {
  return new ZvError(
    'CONFIG_INVALID',
    `the database ${where} has schema version ${version}, newer than this zerverless knows (${known}); ` +
      'upgrade zerverless or point it at another data directory',
    { schemaVersion: version, knownVersion: known },
  );
}

/**
 * Brings the database up to the last migration. Safe when several connections open the same new
 * file at once: each step re-checks the version inside a write (IMMEDIATE) transaction.
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS, where = db.name): { from: number; to: number; applied: number[] } {
  checkList(migrations);
  const known = migrations.length;
  const from = schemaVersion(db);
  if (from > known) throw tooNew(from, known, where);
  const applied: number[] = [];
  const insert = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of migrations) {
    if (m.version <= from) continue;
    const step = db.transaction(() => {
      const current = schemaVersion(db);
      if (current > known) throw tooNew(current, known, where);
      if (current >= m.version) return false; // another connection applied it meanwhile
      db.exec(m.sql);
      insert.run(m.version, m.name, new Date().toISOString());
      return true;
    });
    if (step.immediate()) applied.push(m.version);
  }
  return { from, to: schemaVersion(db), applied };
}
