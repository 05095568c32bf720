// Kept revisions of an application (PRODUCT.md §11, "History and rollback"): the last N deployed
// states, each with its commit's message, author and time, who deployed it, its functions, static
// file list and the services' applied specs, so that a rollback switches back without git.
//
// Storage: one row per revision with a small compressed JSON (functions, warnings, services, the
// static site's folder ids) and the static file list split into content-addressed chunks shared by
// every revision that has them. Chunk boundaries are content-defined (after a file whose path hashes
// to 0 mod CHUNK_AVG), so a commit that adds, changes or removes one file of a 20,000-file site
// writes one new chunk of ~64 entries instead of a new copy of the list; a chunk goes when no kept
// revision references it.
import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { DeployedState, DesiredFunction, StaticFileEntry } from '../../core/desired.js';
import type { ServiceSpec } from '../../core/services/types.js';
import type { NewRevision, Revision, RevisionInfo, RevisionSource } from '../types.js';
import { isoUtc } from './rows.js';

/** Average number of entries per chunk (a power of two). */
const CHUNK_AVG = 64;
/** No chunk holds more than this many entries, whatever the paths hash to. */
const CHUNK_MAX = 1024;

/** A static file entry as stored in a chunk: [path, hash, size] or [path, hash, size, oid]. */
type PackedEntry = [string, string, number] | [string, string, number, string];

/** The per-revision JSON (compressed into `revisions.state`). */
interface PackedState {
  functions: DesiredFunction[];
  warnings: string[];
  /** null: no static site. */
  static: { dir: string; dirs?: Record<string, string>; chunks: string[] } | null;
  /** null: the application had no services. */
  services: ServiceSpec[] | null;
  /** Where the revision was read from (absent in revisions kept before it was recorded). */
  source?: RevisionSource;
}

interface RevisionRow {
  id: number;
  commit_sha: string;
  commit_info: string | null;
  deployed_at: string;
  trigger: string;
  actor: string | null;
  functions: number;
  static_files: number;
  services: number;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const pack = (f: StaticFileEntry): PackedEntry => (f.oid === undefined ? [f.path, f.hash, f.size] : [f.path, f.hash, f.size, f.oid]);
const unpack = (e: PackedEntry): StaticFileEntry => (e.length === 4 ? { path: e[0], hash: e[1], size: e[2], oid: e[3] } : { path: e[0], hash: e[1], size: e[2] });

/** Splits a file list into chunks with content-defined boundaries (JSON text of each). */
export function chunkFiles(files: readonly StaticFileEntry[]): string[] {
  const out: string[] = [];
  let cur: PackedEntry[] = [];
  for (const f of files) {
    cur.push(pack(f));
    if (cur.length >= CHUNK_MAX || (fnv1a(f.path) & (CHUNK_AVG - 1)) === 0) {
      out.push(JSON.stringify(cur));
      cur = [];
    }
  }
  if (cur.length) out.push(JSON.stringify(cur));
  return out;
}

const zip = (text: string): Buffer => deflateRawSync(Buffer.from(text, 'utf8'));
const unzip = (data: Buffer): string => inflateRawSync(data).toString('utf8');

function infoFromRow(r: RevisionRow): RevisionInfo {
  return {
    commit: r.commit_sha,
    commitInfo: r.commit_info === null ? null : (JSON.parse(r.commit_info) as RevisionInfo['commitInfo']),
    deployedAt: r.deployed_at,
    cause: { trigger: r.trigger as RevisionInfo['cause']['trigger'], actor: r.actor },
    counts: { functions: r.functions, staticFiles: r.static_files, services: r.services },
  };
}

const INFO_COLUMNS = 'id, commit_sha, commit_info, deployed_at, trigger, actor, functions, static_files, services';

/** The revisions tables of a SqliteStore (schema 8); runs inside the store's transactions. */
export class RevisionTable {
  constructor(private readonly sql: (text: string) => Database.Statement) {}

