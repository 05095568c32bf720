// Migration tests on real SQLite files: versions are recorded once, re-opening does not re-apply,
// a failed step rolls back, and a database from a newer zerverless is refused untouched.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isZvError } from '../../errors/registry.js';
import { MIGRATIONS, migrate, schemaVersion, type Migration } from './migrations.js';
import { openSqliteStore } from './store.js';
import { newApp } from '../contract.js';

describe('sqlite migrations', () => {
  let dir: string;
  let n = 0;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'zv-migrate-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });
  const file = (): string => join(dir, `db${n++}.sqlite`);

  it('numbers the shipped migrations 1..n', () => {
    assert.ok(MIGRATIONS.length >= 1);
    MIGRATIONS.forEach((m, i) => assert.equal(m.version, i + 1));
  });

  it('records every applied version once and does not re-apply on reopen', async () => {
    const f = file();
    const s1 = openSqliteStore(f);
    await s1.createApp(newApp('web'));
    await s1.close();
    const db = new Database(f);
    try {
      const rows = db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as { version: number; applied_at: string }[];
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
      const again = migrate(db);
      assert.deepEqual(again, { from: MIGRATIONS.length, to: MIGRATIONS.length, applied: [] });
      const rows2 = db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all();
      assert.deepEqual(rows2, rows);
    } finally {
      db.close();
    }
    const s2 = openSqliteStore(f);
    assert.equal((await s2.listApps({})).total, 1, 'data survives a reopen');
    await s2.close();
  });

  it('applies only the new steps of a longer list, each once', () => {
    const db = new Database(file());
    try {
      const v1: Migration[] = [{ version: 1, name: 'one', sql: 'CREATE TABLE t1 (x INTEGER)' }];
      // CREATE TABLE without IF NOT EXISTS fails if a step ran twice
      const v2: Migration[] = [...v1, { version: 2, name: 'two', sql: 'CREATE TABLE t2 (y INTEGER); INSERT INTO t1 VALUES (1);' }];
      assert.deepEqual(migrate(db, v1), { from: 0, to: 1, applied: [1] });
      assert.deepEqual(migrate(db, v2), { from: 1, to: 2, applied: [2] });
      assert.deepEqual(migrate(db, v2), { from: 2, to: 2, applied: [] });
      assert.equal((db.prepare('SELECT COUNT(*) AS c FROM t1').get() as { c: number }).c, 1);
    } finally {
      db.close();
    }
  });

  it('rolls a failing step back entirely', () => {
    const db = new Database(file());
    try {
      const list: Migration[] = [
        { version: 1, name: 'one', sql: 'CREATE TABLE t1 (x INTEGER)' },
        { version: 2, name: 'broken', sql: 'CREATE TABLE t2 (y INTEGER); INSERT INTO nowhere VALUES (1);' },
      ];
      assert.throws(() => migrate(db, list), /no such table: nowhere/);
      assert.equal(schemaVersion(db), 1);
      const t2 = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 't2'").get();
      assert.equal(t2, undefined);
    } finally {
      db.close();
    }
  });

  it('refuses a list with gaps or out of order', () => {
    const db = new Database(':memory:');
    try {
      assert.throws(() => migrate(db, [{ version: 2, name: 'x', sql: '' }]), /out of order/);
    } finally {
      db.close();
    }
  });

  it('refuses a database from a newer version and leaves it untouched', async () => {
    const f = file();
    await openSqliteStore(f).close();
    const future = MIGRATIONS.length + 5;
    const db = new Database(f);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(future, 'from the future', new Date().toISOString());
    db.close();

    assert.throws(() => openSqliteStore(f), (e: unknown) => {
      assert.ok(isZvError(e, 'CONFIG_INVALID'), `expected CONFIG_INVALID, got ${String(e)}`);
      assert.match(e.message, new RegExp(`schema version ${future}, newer than this zerverless knows \\(${MIGRATIONS.length}\\)`));
      assert.ok(e.message.includes(f), 'the message names the file');
      return true;
    });
    const check = new Database(f, { readonly: true });
    try {
      assert.equal(schemaVersion(check), future);
    } finally {
      check.close();
    }
  });
});
