// Migration tests on real SQLite files: versions are recorded once, re-opening does not re-apply,
// a failed step rolls back, a database from a newer zerverless is refused untouched, a v1
// database (before docker builds were stored) upgrades keeping its data, and so does a v4 one
// (before applied service specs were stored).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqlite } from './driver.js';
import { isZvError } from '../../errors/registry.js';
import { MIGRATIONS, migrate, schemaVersion, type Migration } from './migrations.js';
import { openSqliteStore } from './store.js';
import { newApp, sampleDeployed, sampleSpec } from '../contract.js';
import { planApplication } from '../../core/plan/index.js';
import type { DeployedState } from '../../core/desired.js';

const Database = sqlite();

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

  it('upgrades a v1 database to v2 keeping its data, then stores docker builds', async () => {
    const f = file();
    const db = new Database(f);
    try {
      assert.deepEqual(migrate(db, MIGRATIONS.slice(0, 1)), { from: 0, to: 1, applied: [1] });
      // rows as zerverless with schema v1 wrote them
      db.prepare("INSERT INTO applications (namespace, name, repo_url, branch, created_at, status, commit_sha) VALUES ('team', 'web', 'https://git.example.com/team/web.git', 'main', '2026-01-15T10:00:00.000Z', 'synced', ?)").run('a'.repeat(40));
      db.prepare("INSERT INTO deployed (app_id, commit_sha, static_dir, warnings) VALUES (1, ?, './static', '[\"w\"]')").run('a'.repeat(40));
      const fn = db.prepare(`INSERT INTO deployed_functions (app_id, position, path, runtime, language, code, filename, line_offset, timeout_ms, memory_mb, env, port, hash)
        VALUES (1, @position, @path, @runtime, NULL, @code, @filename, NULL, 30000, 128, @env, @port, @hash)`);
      fn.run({ position: 0, path: '/hello', runtime: 'lua', code: 'x', filename: 'zerverless.yaml', env: '{}', port: null, hash: 'h1' });
      fn.run({ position: 1, path: '/svc', runtime: 'docker', code: 'FROM base\n', filename: 'Dockerfile', env: '{"A":"1"}', port: 8080, hash: 'h2' });
      db.prepare("INSERT INTO deployed_static_files (app_id, position, path, hash, size) VALUES (1, 0, 'index.html', ?, 3)").run('1'.repeat(64));
    } finally {
      db.close();
    }

    const old: DeployedState = {
      commit: 'a'.repeat(40),
      functions: [
        { path: '/hello', runtime: 'lua', code: 'x', filename: 'zerverless.yaml', timeoutMs: 30000, memoryMb: 128, env: {}, hash: 'h1' },
        { path: '/svc', runtime: 'docker', code: 'FROM base\n', filename: 'Dockerfile', timeoutMs: 30000, memoryMb: 128, env: { A: '1' }, port: 8080, hash: 'h2' },
      ],
      static: { dir: './static', files: [{ path: 'index.html', hash: '1'.repeat(64), size: 3 }] },
      warnings: ['w'],
    };
    const store = openSqliteStore(f);
    try {
      const app = await store.getApp('team', 'web');
      assert.equal(app?.status, 'synced');
      assert.equal(app?.commit, 'a'.repeat(40));
      assert.deepEqual(await store.getDeployed(1), old, 'v1 rows read back unchanged, without build');

      const next = sampleDeployed('b'.repeat(40));
      assert.ok(next.functions.some((x) => x.build), 'the sample has a docker build');
      const s = await store.startSync(1, '2026-01-15T11:00:00.000Z');
      await store.commitDeployed(1, next);
      await store.finishSync(s, { commit: next.commit, finishedAt: '2026-01-15T11:00:01.000Z', result: 'success', message: '', plan: planApplication({ state: next }, { state: old }) }, { status: 'synced' });
      assert.deepEqual(await store.getDeployed(1), next);
    } finally {
      await store.close();
    }
    const check = new Database(f, { readonly: true });
    try {
      assert.equal(schemaVersion(check), MIGRATIONS.length);
      const cols = (check.prepare('PRAGMA table_info(deployed_functions)').all() as { name: string; notnull: number }[]);
      assert.deepEqual(cols.filter((c) => c.name === 'build').map((c) => c.notnull), [0]);
      // v4: envFrom ciphertext and digests; NULL for functions without envFrom and older rows
      assert.deepEqual(cols.filter((c) => c.name === 'secrets').map((c) => c.notnull), [0]);
      const stored = check.prepare("SELECT secrets FROM deployed_functions WHERE path = '/api/js'").get() as { secrets: string };
      assert.deepEqual(Object.keys((JSON.parse(stored.secrets) as { digests: Record<string, string> }[])[0]!.digests), ['DB_PASSWORD']);
    } finally {
      check.close();
    }
  });
  it('upgrades a v4 database with applications to v5 keeping them, then stores applied services', async () => {
    const f = file();
    const sha = 'a'.repeat(40);
    const db = new Database(f);
    try {
      db.pragma('foreign_keys = ON');
      assert.deepEqual(migrate(db, MIGRATIONS.slice(0, 4)), { from: 0, to: 4, applied: [1, 2, 3, 4] });
      // rows as zerverless with schema v4 wrote them: two applications, one synced, with history
      const app = db.prepare(`INSERT INTO applications (namespace, name, repo_url, branch, source_path, status, message, commit_sha, last_sync, warnings, created_at, verify, allow_services, created_by)
        VALUES (@ns, @name, 'https://git.example.com/x.git', 'main', '', @status, '', @commit, @lastSync, '["w"]', '2026-01-15T09:00:00.000Z', NULL, @allow, @by)`);
      app.run({ ns: 'team', name: 'web', status: 'synced', commit: sha, lastSync: '2026-01-15T10:00:01.000Z', allow: 1, by: 'ci' });
      app.run({ ns: 'team', name: 'api', status: 'error', commit: null, lastSync: null, allow: 0, by: null });
      db.prepare("INSERT INTO syncs (app_id, commit_sha, started_at, finished_at, result, message, plan, trigger, actor) VALUES (1, ?, '2026-01-15T10:00:00.000Z', '2026-01-15T10:00:01.000Z', 'success', '', NULL, 'api', 'ci')").run(sha);
      db.prepare("INSERT INTO deployed (app_id, commit_sha, static_dir, warnings) VALUES (1, ?, NULL, '[\"w\"]')").run(sha);
      db.prepare(`INSERT INTO deployed_functions (app_id, position, path, runtime, language, code, filename, line_offset, timeout_ms, memory_mb, env, port, build, secrets, hash)
        VALUES (1, 0, '/hello', 'lua', NULL, 'x', 'zerverless.yaml', NULL, 30000, 128, '{}', NULL, NULL, NULL, 'h1')`).run();
    } finally {
      db.close();
    }

    const store = openSqliteStore(f);
    try {
      const web = await store.getApp('team', 'web');
      assert.deepEqual(web, {
        id: 1, name: 'web', namespace: 'team', source: { repoURL: 'https://git.example.com/x.git', branch: 'main', path: '' }, status: 'synced', message: '',
        commit: sha, lastSync: '2026-01-15T10:00:01.000Z', warnings: ['w'], createdAt: '2026-01-15T09:00:00.000Z', allowServices: true, createdBy: 'ci',
      });
      assert.equal((await store.getApp('team', 'api'))?.allowServices, false);
      assert.equal((await store.listApps({})).total, 2);
      assert.deepEqual((await store.listSyncs(1)).map((s) => [s.result, s.trigger, s.actor]), [['success', 'api', 'ci']]);
      assert.equal((await store.getDeployed(1))?.functions[0]?.path, '/hello');
      // nothing was ever saved for them (their applied.json files are imported at server start)
      assert.equal(await store.getAppliedServices(1), null);
      assert.equal(await store.getAppliedServices(2), null);
      await store.saveAppliedServices(1, { commit: sha, specs: [sampleSpec('web')] });
      assert.deepEqual(await store.getAppliedServices(1), { commit: sha, specs: [sampleSpec('web')] });
      await store.deleteApp(1);
      assert.equal(await store.getAppliedServices(1), null);
    } finally {
      await store.close();
    }
    const check = new Database(f, { readonly: true });
    try {
      assert.equal(schemaVersion(check), MIGRATIONS.length);
      const tables = (check.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'applied_%' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
      assert.deepEqual(tables, ['applied_service_specs', 'applied_services']);
      assert.equal((check.prepare('SELECT COUNT(*) AS n FROM applied_service_specs').get() as { n: number }).n, 0, 'the specs went with their application');
    } finally {
      check.close();
    }
  });
});
