// Upgrades and reconfiguration by the Node service runtime, with real processes and real traffic:
// v1 → v2 under 20 concurrent clients resolving upstream() per request fails no request; a version
// that never gets healthy leaves v1 serving and rejects; an env change takes over with a new process;
// a pinned port falls back to stop → start (and brings the old version back if the new one fails).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { rm } from 'node:fs/promises';
import type { TestRepo } from '../../../test/support/repo.js';
import type { ServiceSpec } from '../../core/services/types.js';
import { failureOf } from './index.js';
import type { NodeServiceRuntime } from './index.js';
import { bindable } from './ports.js';
import { alive, makeSpec, runtime, taggedServiceRepo, taggedSpec, tempDir, until, viaUpstream } from './fixtures.test.js';

/** One GET through upstream() resolved for this request; resolves with the version that answered. */
function hit(rt: NodeServiceRuntime, name: string): Promise<string> {
  const up = rt.upstream(name);
  if (!up) return Promise.reject(new Error('no upstream'));
  return new Promise((resolve, reject) => {
    const req = request({ host: up.host, port: up.port, path: '/', agent: false, timeout: 60_000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve((JSON.parse(body) as { version: string }).version) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * 20 clients hitting the service in a loop: 100 requests before `during` starts, while it runs, and
 * 100 more after it settled (counted, not timed: a loaded machine makes fewer requests per second).
 */
async function underLoad<T>(rt: NodeServiceRuntime, name: string, during: () => Promise<T>) {
  let stop = false;
  const seen = new Map<string, number>();
  const failures: string[] = [];
  const clients = Array.from({ length: 20 }, async () => {
    while (!stop) {
      try {
        const v = await hit(rt, name);
        seen.set(v, (seen.get(v) ?? 0) + 1);
      } catch (e) {
        failures.push(e instanceof Error ? e.message : String(e));
      }
    }
  });
  const made = (): number => [...seen.values()].reduce((a, b) => a + b, 0) + failures.length;
  await until('100 requests before the change', () => made() >= 100);
  const outcome = await during().then((value) => ({ value }), (error: unknown) => ({ error }));
  const settled = made();
  await until('100 requests after the change', () => made() >= settled + 100);
  stop = true;
  await Promise.all(clients);
  return { outcome, seen, failures };
}

describe('node services: upgrade and reconfigure', () => {
  let repo: TestRepo;
  let dataDir: string;
  let rt: NodeServiceRuntime;
  const v = (version: string, over: Partial<ServiceSpec> = {}): ServiceSpec => taggedSpec(repo, version, over);

  before(async () => {
    repo = await taggedServiceRepo('1.0.0', '2.0.0', '3.0.0');
    dataDir = await tempDir();
    // The ready timeout ends the upgrade that never gets healthy: short for a test, long enough for a
    // loaded machine to start a good version.
    rt = runtime(dataDir, { portRange: [43000, 43199], readyTimeoutMs: 20_000 });
  });
  after(async () => {
    await rt.close();
    await repo.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('upgrades v1 → v2 under 20 concurrent clients without a failed request', async () => {
    await rt.deploy(v('1.0.0'));
    const oldPid = (await viaUpstream(rt, 'web')).json.pid as number;
    const r = await underLoad(rt, 'web', () => rt.upgrade(v('2.0.0'), '1.0.0'));
    assert.ok(!('error' in r.outcome), String((r.outcome as { error?: unknown }).error));
    assert.deepEqual(r.failures, []);
    assert.ok((r.seen.get('1.0.0') ?? 0) > 0 && (r.seen.get('2.0.0') ?? 0) > 0, JSON.stringify([...r.seen]));
    const total = [...r.seen.values()].reduce((a, b) => a + b, 0);
    assert.ok(total >= 200, `${total} requests were made`);
    assert.equal((await viaUpstream(rt, 'web')).json.version, '2.0.0');
    assert.equal(await alive(oldPid), false, 'v1 was stopped after the takeover');
    const st = (await rt.getCurrentState())[0];
    assert.equal(st?.version, '2.0.0');
    assert.equal(st?.health, 'healthy');
    assert.equal(st?.message, undefined);
  });

  it('an upgrade that never gets healthy leaves v2 serving and rejects', async () => {
    const before = (await viaUpstream(rt, 'web')).json;
    const r = await underLoad(rt, 'web', () => rt.upgrade(v('3.0.0', { env: { HEALTH_STATUS: '503' } }), '2.0.0'));
    assert.ok('error' in r.outcome);
    assert.equal(failureOf(r.outcome.error), 'unhealthy');
    assert.deepEqual(r.failures, []);
    assert.deepEqual([...r.seen.keys()], ['2.0.0'], 'no request reached the unhealthy version');
    const now = (await viaUpstream(rt, 'web')).json;
    assert.equal(now.pid, before.pid);
    const st = (await rt.getCurrentState())[0];
    assert.equal(st?.version, '2.0.0');
    assert.equal(st?.status, 'running');
    assert.match(st?.message ?? '', /upgrade to 3\.0\.0 failed: .*did not become healthy.*answered 503.*; 2\.0\.0 keeps running/);
    assert.ok(rt.logs('web').some((l) => /3\.0\.0: stopping pid/.test(l)), 'the new process was stopped');
  });

  it('reconfigures (env change) with a new process that takes over; health-only changes keep the process', async () => {
    const before = (await viaUpstream(rt, 'web')).json;
    const r = await underLoad(rt, 'web', () => rt.reconfigure(v('2.0.0', { env: { GREETING: 'hello' } })));
    assert.ok(!('error' in r.outcome));
    assert.deepEqual(r.failures, []);
    const after = (await viaUpstream(rt, 'web')).json;
    assert.equal(after.greeting, 'hello');
    assert.notEqual(after.pid, before.pid);
    assert.equal(await alive(before.pid as number), false);
    assert.equal((await rt.getCurrentState())[0]?.message, undefined, 'success clears the earlier failure');

    await rt.deploy(v('2.0.0', { env: { GREETING: 'hello' }, health: { type: 'tcp', interval: 200, timeout: 500 } }));
    assert.equal((await viaUpstream(rt, 'web')).json.pid, after.pid, 'same process, new health check');
  });

  it('falls back to stop → start for a pinned port, and restores the old version if the new one fails', async () => {
    let port = 43900;
    while (!(await bindable(port))) port++;
    const pinned = (version: string, over: Partial<ServiceSpec> = {}): ServiceSpec =>
      makeSpec('pinned', { version, port, source: { type: 'git', url: repo.url, ref: `v${version}` }, ...over });
    await rt.deploy(pinned('1.0.0'));
    assert.deepEqual(rt.upstream('pinned'), { host: '127.0.0.1', port });
    await rt.upgrade(pinned('2.0.0'), '1.0.0');
    assert.equal((await viaUpstream(rt, 'pinned')).json.version, '2.0.0');
    assert.equal((await viaUpstream(rt, 'pinned')).json.port, port);
    assert.ok(rt.logs('pinned').some((l) => l.includes('port is pinned: stopping 1.0.0 before starting 2.0.0')));

    await assert.rejects(rt.upgrade(pinned('3.0.0', { env: { CRASH: '1' } }), '2.0.0'), (e) => failureOf(e) === 'unhealthy');
    await until('2.0.0 to be back', () => rt.upstream('pinned') !== null);
    assert.equal((await viaUpstream(rt, 'pinned')).json.version, '2.0.0', '2.0.0 is back');
    const st = (await rt.getCurrentState()).find((s) => s.name === 'pinned');
    assert.equal(st?.version, '2.0.0');
    assert.match(st?.message ?? '', /upgrade to 3\.0\.0 failed/);
    await rt.remove('pinned');
  });
});
