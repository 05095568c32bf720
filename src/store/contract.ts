// The shared contract suite every Store (SQLite now, PostgreSQL later) must pass. A store's test
// file calls `storeContract(name, open)`; `open` gives a fresh, empty store, `reopen` a new
// connection to the same data (it may be called while the first store is still open), and
// `cleanup` closes whatever is still open (stores the suite already closed included) and removes
// the data. Each test opens its own store.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../errors/registry.js';
import type { DeployedState } from '../core/desired.js';
import { planApplication } from '../core/plan/index.js';
import type { ServiceSpec } from '../core/services/types.js';
import type { NewApp, NewCredential, Store } from './types.js';

export interface OpenedStore {
  store: Store;
  reopen: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

const SHA_A = 'a'.repeat(40);
const SHA_B = 'b'.repeat(40);
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function newApp(name: string, namespace = 'team', path = ''): NewApp {
  return { name, namespace, source: { repoURL: `https://git.example.com/${namespace}/${name}.git`, branch: 'main', path } };
}

/** A deployed state using every field of the model, optional ones included. */
export function sampleDeployed(commit = SHA_A): DeployedState {
  return {
    commit,
    functions: [
      { path: '/api/hello', runtime: 'lua', code: 'function handle(req)\n  return {status=200, body="hi ✓"}\nend\n', filename: 'zerverless.yaml', lineOffset: 12, timeoutMs: 30000, memoryMb: 128, env: {}, hash: 'h1' },
      { path: '/api/js', runtime: 'js', language: 'typescript', code: "export default { fetch: () => new Response('x') };\n", filename: 'handlers/hello.ts', timeoutMs: 1500, memoryMb: 64, env: { GREETING: 'hé "quoted"', EMPTY: '' },
        // envFrom: stored as the committed ciphertext and keyed digests, never the values
        secrets: [{ file: 'secrets/prod.env.age', data: Buffer.from('age-encryption.org/v1\n…').toString('base64'), digests: { DB_PASSWORD: '5'.repeat(32) } }],
        hash: 'h2' },
      {
        path: '/api/docker', runtime: 'docker', code: 'FROM node:20\n', filename: 'services/api/Dockerfile', timeoutMs: 30000, memoryMb: 256, env: { A: '1' }, port: 9090,
        build: { dockerfile: 'services/api/Dockerfile', context: 'services/api', contextHash: '3'.repeat(64), capabilities: ['CHOWN', 'NET_BIND_SERVICE'] },
        hash: 'h3',
      },
      // a docker function with no capabilities, its Dockerfile outside the context
      {
        path: '/api/worker', runtime: 'docker', code: 'FROM busybox\n', filename: 'docker/worker.Dockerfile', timeoutMs: 5000, memoryMb: 64, env: {}, port: 8080,
        build: { dockerfile: 'docker/worker.Dockerfile', context: '.', contextHash: '4'.repeat(64), capabilities: [] },
        hash: 'h4',
      },
    ],
    static: {
      dir: './static',
      files: [
        { path: 'index.html', hash: '1'.repeat(64), size: 120 },
        { path: 'css/site.css', hash: '2'.repeat(64), size: 0 },
      ],
    },
    warnings: ["spec.source.branch 'dev' differs from the registered branch 'main'"],
  };
}

/** A service spec using every field of the model (optional ones set, nulls where allowed). */
export function sampleSpec(name: string, more: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    version: '1.2.3',
    source: { type: 'git', url: 'https://git.example.com/team/svc.git', ref: 'v1.2.3' },
    env: { POOL_SIZE: '10', GREETING: 'hé "quoted"' },
    health: { type: 'http', path: '/health', interval: 500, timeout: 2000 },
    dependsOn: [],
    route: `/${name}`,
    port: null,
    file: `apps/${name}/app.config`,
    ...more,
  };
}

/** What a good sync writes: the commit step, then the finish step (the reconciler's order). */
async function goodSync(store: Store, appId: number, deployed: DeployedState, at: { startedAt: string; finishedAt: string }, status: Parameters<Store['finishSync']>[2] = { status: 'synced', message: '' }): Promise<number> {
  const s = await store.startSync(appId, at.startedAt);
  await store.commitDeployed(appId, deployed);
  await store.finishSync(s, { commit: deployed.commit, finishedAt: at.finishedAt, result: 'success', message: '', plan: planApplication({ state: deployed }, { state: null }) }, { lastSync: at.finishedAt, ...status });
  return s;
}

