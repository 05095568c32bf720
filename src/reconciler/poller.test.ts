// The poll against a real git repository and a real SQLite store: one ls-remote per branch check,
// shared by every application on that branch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRepo } from '../../test/support/repo.js';
import { GitSource } from '../sources/git/index.js';
import { openSqliteStore } from '../store/sqlite/store.js';
import { silentLogger } from '../telemetry/log.js';
import { Poller } from './poller.js';

/** Waits for `pred`; the deadline only ends a wait that will never end (a loaded machine is slow). */
async function until(what: string, pred: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('applications on one repository and branch share one head check per tick', async () => {
  const data = await mkdtemp(join(tmpdir(), 'zv-poll-'));
  const repo = await TestRepo.create({ 'a.txt': 'a' });
  repo.git('branch', 'other');
  const store = openSqliteStore(join(data, 'state.db'));
  const source = new GitSource({ dataDir: data, allowFileRepos: true, headCacheMs: 0 });
  try {
    const a = await store.createApp({ name: 'a', namespace: 'one', source: { repoURL: repo.url, branch: 'main', path: '' } });
    const b = await store.createApp({ name: 'b', namespace: 'two', source: { repoURL: repo.url, branch: 'main', path: '' } });
    const c = await store.createApp({ name: 'c', namespace: 'one', source: { repoURL: repo.url, branch: 'other', path: '' } });
    const seen = new Map<number, string[]>();
    const poller = new Poller({
      store, source, intervalMs: 150, log: silentLogger,
      onHead: (app, head) => seen.set(app.id, [...(seen.get(app.id) ?? []), head]),
    });
    await poller.start();
    const checked = (id: number): number => seen.get(id)?.length ?? 0;
    await until('two checks of each branch', () => checked(a.id) >= 2 && checked(c.id) >= 2);
    await poller.stop();
    const [na, nb, nc] = [a, b, c].map((x) => seen.get(x.id)?.length ?? 0);
    assert.ok((na ?? 0) >= 2, `main was checked ${na} times`);
    assert.equal(na, nb, 'both applications of main got every answer');
    assert.ok((nc ?? 0) >= 2);
    // one ls-remote per branch check (a check under way at stop() is not handed out)
    const checks = (na ?? 0) + (nc ?? 0);
    assert.ok(source.stats.lsRemote >= checks && source.stats.lsRemote <= checks + 2, `${source.stats.lsRemote} ls-remote for ${checks} checks`);
    assert.equal(source.stats.fetch, 0, 'the poll never fetches');
    assert.deepEqual(new Set(seen.get(a.id)), new Set([repo.head()]));

    // A branch nobody uses any more stops being polled, while running and after a restart.
    await poller.start();
    assert.equal(poller.branches, 2);
    await store.deleteApp(c.id);
    await until('the unused branch to be dropped', () => poller.branches === 1);
    await poller.stop();
    await poller.start();
    assert.equal(poller.branches, 1);
    await poller.stop();
  } finally {
    await store.close();
    await repo.remove();
    await rm(data, { recursive: true, force: true });
  }
});
