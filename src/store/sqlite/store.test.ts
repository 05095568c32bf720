// Runs the store contract against SQLite files in temp dirs, plus SQLite-only checks: pragmas,
// bounded history, timestamps, a failure inside commitDeployed or saveAppliedServices leaving the
// old state, and several processes sharing one new file.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqlite } from './driver.js';
import { storeContract, newApp, sampleDeployed, sampleSpec } from '../contract.js';
import type { DeployedState } from '../../core/desired.js';
import { isZvError } from '../../errors/registry.js';
import { openSqliteStore, type SqliteStore } from './store.js';

const Database = sqlite();

storeContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zv-store-'));
  const file = join(dir, 'state', 'zerverless.db');
  const opened: SqliteStore[] = [openSqliteStore(file)];
  return {
    store: opened[0]!,
    reopen: async () => {
      const s = openSqliteStore(file);
      opened.push(s);
      return s;
    },
    cleanup: async () => {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'zv-sqlite-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });
  let n = 0;
  const fresh = (opts?: Parameters<typeof openSqliteStore>[1]): { file: string; store: SqliteStore } => {
    const file = join(dir, `case${n++}`, 'nested', 'zv.db');
    return { file, store: openSqliteStore(file, opts) };
  };

  it('creates the parent directory and uses WAL with foreign keys on', async () => {
    const { file, store } = fresh();
    assert.ok(existsSync(file));
    await store.createApp(newApp('web'));
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
    // foreign keys are per connection: a sync for a missing application is refused
    await assert.rejects(store.startSync(999, '2026-01-15T10:00:00.000Z'), (e: unknown) => isZvError(e, 'APP_NOT_FOUND'));
    await store.close();
    await store.close(); // idempotent
  });

  it('keeps only the last historyLimit syncs per application', async () => {
    const { store } = fresh({ historyLimit: 3 });
    const a = await store.createApp(newApp('a'));
    const b = await store.createApp(newApp('b'));
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) ids.push(await store.startSync(a.id, `2026-01-15T10:00:0${i}.000Z`));
    await store.startSync(b.id, '2026-01-15T10:00:00.000Z');
    assert.deepEqual((await store.listSyncs(a.id)).map((s) => s.id), ids.slice(3).reverse());
    assert.equal((await store.listSyncs(b.id)).length, 1);
    await store.close();
  });

  it('stores timestamps as ISO 8601 UTC and refuses invalid ones', async () => {
    const { store } = fresh();
    const app = await store.createApp(newApp('web'));
    const s = await store.startSync(app.id, '2026-01-15T12:30:00+02:00');
    assert.equal((await store.listSyncs(app.id))[0]?.startedAt, '2026-01-15T10:30:00.000Z');
    await assert.rejects(store.finishSync(s, { commit: null, finishedAt: 'yesterday', result: 'error', message: '', plan: null }, {}), /not a valid timestamp/);
    await assert.rejects(store.finishSync(s + 100, { commit: null, finishedAt: '2026-01-15T10:31:00Z', result: 'error', message: '', plan: null }, {}), /no sync record/);
    await assert.rejects(store.finishSync(s, { commit: null, finishedAt: '2026-01-15T10:31:00Z', result: 'error', message: '', plan: null }, { lastSync: 'soon' }), /lastSync is not a valid timestamp/);
    const rec = await store.finishSync(s, { commit: null, finishedAt: '2026-01-15T12:31:00+02:00', result: 'error', message: '', plan: null }, { lastSync: '2026-01-15T12:31:00+02:00' });
    assert.equal(rec.lastSync, '2026-01-15T10:31:00.000Z');
    assert.equal((await store.listSyncs(app.id))[0]?.finishedAt, '2026-01-15T10:31:00.000Z');
    await store.close();
  });

  it('leaves the old applied services when saveAppliedServices fails half way', async () => {
    const { store } = fresh();
    const app = await store.createApp(newApp('web'));
    const good = { commit: 'a'.repeat(40), specs: [sampleSpec('api'), sampleSpec('db')] };
    await store.saveAppliedServices(app.id, good);
    // the first spec is written inside the transaction when the second one cannot be
    const big = sampleSpec('zz');
    (big.env as Record<string, unknown>).BIG = 10n;
    await assert.rejects(store.saveAppliedServices(app.id, { commit: 'b'.repeat(40), specs: [sampleSpec('new'), big] }), /cannot store the applied spec of service zz/);
    assert.deepEqual(await store.getAppliedServices(app.id), good);
    await assert.rejects(store.saveAppliedServices(app.id, { commit: 'b'.repeat(40), specs: [sampleSpec('api'), sampleSpec('api')] }), /two applied service specs are named api/);
    assert.deepEqual(await store.getAppliedServices(app.id), good);
    await store.close();
  });

  it('leaves the old state when commitDeployed fails half way (nothing partial is stored)', async () => {
    const { file, store } = fresh();
    const app = await store.createApp(newApp('web'));
    const good = sampleDeployed();
    const synced = await store.commitDeployed(app.id, good);

    // the second function's env cannot be serialised: the deployed row and the first function
    // are already written inside the transaction when it throws
    const bad = sampleDeployed('c'.repeat(40));
    const second = bad.functions[1]!;
    (second.env as Record<string, unknown>).BIG = 10n;
    bad.functions.push({ ...second, path: '/api/new' });
    bad.warnings = ['new'];
    await assert.rejects(store.commitDeployed(app.id, bad as DeployedState), /cannot store env of function \/api\/js/);
    const check = async (st: SqliteStore): Promise<void> => {
      assert.deepEqual(await st.getDeployed(app.id), good);
      assert.deepEqual(await st.getAppById(app.id), synced);
    };
    await check(store);
    await store.close();
    const again = openSqliteStore(file);
    await check(again);
    await again.close();
  });

  it('lists the blob hashes that deployed static sites use', async () => {
    const { store } = fresh();
    const a = await store.createApp(newApp('a'));
    const b = await store.createApp(newApp('b'));
    const d = sampleDeployed();
    for (const app of [a, b]) await store.commitDeployed(app.id, d);
    assert.deepEqual([...(await store.liveBlobHashes())].sort(), ['1'.repeat(64), '2'.repeat(64)]);
    await store.deleteApp(a.id);
    assert.equal((await store.liveBlobHashes()).size, 2);
    await store.deleteApp(b.id);
    assert.equal((await store.liveBlobHashes()).size, 0);
    await store.close();
  });

  it('lets several processes open one new file at once and keeps names unique across them', async () => {
    const file = join(dir, `case${n++}`, 'shared.db');
    const script = `
      const [mod, file, id] = process.argv.slice(-3);
      const { openSqliteStore } = await import(mod);
      const s = openSqliteStore(file);
      const src = { repoURL: 'https://git.example.com/x.git', branch: 'main', path: '' };
      let won = 0, lost = 0;
      for (let i = 0; i < 25; i++) {
        await s.createApp({ name: 'own-' + id + '-' + i, namespace: 'ns', source: src });
        try { await s.createApp({ name: 'race-' + i, namespace: 'ns', source: src }); won++; }
        catch (e) { if (e.code === 'APP_EXISTS') lost++; else throw e; }
      }
      await s.close();
      process.stdout.write(JSON.stringify({ won, lost }));
    `;
    const mod = new URL('./store.ts', import.meta.url).href;
    const run = (id: number): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', mod, file, String(id)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      p.on('exit', (code) => resolve({ code, out, err }));
    });
    const results = await Promise.all([0, 1, 2, 3].map(run));
    let won = 0;
    let lost = 0;
    for (const r of results) {
      assert.equal(r.code, 0, r.err);
      const o = JSON.parse(r.out) as { won: number; lost: number };
      won += o.won;
      lost += o.lost;
    }
    assert.equal(won, 25, 'each race name is created exactly once');
    assert.equal(lost, 75);
    const store = openSqliteStore(file);
    assert.equal((await store.listApps({})).total, 4 * 25 + 25);
    await store.close();
  });
});