export function storeContract(name: string, open: () => Promise<OpenedStore>): void {
  describe(`store contract: ${name}`, () => {
    const withStore = async (fn: (o: OpenedStore) => Promise<void>): Promise<void> => {
      const o = await open();
      try {
        await fn(o);
      } finally {
        await o.cleanup();
      }
    };

    it('creates an application and reads it back by name and by id', () => withStore(async ({ store }) => {
      const before = Date.now();
      const app = await store.createApp(newApp('web', 'team', 'deploy'));
      assert.equal(typeof app.id, 'number');
      assert.equal(app.name, 'web');
      assert.equal(app.namespace, 'team');
      assert.deepEqual(app.source, { repoURL: 'https://git.example.com/team/web.git', branch: 'main', path: 'deploy' });
      assert.equal(app.status, 'pending');
      assert.equal(app.message, '');
      assert.equal(app.commit, null);
      assert.equal(app.lastSync, null);
      assert.deepEqual(app.warnings, []);
      assert.match(app.createdAt, ISO);
      assert.ok(Date.parse(app.createdAt) >= before - 1000);
      assert.deepEqual(await store.getApp('team', 'web'), app);
      assert.deepEqual(await store.getAppById(app.id), app);
      assert.equal(await store.getApp('team', 'nope'), null);
      assert.equal(await store.getApp('other', 'web'), null);
      assert.equal(await store.getAppById(app.id + 1000), null);
    }));

    it('keeps an application\'s sealed webhook secret as given, and none when none was given', () => withStore(async ({ store }) => {
      const a = await store.createApp({ ...newApp('web', 'team'), webhookSecret: 'v1:sealed-value' });
      assert.equal((await store.getApp('team', 'web'))?.webhookSecret, 'v1:sealed-value');
      assert.equal((await store.getAppById(a.id))?.webhookSecret, 'v1:sealed-value');
      const b = await store.createApp(newApp('api', 'team'));
      assert.equal('webhookSecret' in b, false);
    }));

    it('refuses a taken (namespace, name) with APP_EXISTS', () => withStore(async ({ store }) => {
      await store.createApp(newApp('web', 'team'));
      await assert.rejects(store.createApp(newApp('web', 'team')), (e: unknown) => {
        assert.ok(isZvError(e, 'APP_EXISTS'), `expected APP_EXISTS, got ${String(e)}`);
        assert.equal(e.status, 409);
        assert.equal(e.message, "application 'web' already exists in namespace 'team'");
        return true;
      });
      assert.equal((await store.listApps({})).total, 1);
    }));

    it('allows one name in two namespaces and finds both by name', () => withStore(async ({ store }) => {
      const b = await store.createApp(newApp('web', 'zeta'));
      const a = await store.createApp(newApp('web', 'alpha'));
      await store.createApp(newApp('other', 'alpha'));
      const found = await store.findAppsByName('web');
      assert.deepEqual(found.map((x) => [x.namespace, x.id]), [['alpha', a.id], ['zeta', b.id]]);
      assert.deepEqual(await store.findAppsByName('missing'), []);
    }));

    it('lists ordered by namespace then name, with limit, offset, total and a namespace filter', () => withStore(async ({ store }) => {
      for (const [n, ns] of [['c', 'b'], ['a', 'b'], ['z', 'a'], ['b', 'b'], ['m', 'c']] as const) await store.createApp(newApp(n, ns));
      const all = await store.listApps({});
      assert.equal(all.total, 5);
      assert.deepEqual(all.apps.map((x) => `${x.namespace}/${x.name}`), ['a/z', 'b/a', 'b/b', 'b/c', 'c/m']);
      const page = await store.listApps({ limit: 2, offset: 1 });
      assert.equal(page.total, 5);
      assert.deepEqual(page.apps.map((x) => `${x.namespace}/${x.name}`), ['b/a', 'b/b']);
      const last = await store.listApps({ limit: 2, offset: 4 });
      assert.deepEqual(last.apps.map((x) => x.name), ['m']);
      const past = await store.listApps({ limit: 10, offset: 50 });
      assert.deepEqual(past, { apps: [], total: 5 });
      const ns = await store.listApps({ namespace: 'b', limit: 2 });
      assert.equal(ns.total, 3);
      assert.deepEqual(ns.apps.map((x) => x.name), ['a', 'b']);
      assert.deepEqual(await store.listApps({ namespace: 'nobody' }), { apps: [], total: 0 });
      assert.deepEqual((await store.listApps({ limit: 0 })).apps, []);
    }));

    it('updates status fields and keeps the rest', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      const up = await store.updateApp(app.id, { status: 'error', message: 'zerverless.yaml:3:1: bad', warnings: ['w1', 'w2'] });
      assert.equal(up.status, 'error');
      assert.equal(up.message, 'zerverless.yaml:3:1: bad');
      assert.deepEqual(up.warnings, ['w1', 'w2']);
      assert.deepEqual(up.source, app.source);
      assert.equal(up.createdAt, app.createdAt);
      const up2 = await store.updateApp(app.id, { commit: SHA_A, lastSync: '2026-01-15T10:30:00.000Z' });
      assert.equal(up2.status, 'error');
      assert.equal(up2.commit, SHA_A);
      assert.equal(up2.lastSync, '2026-01-15T10:30:00.000Z');
      assert.deepEqual(await store.getAppById(app.id), up2);
      const up3 = await store.updateApp(app.id, { commit: null, lastSync: null });
      assert.equal(up3.commit, null);
      assert.equal(up3.lastSync, null);
      await assert.rejects(store.updateApp(app.id + 1000, { status: 'synced' }), (e: unknown) => isZvError(e, 'APP_NOT_FOUND'));
    }));

    it('records syncs and lists them newest first', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      const other = await store.createApp(newApp('other'));
      const s1 = await store.startSync(app.id, '2026-01-15T10:00:00.000Z');
      const plan = planApplication({ state: sampleDeployed() }, { state: null });
      await store.finishSync(s1, { commit: SHA_A, finishedAt: '2026-01-15T10:00:05.000Z', result: 'success', message: '', plan }, {});
      const s2 = await store.startSync(app.id, '2026-01-15T11:00:00.000Z');
      await store.finishSync(s2, { commit: null, finishedAt: '2026-01-15T11:00:01.000Z', result: 'error', message: 'GIT_ERROR: unreachable', plan: null }, {});
      const s3 = await store.startSync(app.id, '2026-01-15T12:00:00.000Z');
      await store.startSync(other.id, '2026-01-15T12:00:00.000Z');

      const syncs = await store.listSyncs(app.id);
      assert.deepEqual(syncs.map((s) => s.id), [s3, s2, s1]);
      assert.deepEqual(syncs[0], { id: s3, appId: app.id, commit: null, startedAt: '2026-01-15T12:00:00.000Z', finishedAt: null, result: 'running', message: '', plan: null, trigger: 'poll', actor: null });
      assert.deepEqual(syncs[1], { id: s2, appId: app.id, commit: null, startedAt: '2026-01-15T11:00:00.000Z', finishedAt: '2026-01-15T11:00:01.000Z', result: 'error', message: 'GIT_ERROR: unreachable', plan: null, trigger: 'poll', actor: null });
      assert.deepEqual(syncs[2], { id: s1, appId: app.id, commit: SHA_A, startedAt: '2026-01-15T10:00:00.000Z', finishedAt: '2026-01-15T10:00:05.000Z', result: 'success', message: '', plan, trigger: 'poll', actor: null });
      assert.deepEqual((await store.listSyncs(app.id, 2)).map((s) => s.id), [s3, s2]);
      assert.equal((await store.listSyncs(other.id)).length, 1);
      assert.deepEqual(await store.listSyncs(app.id + 1000), []);
    }));

    it('has no deployed state before the first good sync', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      assert.equal(await store.getDeployed(app.id), null);
      const s = await store.startSync(app.id, '2026-01-15T10:00:00.000Z');
      await store.finishSync(s, { commit: null, finishedAt: '2026-01-15T10:00:01.000Z', result: 'error', message: 'boom', plan: null }, { status: 'error', message: 'boom' });
      assert.equal(await store.getDeployed(app.id), null);
    }));

    it('commitDeployed stores the deployed state and sets the commit and warnings, nothing else', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      await store.updateApp(app.id, { status: 'syncing', message: 'keep me', lastSync: '2026-01-15T09:00:00.000Z' });
      const deployed = sampleDeployed();
      const rec = await store.commitDeployed(app.id, deployed);
      assert.equal(rec.commit, SHA_A);
      assert.deepEqual(rec.warnings, deployed.warnings);
      assert.equal(rec.status, 'syncing', 'the status is the finish step\'s');
      assert.equal(rec.message, 'keep me');
      assert.equal(rec.lastSync, '2026-01-15T09:00:00.000Z');
      assert.deepEqual(await store.getAppById(app.id), rec);
      assert.deepEqual(await store.getDeployed(app.id), deployed);

      // the next commit replaces the state: a pruned function and file are gone, warnings cleared
      const next: DeployedState = { ...sampleDeployed(SHA_B), functions: [sampleDeployed().functions[1]!], static: null, warnings: [] };
      const rec2 = await store.commitDeployed(app.id, next);
      assert.equal(rec2.commit, SHA_B);
      assert.deepEqual(rec2.warnings, []);
      assert.deepEqual(await store.getDeployed(app.id), next);
      await assert.rejects(store.commitDeployed(app.id + 1000, next), (e: unknown) => isZvError(e, 'APP_NOT_FOUND'));
      assert.equal(await store.getDeployed(app.id + 1000), null);
    }));

    it('commitDeployed keeps static files\' content ids and folder ids, and each commit\'s files exactly', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('site'));
      const file = (path: string, n: number, oid?: string) => ({ path, hash: String(n).repeat(64), size: n, ...(oid ? { oid } : {}) });
      const files = [file('a.html', 1, 'o1'), file('css/x.css', 2, 'o2'), file('index.html', 3), file('z/deep.txt', 4, 'o4')];
      const state = (commit: string, list: typeof files, dirs?: Record<string, string>): DeployedState =>
        ({ commit, functions: [], static: { dir: 'public', files: list, ...(dirs ? { dirs } : {}) }, warnings: [] });
      const one = state(SHA_A, files, { '': 't0', css: 't1', z: 't2' });
      await store.commitDeployed(app.id, one);
      assert.deepEqual(await store.getDeployed(app.id), one);
      // One file changed, one added in the middle, one removed, the folder ids gone (a site with links).
      const two = state(SHA_B, [file('a.html', 1, 'o1'), file('b.html', 5, 'o5'), file('css/x.css', 6, 'o6'), file('z/deep.txt', 4, 'o4')]);
      await store.commitDeployed(app.id, two);
      assert.deepEqual(await store.getDeployed(app.id), two);
      // The same list again (the reader hands back the deployed array when nothing changed).
      const same = await store.getDeployed(app.id);
      await store.commitDeployed(app.id, { ...same!, commit: SHA_A });
      assert.deepEqual(await store.getDeployed(app.id), { ...two, commit: SHA_A });
      // A list in another order than by path keeps its order.
      const unordered = state(SHA_B, [file('z/deep.txt', 4, 'o4'), file('a.html', 1, 'o1')]);
      await store.commitDeployed(app.id, unordered);
      assert.deepEqual(await store.getDeployed(app.id), unordered);
      await store.commitDeployed(app.id, one);
      assert.deepEqual(await store.getDeployed(app.id), one);
    }));

    it('finishSync closes the record and patches the status together, and returns the application', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      const other = await store.createApp(newApp('other'));
      const deployed = sampleDeployed();
      const plan = planApplication({ state: deployed }, { state: null });
      const s = await store.startSync(app.id, '2026-01-15T10:00:00.000Z', { trigger: 'api', actor: 'ci' });
      await store.commitDeployed(app.id, deployed);
      const rec = await store.finishSync(s, { commit: SHA_A, finishedAt: '2026-01-15T10:00:03.000Z', result: 'success', message: '', plan },
        { status: 'synced', message: '', lastSync: '2026-01-15T10:00:03.000Z' });
      assert.equal(rec.id, app.id);
      assert.equal(rec.status, 'synced');
      assert.equal(rec.commit, SHA_A);
      assert.equal(rec.lastSync, '2026-01-15T10:00:03.000Z');
      assert.deepEqual(rec.warnings, deployed.warnings);
      assert.deepEqual(await store.getAppById(app.id), rec);
      const [sync] = await store.listSyncs(app.id);
      assert.deepEqual(sync, { id: s, appId: app.id, commit: SHA_A, startedAt: '2026-01-15T10:00:00.000Z', finishedAt: '2026-01-15T10:00:03.000Z', result: 'success', message: '', plan, trigger: 'api', actor: 'ci' });
      assert.equal((await store.getAppById(other.id))?.status, 'pending', 'only the sync\'s own application is patched');

      // a failed sync: the record says why, the status too; the served commit stays
      const s2 = await store.startSync(app.id, '2026-01-15T11:00:00.000Z');
      const failed = await store.finishSync(s2, { commit: SHA_B, finishedAt: '2026-01-15T11:00:01.000Z', result: 'error', message: 'MANIFEST_INVALID: bad', plan: null },
        { status: 'error', message: 'MANIFEST_INVALID: bad', lastSync: '2026-01-15T11:00:01.000Z' });
      assert.equal(failed.status, 'error');
      assert.equal(failed.message, 'MANIFEST_INVALID: bad');
      assert.equal(failed.commit, SHA_A);
      assert.deepEqual(await store.getAppById(app.id), failed);
      assert.equal((await store.listSyncs(app.id))[0]?.result, 'error');
      assert.deepEqual(await store.getDeployed(app.id), deployed);

      // an empty patch closes the record only
      const s3 = await store.startSync(app.id, '2026-01-15T12:00:00.000Z');
      assert.deepEqual(await store.finishSync(s3, { commit: null, finishedAt: '2026-01-15T12:00:01.000Z', result: 'error', message: 'stopped', plan: null }, {}), failed);
      assert.equal((await store.listSyncs(app.id))[0]?.message, 'stopped');
    }));

    it('finishSync stores neither the record nor the status when either cannot be stored', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      const s = await store.startSync(app.id, '2026-01-15T10:00:00.000Z');
      const end = { commit: SHA_A, finishedAt: '2026-01-15T10:00:01.000Z', result: 'error' as const, message: 'x', plan: null };
      await assert.rejects(store.finishSync(s, end, { status: 'error', lastSync: 'not a time' }));
      await assert.rejects(store.finishSync(s, { ...end, finishedAt: 'not a time' }, { status: 'error', message: 'x' }));
      assert.deepEqual(await store.getAppById(app.id), app);
      const [sync] = await store.listSyncs(app.id);
      assert.equal(sync?.result, 'running');
      assert.equal(sync?.finishedAt, null);
      await assert.rejects(store.finishSync(s + 1000, end, { status: 'error' }));
      assert.deepEqual(await store.getAppById(app.id), app);
    }));

    it('has no applied services before they are saved; saves, replaces and reads them back sorted by name', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      const other = await store.createApp(newApp('other'));
      assert.equal(await store.getAppliedServices(app.id), null);
      assert.equal(await store.getAppliedServices(app.id + 1000), null);
      const db = sampleSpec('db', { health: { type: 'tcp', interval: 1000, timeout: 500 }, route: null, port: 5432, source: { type: 'npm' } });
      const api = sampleSpec('api', { dependsOn: ['db'], source: { type: 'release', url: 'https://example.com/api.tgz', sha256: 'f'.repeat(64) } });
      const worker = sampleSpec('worker', { health: null, route: null, env: {}, source: { type: 'npm', package: '@team/worker' } });
      await store.saveAppliedServices(app.id, { commit: SHA_A, specs: [worker, db, api] });
      assert.deepEqual(await store.getAppliedServices(app.id), { commit: SHA_A, specs: [api, db, worker] });
      assert.equal(await store.getAppliedServices(other.id), null, 'another application has none');

      // replaced, not merged: a removed service is gone
      const api2 = { ...api, version: '2.0.0', dependsOn: [] };
      await store.saveAppliedServices(app.id, { commit: null, specs: [api2] });
      assert.deepEqual(await store.getAppliedServices(app.id), { commit: null, specs: [api2] });
      // saved with no specs is not "never saved"
      await store.saveAppliedServices(app.id, { commit: SHA_B, specs: [] });
      assert.deepEqual(await store.getAppliedServices(app.id), { commit: SHA_B, specs: [] });
      // the application's record is not touched
      assert.deepEqual(await store.getAppById(app.id), app);
    }));

    it('refuses applied services for an unknown application with APP_NOT_FOUND', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      await assert.rejects(store.saveAppliedServices(app.id + 1000, { commit: SHA_A, specs: [sampleSpec('api')] }), (e: unknown) => {
        assert.ok(isZvError(e, 'APP_NOT_FOUND'), `expected APP_NOT_FOUND, got ${String(e)}`);
        assert.equal(e.status, 404);
        return true;
      });
      assert.equal(await store.getAppliedServices(app.id + 1000), null);
      await store.deleteApp(app.id);
      await assert.rejects(store.saveAppliedServices(app.id, { commit: SHA_A, specs: [] }), (e: unknown) => isZvError(e, 'APP_NOT_FOUND'));
    }));

    it('keeps everything after a restart (a new connection to the same data)', async () => {
      const o = await open();
      let again: Store | undefined;
      try {
        const { store } = o;
        const app = await store.createApp(newApp('web', 'team', 'sub'));
        await store.createApp(newApp('web', 'other'));
        const deployed = sampleDeployed();
        const plan = planApplication({ state: deployed }, { state: null });
        const failed = await store.startSync(app.id, '2026-01-15T09:00:00.000Z');
        await store.finishSync(failed, { commit: null, finishedAt: '2026-01-15T09:00:01.000Z', result: 'error', message: 'first try failed', plan: null }, { status: 'error', message: 'first try failed' });
        const s = await store.startSync(app.id, '2026-01-15T10:00:00.000Z');
        await store.commitDeployed(app.id, deployed);
        const rec = await store.finishSync(s, { commit: SHA_A, finishedAt: '2026-01-15T10:00:03.000Z', result: 'success', message: '', plan }, { status: 'synced', message: '', lastSync: '2026-01-15T10:00:03.000Z' });
        const applied = { commit: SHA_A, specs: [sampleSpec('api', { dependsOn: ['db'] }), sampleSpec('db')] };
        await store.saveAppliedServices(app.id, applied);
        const syncs = await store.listSyncs(app.id);
        const list = await store.listApps({});
        await store.close();

        again = await o.reopen();
        assert.deepEqual(await again.getAppById(app.id), rec);
        assert.deepEqual(await again.getApp('team', 'web'), rec);
        assert.deepEqual(await again.listApps({}), list);
        assert.deepEqual(await again.listSyncs(app.id), syncs);
        assert.deepEqual(await again.getDeployed(app.id), deployed);
        assert.deepEqual(await again.getAppliedServices(app.id), applied);
        // and it keeps working: ids are not reused, names stay taken
        await assert.rejects(again.createApp(newApp('web', 'team')), (e: unknown) => isZvError(e, 'APP_EXISTS'));
        const fresh = await again.createApp(newApp('new'));
        assert.ok(fresh.id > app.id);
      } finally {
        await again?.close();
        await o.cleanup();
      }
    });

    it('deleteApp removes the application, its history, its deployed state and its applied services', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      const keep = await store.createApp(newApp('keep'));
      for (const a of [app, keep]) {
        await goodSync(store, a.id, sampleDeployed(), { startedAt: '2026-01-15T10:00:00.000Z', finishedAt: '2026-01-15T10:00:01.000Z' });
        await store.saveAppliedServices(a.id, { commit: SHA_A, specs: [sampleSpec('api')] });
      }
      await store.startSync(app.id, '2026-01-15T11:00:00.000Z');
      await store.deleteApp(app.id);
      assert.equal(await store.getAppById(app.id), null);
      assert.equal(await store.getApp('team', 'web'), null);
      assert.deepEqual(await store.listSyncs(app.id), []);
      assert.equal(await store.getDeployed(app.id), null);
      assert.equal(await store.getAppliedServices(app.id), null);
      assert.deepEqual((await store.listApps({})).apps.map((a) => a.name), ['keep']);
      // the other application is untouched
      assert.deepEqual(await store.getDeployed(keep.id), sampleDeployed());
      assert.deepEqual(await store.getAppliedServices(keep.id), { commit: SHA_A, specs: [sampleSpec('api')] });
      assert.equal((await store.listSyncs(keep.id)).length, 1);
      // the name is free again, and the new application starts from nothing
      const re = await store.createApp(newApp('web'));
      assert.notEqual(re.id, app.id);
      assert.equal(re.status, 'pending');
      assert.equal(await store.getDeployed(re.id), null);
      assert.equal(await store.getAppliedServices(re.id), null);
      assert.deepEqual(await store.listSyncs(re.id), []);
    }));

    it('lets exactly one of several concurrent createApp calls for one name win', async () => {
      const o = await open();
      let second: Store | undefined;
      try {
        second = await o.reopen();
        const stores = [o.store, second];
        const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => stores[i % 2]!.createApp(newApp('race'))));
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        assert.equal(won.length, 1);
        assert.equal(lost.length, 7);
        for (const r of lost) assert.ok(isZvError(r.reason, 'APP_EXISTS'), `expected APP_EXISTS, got ${String(r.reason)}`);
        assert.equal((await o.store.listApps({})).total, 1);
        assert.equal((await second.findAppsByName('race')).length, 1);
      } finally {
        await second?.close();
        await o.cleanup();
      }
    });

    it('stores tokens by hash only, finds them by hash, replaces the bootstrap one, revokes', () => withStore(async ({ store }) => {
      const base = { role: 'deployer' as const, namespaces: ['a', 'b'], services: false, createdAt: '2026-01-15T10:00:00.000Z', expiresAt: null, createdBy: 'admin' };
      await store.putToken({ id: 't1', name: 'ci', ...base }, 'h'.repeat(64));
      await store.putToken({ id: 't2', name: 'reader', ...base, role: 'reader', namespaces: null, expiresAt: '2027-01-01T00:00:00.000Z' }, 'g'.repeat(64));
      assert.deepEqual(await store.findTokenByHash('h'.repeat(64)), { id: 't1', name: 'ci', ...base });
      assert.equal((await store.findTokenByHash('g'.repeat(64)))?.namespaces, null);
      assert.equal(await store.findTokenByHash('x'.repeat(64)), null);
      assert.equal(await store.countTokens(), 2);
      await store.putToken({ id: 't1', name: 'ci', ...base }, 'i'.repeat(64));
      assert.equal(await store.findTokenByHash('h'.repeat(64)), null, 'the old hash no longer opens anything');
      assert.equal((await store.findTokenByHash('i'.repeat(64)))?.id, 't1');
      assert.deepEqual((await store.listTokens()).map((t) => t.id), ['t1', 't2']);
      assert.equal(JSON.stringify(await store.listTokens()).includes('i'.repeat(64)), false, 'listings never carry the hash');
      assert.equal(await store.deleteToken('t1'), true);
      assert.equal(await store.deleteToken('t1'), false);
      assert.equal(await store.findTokenByHash('i'.repeat(64)), null);
    }));

    it('keeps who registered an application, whether it may deploy services, its verify policy, and who started each sync', () => withStore(async ({ store }) => {
      const verify = { type: 'ssh' as const, keys: ['ssh-ed25519 AAAA test'] };
      const a = await store.createApp({ ...newApp('web', 'a'), source: { ...newApp('web', 'a').source, verify }, allowServices: false, createdBy: 'ci' });
      assert.equal(a.allowServices, false);
      assert.equal(a.createdBy, 'ci');
      assert.deepEqual(a.source.verify, verify);
      const b = await store.createApp(newApp('web', 'b'));
      assert.equal(b.allowServices, true, 'the default (server --repo, library) may deploy services');
      assert.equal(b.createdBy, null);
      const s = await store.startSync(a.id, '2026-01-15T10:00:00.000Z', { trigger: 'api', actor: 'ci' });
      const [rec] = await store.listSyncs(a.id);
      assert.equal(rec?.id, s);
      assert.equal(rec?.trigger, 'api');
      assert.equal(rec?.actor, 'ci');
      await store.createApp(newApp('other', 'c'));
      const within = await store.listApps({ namespaces: ['a', 'c'] });
      assert.deepEqual(within.apps.map((x) => x.namespace), ['a', 'c']);
      assert.equal(within.total, 2);
      assert.equal((await store.listApps({ namespaces: [] })).total, 0);
      assert.equal((await store.listApps({ namespaces: ['a'], namespace: 'b' })).total, 0);
    }));

    it('suspends and resumes an application (kept across connections); other status fields stay', () => withStore(async ({ store, reopen }) => {
      const app = await store.createApp(newApp('web'));
      assert.equal(app.suspended, undefined, 'absent when not suspended');
      await store.updateApp(app.id, { status: 'synced', message: '' });
      const s = await store.updateApp(app.id, { suspended: { at: '2026-01-15T10:00:00.000Z', by: 'ops', reason: 'incident 42' } });
      assert.deepEqual(s.suspended, { at: '2026-01-15T10:00:00.000Z', by: 'ops', reason: 'incident 42' });
      assert.equal(s.status, 'synced');
      const other = await reopen();
      assert.deepEqual((await other.getAppById(app.id))?.suspended, s.suspended);
      assert.deepEqual((await other.listApps({})).apps[0]?.suspended, s.suspended);
      const rb = await store.updateApp(app.id, { suspended: { at: '2026-01-15T10:00:01.000Z', by: null, reason: 'rolled back', untilSync: true } });
      assert.equal(rb.suspended?.untilSync, true);
      const sync = await store.startSync(app.id, '2026-01-15T10:00:02.000Z');
      const after = await store.finishSync(sync, { commit: SHA_A, finishedAt: '2026-01-15T10:00:03.000Z', result: 'success', message: '', plan: null }, { status: 'synced', suspended: null });
      assert.equal(after.suspended, undefined, 'a finish may end it');
      const resumed = await store.updateApp(app.id, { suspended: { at: '2026-01-15T10:00:04.000Z', by: 'ops', reason: '' } });
      assert.ok(resumed.suspended);
      assert.equal((await store.updateApp(app.id, { suspended: null })).suspended, undefined);
      await other.close();
    }));

    it('keeps notification targets of an application and replaces them', () => withStore(async ({ store }) => {
      const targets = [{ url: 'https://hooks.example.com/a', format: 'json' as const, events: ['error' as const, 'recovered' as const], secret: 'sealed:abc' }, { url: 'http://chat.example.com/x', format: 'slack' as const }];
      const app = await store.createApp({ ...newApp('web'), notify: targets });
      assert.deepEqual(app.notify, targets);
      assert.deepEqual((await store.getAppById(app.id))?.notify, targets);
      assert.equal((await store.createApp(newApp('plain'))).notify, undefined, 'absent when none');
      const one = await store.setNotify(app.id, [targets[1] as (typeof targets)[number]]);
      assert.deepEqual(one.notify, [targets[1]]);
      assert.equal((await store.setNotify(app.id, [])).notify, undefined);
      await assert.rejects(store.setNotify(app.id + 1000, []), (e: unknown) => isZvError(e, 'APP_NOT_FOUND'));
    }));

    it("records the sync's commit message, author and time when given", () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      const info = { message: 'Fix the greeting ✓', author: 'Ada <ada@example.com>', time: '2026-01-15T09:59:00.000Z' };
      const a = await store.startSync(app.id, '2026-01-15T10:00:00.000Z', { trigger: 'rollback', actor: 'ops' });
      await store.finishSync(a, { commit: SHA_A, finishedAt: '2026-01-15T10:00:01.000Z', result: 'success', message: '', plan: null, commitInfo: info }, {});
      const b = await store.startSync(app.id, '2026-01-15T10:00:02.000Z');
      await store.finishSync(b, { commit: SHA_B, finishedAt: '2026-01-15T10:00:03.000Z', result: 'error', message: 'x', plan: null }, {});
      const [second, first] = await store.listSyncs(app.id);
      assert.equal(second?.commitInfo, undefined);
      assert.deepEqual(first?.commitInfo, info);
      assert.equal(first?.trigger, 'rollback');
    }));

    it('keeps the newest revisions with their state, services and commit info; a deployed commit again moves to the front', () => withStore(async ({ store, reopen }) => {
      const app = await store.createApp(newApp('web'));
      const other = await store.createApp(newApp('other'));
      const sha = (i: number): string => i.toString(16).padStart(40, '0');
      // a site of 500 files; each revision changes one file and adds one
      const site = (i: number) => Array.from({ length: 500 + i }, (_, k) => ({
        path: `f/${String(k).padStart(4, '0')}.html`, hash: (k === 7 ? 100_000 + i : k).toString(16).padStart(64, '0'), size: k, ...(k % 2 ? { oid: 'e'.repeat(40) } : {}),
      }));
      const spec = { name: 'svc' } as unknown as ServiceSpec;
      const state = (i: number): DeployedState => ({ ...sampleDeployed(sha(i)), static: { dir: 'public', files: site(i), dirs: { '': `t${i}` } } });
      for (let i = 1; i <= 5; i++) {
        await store.addRevision(app.id, {
          state: state(i), services: i === 2 ? [spec] : null, deployedAt: `2026-01-15T10:00:0${i}.000Z`,
          ...(i === 5 ? { source: { repoURL: 'https://git.example.com/a.git', branch: 'main', path: 'site' } } : {}),
          commitInfo: i === 3 ? null : { message: `commit ${i}`, author: 'Ada <ada@example.com>', time: null }, cause: { trigger: 'poll', actor: null },
        }, 3);
      }
      await store.addRevision(other.id, { state: state(9), services: null, deployedAt: '2026-01-15T11:00:00.000Z', commitInfo: null, cause: { trigger: 'api', actor: 'ci' } }, 3);
      const list = await store.listRevisions(app.id);
      assert.deepEqual(list.map((r) => r.commit), [sha(5), sha(4), sha(3)]);
      assert.deepEqual(list[0]?.counts, { functions: 4, staticFiles: 505, services: 0 });
      assert.deepEqual(list[0]?.commitInfo, { message: 'commit 5', author: 'Ada <ada@example.com>', time: null });
      assert.equal(list[2]?.commitInfo, null);
      assert.equal(list[0]?.deployedAt, '2026-01-15T10:00:05.000Z');
      assert.deepEqual(list[0]?.cause, { trigger: 'poll', actor: null });
      assert.equal(await store.getRevision(app.id, sha(1)), null);
      assert.equal(await store.getRevision(other.id, sha(4)), null);
      const r4 = await store.getRevision(app.id, sha(4));
      assert.deepEqual(r4?.state, state(4));
      assert.equal(r4?.services, null);
      // where a revision was read from, when it was told (a rollback may have to read a file again)
      assert.equal(r4?.source, undefined);
      assert.deepEqual((await store.getRevision(app.id, sha(5)))?.source, { repoURL: 'https://git.example.com/a.git', branch: 'main', path: 'site' });
      // every blob of a kept revision is kept; the dropped revision's own blob (file 7 of revision 1, 2) is not
      const blobs = await store.revisionBlobHashes();
      const own = (i: number): string => (100_000 + i).toString(16).padStart(64, '0');
      for (const i of [3, 4, 5, 9]) assert.ok(blobs.has(own(i)));
      for (const i of [1, 2]) assert.ok(!blobs.has(own(i)));
      // revision 3 again: moved to the front, with its new time and cause
      await store.addRevision(app.id, { state: state(3), services: [spec], deployedAt: '2026-01-15T12:00:00.000Z', commitInfo: null, cause: { trigger: 'rollback', actor: 'ops' } }, 3);
      const again = await store.listRevisions(app.id);
      assert.deepEqual(again.map((r) => r.commit), [sha(3), sha(5), sha(4)]);
      assert.deepEqual(again[0]?.cause, { trigger: 'rollback', actor: 'ops' });
      const s2 = await reopen();
      try {
        assert.deepEqual((await s2.getRevision(app.id, sha(3)))?.services, [spec]);
        assert.deepEqual((await s2.getRevision(app.id, sha(5)))?.state, state(5));
      } finally {
        await s2.close();
      }
      await assert.rejects(store.addRevision(999_999, { state: state(1), services: null, deployedAt: '2026-01-15T12:00:00.000Z', commitInfo: null, cause: { trigger: 'api', actor: null } }, 3),
        (e) => isZvError(e, 'APP_NOT_FOUND'));
      // deleting the application drops its revisions and what only they used
      await store.deleteApp(app.id);
      assert.deepEqual(await store.listRevisions(app.id), []);
      assert.ok(!(await store.revisionBlobHashes()).has(own(5)));
      assert.ok((await store.revisionBlobHashes()).has(own(9)));
    }));

    it('changes the source of an application and keeps everything else', () => withStore(async ({ store }) => {
      const app = await store.createApp(newApp('web'));
      await store.commitDeployed(app.id, sampleDeployed());
      const moved = await store.setSource(app.id, { repoURL: 'https://git.example.com/team/other.git', branch: 'dev', path: 'site' });
      assert.deepEqual(moved.source, { repoURL: 'https://git.example.com/team/other.git', branch: 'dev', path: 'site' });
      assert.equal(moved.commit, SHA_A);
      assert.deepEqual(await store.getDeployed(app.id), sampleDeployed());
      await assert.rejects(store.setSource(999_999, moved.source), (e) => isZvError(e, 'APP_NOT_FOUND'));
    }));

    it('keeps the monorepo path globs of a source, and drops them when a source has none', () => withStore(async ({ store }) => {
      const base = newApp('mono');
      const app = await store.createApp({ ...base, source: { ...base.source, path: 'a', paths: ['a/**', 'lib/*.lua'] } });
      assert.deepEqual(app.source.paths, ['a/**', 'lib/*.lua']);
      assert.deepEqual((await store.getAppById(app.id))?.source.paths, ['a/**', 'lib/*.lua']);
      const moved = await store.setSource(app.id, { ...app.source, paths: ['b/**'] });
      assert.deepEqual(moved.source.paths, ['b/**']);
      const none = await store.setSource(app.id, { repoURL: app.source.repoURL, branch: app.source.branch, path: 'a' });
      assert.equal(none.source.paths, undefined);
    }));
  });

  describe(`store contract: ${name}: credentials`, () => {
    const withStore = async (fn: (store: Store) => Promise<void>): Promise<void> => {
      const o = await open();
      try {
        await fn(o.store);
      } finally {
        await o.cleanup();
      }
    };
    const cred = (name: string, namespace: string, more: Partial<NewCredential> = {}): NewCredential => ({
      name, namespace, urlPrefix: `https://git.example.com/${namespace}/`, type: 'https', username: 'ci', fingerprint: 'sha256:0123456789abcdef',
      knownHosts: null, caCert: null, secret: 'v1:c2VhbGVk', createdBy: 'admin', ...more,
    });

    it('creates a credential and reads it back with every field', () => withStore(async (store) => {
      const before = Date.now();
      const made = await store.createCredential(cred('deploy', 'team', { caCert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----' }));
      assert.equal(typeof made.id, 'number');
      assert.match(made.createdAt, ISO);
      assert.ok(Date.parse(made.createdAt) >= before - 1000);
      const { id: _id, createdAt: _at, ...rest } = made;
      assert.deepEqual(rest, cred('deploy', 'team', { caCert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----' }));
      assert.deepEqual(await store.getCredential('team', 'deploy'), made);
      assert.equal(await store.getCredential('other', 'deploy'), null);
      const ssh = await store.createCredential(cred('key', 'team', { type: 'ssh', username: null, urlPrefix: 'ssh://git@git.example.com/', knownHosts: null, createdBy: null }));
      assert.equal(ssh.type, 'ssh');
      assert.equal(ssh.username, null);
      assert.equal(ssh.createdBy, null);
    }));

    it('refuses a taken (namespace, name) with CREDENTIAL_EXISTS; the same name in another namespace is fine', () => withStore(async (store) => {
      await store.createCredential(cred('deploy', 'team'));
      await assert.rejects(store.createCredential(cred('deploy', 'team')), (e) => isZvError(e, 'CREDENTIAL_EXISTS'));
      await store.createCredential(cred('deploy', 'other'));
      await store.createCredential(cred('deploy', '*'));
    }));

    it('lists the given namespaces and *, or all; deletes by id; records a pinned host key', () => withStore(async (store) => {
      const a = await store.createCredential(cred('a', 'team'));
      await store.createCredential(cred('b', 'other'));
      await store.createCredential(cred('g', '*'));
      const names = async (ns: string[] | null): Promise<string[]> => (await store.listCredentials(ns)).map((c) => `${c.namespace}/${c.name}`).sort();
      assert.deepEqual(await names(null), ['*/g', 'other/b', 'team/a']);
      assert.deepEqual(await names(['team']), ['*/g', 'team/a']);
      assert.deepEqual(await names([]), ['*/g']);
      await store.setCredentialKnownHosts(a.id, '[git.example.com]:2222 ssh-ed25519 AAAA');
      assert.equal((await store.getCredential('team', 'a'))?.knownHosts, '[git.example.com]:2222 ssh-ed25519 AAAA');
      assert.equal(await store.deleteCredential(a.id), true);
      assert.equal(await store.deleteCredential(a.id), false);
      assert.equal(await store.getCredential('team', 'a'), null);
      assert.deepEqual(await names(null), ['*/g', 'other/b']);
      // the name is free again
      await store.createCredential(cred('a', 'team'));
    }));
  });
}
