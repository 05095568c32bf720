// Many registrations at once (issue 10, item 2): the API answers 201 to each one without waiting for
// other applications' syncs; the first syncs queue under --max-syncs and --max-git-processes (and
// polls share the caps), and every application ends `synced`. The sync history shows that never more
// than --max-syncs syncs ran at once. How long it took is printed, not asserted.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { luaManifest } from './fixtures.js';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import type { AppStatus } from '../../src/core/status.js';

const APPS = 120;
const REPOS = 12;
const MAX_SYNCS = 3;

const manifest = (i: number): string => luaManifest(`repo ${i}`, { name: 'app', path: '/hello' });

describe('registering many applications at once', () => {
  let h: Harness;
  const repos: TestRepo[] = [];

  before(async () => {
    // A short poll interval, so polls run while the first syncs queue (they share the caps).
    h = await startHarness({ maxSyncs: MAX_SYNCS, maxGitProcesses: 3, pollIntervalMs: 2_000 });
    for (let i = 0; i < REPOS; i++) repos.push(await TestRepo.create({ 'zerverless.yaml': manifest(i) }));
  });
  after(async () => {
    await h.close();
    await Promise.all(repos.map((r) => r.remove()));
  });

  it(`answers ${APPS} concurrent registrations at once and syncs every application under the caps`, async (t) => {
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: APPS }, (_, i) => h.api('POST', '/', {
      name: `app${i}`, namespace: `ns${i}`, source: { repoURL: (repos[i % REPOS] as TestRepo).url, branch: 'main' },
    })));
    const answeredMs = performance.now() - started;
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 201, `app${i}: ${JSON.stringify(a.body)}`);
      // Its first sync is queued or running (waiting for a slot shows as syncing too).
      assert.ok(['syncing', 'synced'].includes(a.body.status), `app${i}: ${a.body.status}`);
    }

    // Every application ends synced (the deadline only ends a wait that would never end).
    const deadline = Date.now() + 600_000;
    let apps: AppStatus[] = [];
    for (;;) {
      const r = await h.call<{ applications: AppStatus[]; total: number }>('GET', '/gitops/applications?limit=1000');
      assert.equal(r.status, 200);
      apps = r.body.applications;
      const failed = apps.filter((a) => a.status === 'error' || a.status === 'degraded');
      assert.deepEqual(failed.map((a) => `${a.namespace}/${a.name}: ${a.message}`), []);
      if (apps.length === APPS && apps.every((a) => a.status === 'synced')) break;
      if (Date.now() > deadline) assert.fail(`not synced: ${apps.filter((a) => a.status !== 'synced').map((a) => `${a.namespace}/${a.name} ${a.status}`).join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const syncedMs = performance.now() - started;
    t.diagnostic(`${APPS} registrations on ${REPOS} repositories: all answered in ${Math.round(answeredMs)} ms, all synced in ${Math.round(syncedMs)} ms`);

    // Every function answers with its repository's body.
    for (const i of [0, 1, APPS - 1]) {
      const res = await h.get(`/ns${i}/hello`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), `repo ${i % REPOS}`);
    }

    // From the history: never more than MAX_SYNCS syncs between their start and their end at once.
    const events: [number, number][] = [];
    for (const a of apps) {
      const app = await h.server.store.getApp(a.namespace, a.name);
      assert.ok(app);
      for (const s of await h.server.store.listSyncs(app.id)) {
        if (s.trigger === 'drift') continue;
        assert.ok(s.finishedAt, `a sync of ${a.namespace}/${a.name} did not finish`);
        events.push([Date.parse(s.startedAt), 1], [Date.parse(s.finishedAt), -1]);
      }
    }
    // An end and a start in the same millisecond: the end first (the slot was given back before).
    events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let now = 0;
    let most = 0;
    for (const [, d] of events) most = Math.max(most, (now += d));
    assert.ok(events.length >= APPS * 2);
    assert.ok(most <= MAX_SYNCS, `${most} syncs ran at once (cap ${MAX_SYNCS})`);
  });
});
