// Statuses that tell the truth (issue 8.5): an unreachable repository, a sync answered while
// another is queued, and a docker function whose container was stopped by hand.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rename } from 'node:fs/promises';
import Dockerode from 'dockerode';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { luaManifest } from './fixtures.js';
import { dockerAvailable, ensureBaseImage, removeNetworksOf } from '../support/docker.js';

const hasDocker = await dockerAvailable();
if (!hasDocker && process.env.CI === 'true') throw new Error('CI=true but no Docker engine answers: the Docker tests must run in CI');
if (!hasDocker) console.log('# skipped: the stopped-container status test (no Docker engine answers)');

const LUA = (body: string): string => luaManifest(body);

describe('statuses tell the truth', () => {
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    h = await startHarness({ pollIntervalMs: 300 });
    repo = await TestRepo.create({ 'zerverless.yaml': LUA('one') });
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('a repository that cannot be reached shows as error while the last good revision serves; it recovers by itself', async () => {
    await h.register('web', 'truth', repo.url);
    const served = (await h.waitFor('web', (s) => s.status === 'synced', 120_000, 'truth')).source.commit;
    const moved = `${repo.dir}-gone`;
    await rename(repo.dir, moved);
    try {
      const s = await h.waitFor('web', (st) => st.status === 'error', 120_000, 'truth');
      assert.match(s.message, /^GIT_(ERROR|REF_NOT_FOUND): the branch head cannot be read: /);
      assert.equal(s.source.commit, served, 'the served commit is kept');
      assert.equal(await (await h.get('/truth/hi')).text(), 'one', 'the last good revision keeps serving');
    } finally {
      await rename(moved, repo.dir);
    }
    const back = await h.waitFor('web', (st) => st.status === 'synced', 120_000, 'truth');
    assert.equal(back.message, '');
  });

  it('POST …/sync answers the end of its own sync, not "syncing" because another one is queued', async () => {
    for (let i = 0; i < 5; i++) {
      await repo.commit({ 'zerverless.yaml': LUA(`v${i}`) });
      const waited = h.api('POST', '/web/sync?namespace=truth');
      // Queue another sync behind it while it runs.
      await h.api('POST', '/web/sync?namespace=truth&async=true');
      const r = await waited;
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 'synced', `round ${i}: ${JSON.stringify(r.body)}`);
    }
  });
});

describe('a bad commit is not retried while the branch has not moved', () => {
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    h = await startHarness({ pollIntervalMs: 200 });
    repo = await TestRepo.create({ 'zerverless.yaml': LUA('good') });
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  for (const [what, files] of [
    ['an invalid manifest', { 'zerverless.yaml': 'kind: [' }],
    // 3,000 levels of nesting: once a raw RangeError (INTERNAL), which the poll used to retry forever.
    ['a service spec nested 3,000 deep', { 'apps/deep/app.json': `${'['.repeat(3000)}${']'.repeat(3000)}` }],
  ] as const) {
    it(`${what}: one failed sync, then nothing until a new commit`, async () => {
      const name = what.startsWith('an') ? 'badyaml' : 'deep';
      await repo.commit({ 'zerverless.yaml': LUA('good'), 'apps/deep/app.json': null });
      await h.register(name, 'retry', repo.url);
      await h.waitFor(name, (s) => s.status === 'synced', 120_000, 'retry');
      await repo.commit(files);
      const failed = await h.waitFor(name, (s) => s.status === 'error', 120_000, 'retry');
      assert.match(failed.message, /^[A-Z_]+: /);
      const count = async () => (await h.api<{ syncs: unknown[] }>('GET', `/${name}/syncs?namespace=retry&limit=100`)).body.syncs.length;
      const after1 = await count();
      // Many poll periods (200 ms each) later, the same head has not been synced again.
      const until = Date.now() + 3000;
      while (Date.now() < until) await new Promise((r) => setTimeout(r, 250));
      assert.equal(await count(), after1, 'the poll re-synced a commit that failed on its own content');
      assert.equal(await (await h.get('/retry/hi')).text(), 'good', 'the last good revision keeps serving');
      await h.api('DELETE', `/${name}?namespace=retry`);
    });
  }
});

describe('statuses tell the truth: a stopped container', { skip: !hasDocker && 'no Docker engine' }, () => {
  let h: Harness;
  let repo: TestRepo;
  const docker = new Dockerode();

  before(async () => {
    await ensureBaseImage();
    h = await startHarness();
    repo = await TestRepo.create({
      'zerverless.yaml': `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: dock
spec:
  functions:
    - path: /www
      runtime: docker
      dockerfile: ./svc/Dockerfile
      context: ./svc
`,
      'svc/Dockerfile': 'FROM zv-busybox:test\nRUN mkdir -p /www/www && echo up > /www/www/index.html\nCMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]\n',
    });
  });
  after(async () => {
    // Delete the application: its container and its namespace's network go with it.
    await h?.api('DELETE', '/dock?namespace=stopped').catch(() => undefined);
    await h?.close();
    if (hasDocker) {
      // The deleted function's container goes after its drain; then its network can go.
      const deadline = Date.now() + 60_000;
      const mine = () => docker.listContainers({ all: true, filters: { label: ['zerverless.managed=true', 'zerverless.namespace=stopped'] } });
      while ((await mine()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      await removeNetworksOf(['stopped']);
    }
    await repo?.remove();
  });

  it('shows the function unavailable and the app degraded, and a sync starts it again', async () => {
    const s = await h.register('dock', 'stopped', repo.url);
    assert.equal(s.status, 'synced', JSON.stringify(s));
    const container = s.functions[0]?.container;
    assert.ok(container);
    await docker.getContainer(container).stop({ t: 1 });
    const down = await h.waitFor('dock', (st) => st.functions[0]?.status === 'unavailable', 120_000, 'stopped');
    assert.equal(down.status, 'degraded');
    assert.match(down.functions[0]?.message ?? '', /not running/);
    assert.equal((await h.get('/stopped/www/')).status, 503);

    const synced = await h.sync('dock', 'stopped');
    assert.equal(synced.status, 'synced', JSON.stringify(synced));
    assert.equal(synced.functions[0]?.status, 'ready');
    assert.equal(await (await h.get('/stopped/www/')).text(), 'up\n');
    const history = await h.api<{ syncs: { plan: { functions: { path: string; action: string }[] } | null }[] }>('GET', '/dock/syncs?namespace=stopped');
    assert.equal(history.body.syncs[0]?.plan?.functions.find((f) => f.path === '/www')?.action, 'update', 'the plan says the function was started again');
  });
});
