// The poll against a real git repository and a real SQLite store: one ls-remote per branch check,
// shared by every application on that branch. Then the schedule with a fake clock: checks spread
// evenly over the interval, re-spread when branches come, one store query per round, lateness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRepo } from '../../test/support/repo.js';
import { GitSource } from '../sources/git/index.js';
import { openSqliteStore } from '../store/sqlite/store.js';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../telemetry/log.js';
import type { AppRecord, Store } from '../store/types.js';
import type { Source } from '../sources/types.js';
import { Poller, spreadOffsets, type PollClock, type PollRound } from './poller.js';

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

test('spreadOffsets: branch i of n at i·interval/n', () => {
  assert.deepEqual(spreadOffsets(4, 1000), [0, 250, 500, 750]);
  assert.deepEqual(spreadOffsets(1, 1000), [0]);
  assert.deepEqual(spreadOffsets(0, 1000), []);
});

/** Lets the promises a timer started settle (the poller awaits the store and the source). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** A clock whose time moves only when the test says so. */
class FakeClock implements PollClock {
  t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Runs every timer due up to `to` in time order (then creation order), settling after each. */
  async advance(to: number): Promise<void> {
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= to && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      await settle();
    }
    this.t = Math.max(this.t, to);
  }
  /** Time passes without any timer firing (the process was busy). */
  stall(ms: number): void {
    this.t += ms;
  }
}

const SHA = 'a'.repeat(40);
const app = (id: number, repo: string, namespace = `ns${id}`): AppRecord =>
  ({ id, name: `app${id}`, namespace, source: { repoURL: `file:///${repo}`, branch: 'main', path: '' }, commit: SHA, status: 'synced' }) as unknown as AppRecord;

test('the checks of a round are spread evenly over the interval, re-spread when a branch comes, on one store query per round', async () => {
  const clock = new FakeClock();
  const apps = [app(1, 'r0'), app(2, 'r1'), app(3, 'r1'), app(4, 'r2'), app(5, 'r3')];
  let lists = 0;
  const store = { listApps: async () => { lists++; return { apps: [...apps], total: apps.length }; } } as unknown as Store;
  const checks: { at: number; repo: string }[] = [];
  const source = { head: async (ref: { repoURL: string }) => { checks.push({ at: clock.now(), repo: ref.repoURL }); return SHA; } } as unknown as Source;
  const heads: number[] = [];
  const rounds: PollRound[] = [];
  const warnings: string[] = [];
  const log = createLogger({ level: 'warn', destination: new Writable({ write(chunk: Buffer, _e, cb) { warnings.push(String(JSON.parse(chunk.toString()).msg)); cb(); } }) });
  const poller = new Poller({ store, source, intervalMs: 1000, log, clock, onHead: (a) => heads.push(a.id), onRound: (r) => rounds.push(r) });
  await poller.start();
  assert.equal(poller.branches, 4);
  assert.equal(lists, 1);

  // Nothing before the first round, one interval after the start.
  await clock.advance(999);
  assert.equal(checks.length, 0);
  await clock.advance(1999);
  assert.deepEqual(checks, [
    { at: 1000, repo: 'file:///r0' }, { at: 1250, repo: 'file:///r1' }, { at: 1500, repo: 'file:///r2' }, { at: 1750, repo: 'file:///r3' },
  ]);
  assert.deepEqual(heads.sort(), [1, 2, 3, 4, 5], 'one check of r1 answers both of its applications');
  assert.equal(lists, 2, 'one store query per round, not one per branch');

  // A fifth branch: the next round spreads five checks.
  apps.push(app(6, 'r4'));
  checks.length = 0;
  await clock.advance(2999);
  assert.deepEqual(checks.map((c) => c.at), [2000, 2200, 2400, 2600, 2800]);
  assert.equal(lists, 3);
  assert.equal(poller.branches, 5);
  assert.equal(rounds.at(-1)?.latenessMs, 0, 'every check of the last round started on time');
  assert.equal(warnings.length, 0, warnings.join('\n'));

  // The process stalls past the round's start: its first checks start late, which is measured and logged.
  clock.stall(400);
  checks.length = 0;
  await clock.advance(3999);
  assert.deepEqual(checks.map((c) => c.at), [3399, 3399, 3400, 3600, 3800]);
  await clock.advance(4000);
  const late = rounds.at(-1);
  assert.equal(late?.latenessMs, 399);
  assert.equal(late?.branches, 5);
  assert.ok(warnings.some((w) => /started late/.test(w)), warnings.join('\n'));

  // An application added (registered) during a round gets the heads of its branch's next check.
  poller.add(app(7, 'r1', 'other'));
  heads.length = 0;
  await clock.advance(4300);
  await poller.stop();
  assert.deepEqual(heads.sort(), [2, 3, 7], 'the check of r1 at 4200');
  assert.deepEqual(warnings.filter((w) => !/started late/.test(w)), []);
});

test('a check still running at its next slot is skipped, not stacked', async () => {
  const clock = new FakeClock();
  const apps = [app(1, 'slow')];
  const store = { listApps: async () => ({ apps, total: 1 }) } as unknown as Store;
  let started = 0;
  let finish: (sha: string) => void = () => undefined;
  const source = { head: () => { started++; return new Promise<string>((r) => { finish = r; }); } } as unknown as Source;
  const rounds: PollRound[] = [];
  const poller = new Poller({ store, source, intervalMs: 1000, log: silentLogger, clock, onHead: () => undefined, onRound: (r) => rounds.push(r) });
  await poller.start();
  await clock.advance(1000);
  assert.equal(started, 1);
  await clock.advance(3000);
  assert.equal(started, 1, 'no second ls-remote while the first one runs');
  assert.ok(rounds.some((r) => r.skipped === 1));
  finish(SHA);
  await settle();
  await clock.advance(4000);
  assert.equal(started, 2);
  finish(SHA);
  await poller.stop();
});