  /**
   * Records a deployed revision as the newest: one with the same commit is replaced (moved to the
   * front); only the newest `keep` stay, and chunks no kept revision uses go with the others.
   */
  add(appId: number, rev: NewRevision, keep: number): void {
    const chunkIds: string[] = [];
    if (rev.state.static) {
      const has = this.sql('SELECT 1 FROM revision_chunks WHERE id = ?');
      const put = this.sql('INSERT INTO revision_chunks (id, data) VALUES (?, ?)');
      for (const text of chunkFiles(rev.state.static.files)) {
        const id = createHash('sha256').update(text).digest('hex');
        if (!has.get(id)) put.run(id, zip(text));
        chunkIds.push(id);
      }
    }
    const packed: PackedState = {
      functions: rev.state.functions,
      warnings: rev.state.warnings ?? [],
      static: rev.state.static ? { dir: rev.state.static.dir, ...(rev.state.static.dirs ? { dirs: rev.state.static.dirs } : {}), chunks: chunkIds } : null,
      services: rev.services,
      ...(rev.source ? { source: { repoURL: rev.source.repoURL, branch: rev.source.branch, path: rev.source.path } } : {}),
    };
    this.sql('DELETE FROM revisions WHERE app_id = ? AND commit_sha = ?').run(appId, rev.state.commit);
    const info = this.sql(`INSERT INTO revisions (app_id, commit_sha, commit_info, deployed_at, trigger, actor, functions, static_files, services, state)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      appId, rev.state.commit, rev.commitInfo ? JSON.stringify(rev.commitInfo) : null, isoUtc(rev.deployedAt, 'deployedAt'), rev.cause.trigger, rev.cause.actor,
      rev.state.functions.length, rev.state.static?.files.length ?? 0, rev.services?.length ?? 0, zip(JSON.stringify(packed)),
    );
    const revId = Number(info.lastInsertRowid);
    const ref = this.sql('INSERT OR IGNORE INTO revision_chunk_refs (revision_id, chunk_id) VALUES (?, ?)');
    for (const id of chunkIds) ref.run(revId, id);
    const dropped = this.sql('DELETE FROM revisions WHERE app_id = @appId AND id < (SELECT id FROM revisions WHERE app_id = @appId ORDER BY id DESC LIMIT 1 OFFSET @skip)')
      .run({ appId, skip: Math.max(1, keep) - 1 });
    if (dropped.changes > 0) this.dropUnusedChunks();
  }

  /** Chunks no kept revision references (after revisions were dropped, or an application deleted). */
  dropUnusedChunks(): void {
    this.sql('DELETE FROM revision_chunks WHERE id NOT IN (SELECT chunk_id FROM revision_chunk_refs)').run();
  }

  list(appId: number): RevisionInfo[] {
    return (this.sql(`SELECT ${INFO_COLUMNS} FROM revisions WHERE app_id = ? ORDER BY id DESC`).all(appId) as RevisionRow[]).map(infoFromRow);
  }

  get(appId: number, commit: string): Revision | null {
    const row = this.sql(`SELECT ${INFO_COLUMNS}, state FROM revisions WHERE app_id = ? AND commit_sha = ?`).get(appId, commit) as (RevisionRow & { state: Buffer }) | undefined;
    if (!row) return null;
    const packed = JSON.parse(unzip(row.state)) as PackedState;
    let site: DeployedState['static'] = null;
    if (packed.static) {
      const chunk = this.sql('SELECT data FROM revision_chunks WHERE id = ?');
      const files: StaticFileEntry[] = [];
      for (const id of packed.static.chunks) {
        const c = chunk.get(id) as { data: Buffer } | undefined;
        if (!c) throw new Error(`revision ${row.commit_sha}: static file chunk ${id.slice(0, 12)} is missing`);
        for (const e of JSON.parse(unzip(c.data)) as PackedEntry[]) files.push(unpack(e));
      }
      site = { dir: packed.static.dir, files, ...(packed.static.dirs ? { dirs: packed.static.dirs } : {}) };
    }
    return {
      ...infoFromRow(row),
      state: { commit: row.commit_sha, functions: packed.functions, static: site, warnings: packed.warnings },
      services: packed.services,
      ...(packed.source ? { source: packed.source } : {}),
    };
  }

  /** Every static blob hash a kept revision references. */
  blobHashes(): Set<string> {
    const out = new Set<string>();
    for (const r of this.sql('SELECT data FROM revision_chunks').iterate() as IterableIterator<{ data: Buffer }>) {
      for (const e of JSON.parse(unzip(r.data)) as PackedEntry[]) out.add(e[1]);
    }
    return out;
  }
}

/** Schema 8: the revisions tables (see the head of this file). */
export const REVISIONS_SQL = `
  CREATE TABLE revisions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id       INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    commit_sha   TEXT NOT NULL,
    commit_info  TEXT,
    deployed_at  TEXT NOT NULL,
    trigger      TEXT NOT NULL,
    actor        TEXT,
    functions    INTEGER NOT NULL,
    static_files INTEGER NOT NULL,
    services     INTEGER NOT NULL,
    state        BLOB NOT NULL
  );
  CREATE INDEX revisions_app ON revisions (app_id, id);
  CREATE TABLE revision_chunks (
    id   TEXT PRIMARY KEY,
    data BLOB NOT NULL
  );
  CREATE TABLE revision_chunk_refs (
    revision_id INTEGER NOT NULL REFERENCES revisions(id) ON DELETE CASCADE,
    chunk_id    TEXT NOT NULL,
    PRIMARY KEY (revision_id, chunk_id)
  );
  CREATE INDEX revision_chunk_refs_chunk ON revision_chunk_refs (chunk_id);
`;
