// Retries with backoff (PRODUCT.md §11), through the real server: a sync that failed for a passing
// reason is retried in the background at growing intervals, the status stays `error` / `degraded`
// with `retry: {attempt, nextAt}` meanwhile (never `syncing`), the poll does not retry it on every
// tick, and an explicit sync still runs at once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rename } from 'node:fs/promises';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { SERVICE_PACKAGE, SERVICE_SERVER_JS, serviceAppConfig } from '../support/node-service.js';
import type { AppStatus } from '../../src/core/status.js';
import { manifest } from './fixtures.js';

interface History { syncs: { trigger: string; result: string; message: string }[] }

/** One Lua function (namespace `retry`), no static site. */
const MANIFEST = manifest({ namespace: 'retry', lua: 'return "hi"', staticDir: null }).replace(/ {4}- path: \/py\n(.*\n){2}| {4}- path: \/js\n(.*\n){2}| {4}- path: \/ts\n(.*\n){2}/g, '');

describe('retries with backoff', () => {
  describe('a passing fault (the repository unreachable)', () => {
    let h: Harness;
    let repo: TestRepo;

    before(async () => {
      h = await startHarness({ retry: { baseMs: 300, maxMs: 1_200 } });
      repo = await TestRepo.create({ 'zerverless.yaml': MANIFEST });
    });
    after(async () => {
      await h.close();
      await repo.remove();
    });

    it('is retried in the background at growing intervals, shows error with retry meanwhile, and clears on success', async () => {
      assert.equal((await h.register('app', 'retry', repo.url)).status, 'synced');
      const away = `${repo.dir}.away`;
      await rename(repo.dir, away);
      let restored = false;
      try {
        const asked = Date.now();
        const failed = await h.sync('app', 'retry');
        assert.equal(failed.status, 'error');
        assert.match(failed.message, /^GIT_/);
        assert.equal(failed.retry?.attempt, 1, JSON.stringify(failed));
        const next = Date.parse(failed.retry?.nextAt ?? '');
        // After the failure (so after `asked`), at most the longest delay after it (so after now): bounds
        // that hold however slow the machine is.
        assert.ok(next >= asked && next <= Date.now() + 1_200, failed.retry?.nextAt);

        // Background retries run and fail again: the attempt grows, and the status never says syncing.
        const seen: string[] = [];
        const st = await h.waitFor('app', (s) => {
          seen.push(s.status);
          return (s.retry?.attempt ?? 0) >= 3;
        }, 60_000, 'retry');
        assert.equal(st.status, 'error');
        assert.deepEqual([...new Set(seen)], ['error'], 'a background retry never hides the failure');
        // The delays double: 300 ms, 600 ms, then 1 200 ms (the maximum).
        const history = (await h.api<History>('GET', '/app/syncs?namespace=retry')).body.syncs;
        assert.ok(history.filter((s) => s.trigger === 'retry').length >= 2, JSON.stringify(history.map((s) => s.trigger)));

        // The repository comes back: the next retry succeeds and the retry goes away.
        await rename(away, repo.dir);
        restored = true;
        const ok = await h.waitFor('app', (s) => s.status === 'synced', 60_000, 'retry');
        assert.equal(ok.retry, undefined);
        assert.equal(await (await h.get('/retry/lua')).text(), 'hi');
        const after = (await h.api<History>('GET', '/app/syncs?namespace=retry')).body.syncs;
        assert.deepEqual([after[0]?.trigger, after[0]?.result], ['retry', 'success']);
      } finally {
        if (!restored) await rename(away, repo.dir).catch(() => undefined);
      }
    });

    it('a commit at fault is not retried: it waits for the branch to move', async () => {
      await repo.commit({ 'zerverless.yaml': `${MANIFEST}  functions: [\n` });
      const bad = await h.sync('app', 'retry');
      assert.equal(bad.status, 'error');
      assert.match(bad.message, /^MANIFEST_INVALID/);
      assert.equal(bad.retry, undefined);
      await repo.commit({ 'zerverless.yaml': MANIFEST });
      assert.equal((await h.sync('app', 'retry')).status, 'synced');
    });
  });

  describe('a service upgrade that never gets healthy', () => {
    let h: Harness;
    let svc: TestRepo;
    let site: TestRepo;

    before(async () => {
      // A fast poll and a slow first retry: within the test, only the poll could start a sync.
      h = await startHarness({ pollIntervalMs: 200, retry: { baseMs: 600_000, maxMs: 600_000 } });
      svc = await TestRepo.create({ 'package.json': SERVICE_PACKAGE, 'server.js': SERVICE_SERVER_JS('1.0.0') });
      svc.git('tag', 'v1');
      await svc.commit({ 'server.js': 'process.exit(3);\n' });
      svc.git('tag', 'v2-broken');
      site = await TestRepo.create({ 'apps/web/app.config': serviceAppConfig(svc.url, 'v1', '1.0.0') });
    });
    after(async () => {
      await h.close();
      await svc.remove();
      await site.remove();
    });

    it('stays degraded with a scheduled retry; polls do not retry it; an explicit sync runs at once', async () => {
      assert.equal((await h.register('svc', 'team', site.url)).status, 'synced');
      await h.waitFor('svc', (s) => s.services[0]?.health === 'healthy', 60_000, 'team');
      await site.commit({ 'apps/web/app.config': serviceAppConfig(svc.url, 'v2-broken', '2.0.0') });
      // The poll syncs the new commit; the upgrade fails and the application is degraded because of it.
      const degraded = await h.waitFor('svc', (s) => s.status === 'degraded' && /service web/.test(s.message), 120_000, 'team');
      assert.match(degraded.message, /upgrade failed/);
      const retry = (await h.waitFor('svc', (s) => s.retry !== undefined, 60_000, 'team')).retry;
      assert.equal(retry?.attempt, 1);
      const count = async (): Promise<number> => (await h.api<History>('GET', '/svc/syncs?namespace=team')).body.syncs.length;
      const before = await count();

      // Many poll ticks later: no sync was started, and the status never flipped to syncing.
      const statuses = new Set<string>();
      const until = Date.now() + 3_000;
      let last: AppStatus | null = null;
      while (Date.now() < until) {
        last = (await h.api('GET', '/svc?namespace=team')).body;
        statuses.add(last.status);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual([...statuses], ['degraded']);
      assert.equal(await count(), before, 'the poll did not start a sync');
      assert.deepEqual(last?.retry, retry);

      // An explicit sync runs at once (and fails again: the next retry is further away).
      const again = await h.sync('svc', 'team');
      assert.equal(again.status, 'degraded');
      assert.equal(await count(), before + 1);
      assert.equal(again.retry?.attempt, 2);
    });
  });
});
