// Services from apps/ through the real server: an Erlang-term app.config (bc_gitops style) whose
// source is a real git repository of a Node service, routed by the gateway, upgraded under load,
// reported in the status, removed with the application.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { SERVICE_SERVER_JS as SERVER_JS, serviceAppConfig as APP_CONFIG, serviceRepos } from '../support/node-service.js';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/store.js';
import { sqlite } from '../../src/store/sqlite/driver.js';

describe('services from apps/', () => {
  let h: Harness;
  let svc: TestRepo;
  let site: TestRepo;

  before(async () => {
    h = await startHarness();
    ({ svc, app: site } = await serviceRepos({ v1: SERVER_JS('1.0.0'), v2: SERVER_JS('2.0.0'), 'v3-broken': 'process.exit(3);\n' }));
  });
  after(async () => {
    await h.close();
    await svc.remove();
    await site.remove();
  });

  it('deploys the service, routes /{namespace}{route} to it and reports it in the status', async () => {
    const st = await h.register('svc', 'team', site.url);
    assert.equal(st.status, 'synced', st.message);
    const ready = await h.waitFor('svc', (s) => s.services[0]?.health === 'healthy', 120_000);
    assert.deepEqual(ready.services.map((s) => [s.name, s.version, s.status, s.health]), [['web', '1.0.0', 'running', 'healthy']]);
    const res = await h.get('/team/web/hello?x=1');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-version'), '1.0.0');
    assert.equal(await res.text(), 'web 1.0.0 /web/hello?x=1 prefix=/team pool=10');
  });

  it('a version bump under 20 concurrent clients fails no request', async () => {
    let stop = false;
    const failures: string[] = [];
    const versions = new Set<string>();
    const client = async () => {
      while (!stop) {
        try {
          const res = await h.get('/team/web/');
          const body = await res.text();
          if (res.status !== 200) failures.push(`${res.status} ${body}`);
          else versions.add(res.headers.get('x-version') ?? '?');
        } catch (e) {
          failures.push(String(e));
        }
      }
    };
    const clients = Array.from({ length: 20 }, client);
    // Waits on what the clients saw, not on the clock (a loaded machine answers late); the deadlines only end a hang.
    for (const end = Date.now() + 60_000; !versions.has('1.0.0') && failures.length === 0 && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    await site.commit({ 'apps/web/app.config': APP_CONFIG(svc.url, 'v2', '2.0.0') });
    const st = await h.sync('svc');
    assert.equal(st.status, 'synced', st.message);
    for (const end = Date.now() + 60_000; !versions.has('2.0.0') && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(clients);
    assert.deepEqual(failures, []);
    assert.ok(versions.has('2.0.0'), [...versions].join(','));
    assert.equal((await h.api('GET', '/svc')).body.services[0]?.version, '2.0.0');
  });

  it('an env change reconfigures the service; the plan says so', async () => {
    await site.commit({ 'apps/web/app.config': APP_CONFIG(svc.url, 'v2', '2.0.0', 20) });
    assert.equal((await h.sync('svc')).status, 'synced');
    assert.match(await (await h.get('/team/web/')).text(), /pool=20/);
    const hist = await h.api<{ syncs: { plan: { services?: { name: string; action: string }[] } }[] }>('GET', '/svc/syncs');
    assert.deepEqual(hist.body.syncs[0]?.plan.services?.map((s) => [s.name, s.action]), [['web', 'reconfigure']]);
  });

  it('an upgrade that never gets healthy leaves the old version serving and the app degraded', async () => {
    await site.commit({ 'apps/web/app.config': APP_CONFIG(svc.url, 'v3-broken', '3.0.0', 20) });
    const st = await h.sync('svc');
    assert.equal(st.status, 'degraded', st.message);
    assert.match(st.message, /service web/);
    const res = await h.get('/team/web/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-version'), '2.0.0');
    // back to a good spec
    await site.commit({ 'apps/web/app.config': APP_CONFIG(svc.url, 'v2', '2.0.0', 20) });
    assert.equal((await h.sync('svc')).status, 'synced');
  });

  it('a spec error fails the sync naming the file and line; the service keeps running', async () => {
    await site.commit({ 'apps/web/app.config': APP_CONFIG(svc.url, 'v2', '2.0.0').replace('source => #{type => git', 'source => #{type => hex') });
    const st = await h.sync('svc');
    assert.equal(st.status, 'error');
    assert.match(st.message, /apps\/web\/app\.config:\d+:\d+/);
    assert.match(st.message, /hex/);
    assert.equal((await h.get('/team/web/')).status, 200);
  });

  it('after a restart the service comes back from the last synced specs, without git', async () => {
    const moved = `${svc.dir}-away`;
    const { rename } = await import('node:fs/promises');
    await rename(svc.dir, moved);
    try {
      await h.restart();
      const st = await h.waitFor('svc', (s) => s.services[0]?.health === 'healthy', 120_000);
      assert.equal(st.services.length, 1);
      const res = await h.get('/team/web/');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-version'), '2.0.0');
    } finally {
      await rename(moved, svc.dir);
    }
  });

  it('a restart imports an applied.json of an older data dir into the store, deletes it, and brings the service back', async () => {
    // Stopped, the data dir is made to look like an older zerverless left it: the applied specs in
    // <data-dir>/services/<id>/applied.json (format 1) and none in the store.
    await h.server.close();
    const dbFile = join(h.dataDir, 'state.db');
    const store = openSqliteStore(dbFile);
    let id: number;
    let applied: Awaited<ReturnType<typeof store.getAppliedServices>>;
    try {
      id = (await store.getApp('team', 'svc'))!.id;
      applied = await store.getAppliedServices(id);
    } finally {
      await store.close();
    }
    assert.deepEqual(applied?.specs.map((s) => [s.name, s.version]), [['web', '2.0.0']]);
    const file = join(h.dataDir, 'services', String(id), 'applied.json');
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify({ format: 1, commit: applied!.commit, specs: applied!.specs }, null, 2) + '\n');
    const db = new (sqlite())(dbFile, { timeout: 5000 });
    try {
      db.prepare('DELETE FROM applied_services WHERE app_id = ?').run(id);
    } finally {
      db.close();
    }

    await h.restart();
    const st = await h.waitFor('svc', (s) => s.services[0]?.health === 'healthy', 120_000);
    assert.deepEqual(st.services.map((s) => [s.name, s.version]), [['web', '2.0.0']]);
    const res = await h.get('/team/web/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-version'), '2.0.0');
    assert.equal(existsSync(file), false, 'the old file is gone');
    const check = openSqliteStore(dbFile);
    try {
      assert.deepEqual((await check.getAppliedServices(id))?.specs.map((s) => s.name), ['web'], 'the specs are in the store');
    } finally {
      await check.close();
    }
  });

  it('service logs are readable over the API and with zerverless logs', async () => {
    const r = await h.api<{ service: string; lines: string[] }>('GET', '/svc/services/web/logs?tail=50');
    assert.equal(r.status, 200);
    assert.ok(r.body.lines.length > 0 && r.body.lines.length <= 50);
    const missing = await h.api<{ error: { code: string } }>('GET', '/svc/services/nope/logs');
    assert.equal(missing.status, 404);
  });

  it('deleting the application stops the service and its route', async () => {
    assert.equal((await h.api('DELETE', '/svc')).status, 204);
    assert.equal((await h.get('/team/web/')).status, 404);
  });
});
