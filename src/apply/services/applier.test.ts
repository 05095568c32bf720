// Tests of the ServiceReconciler with an in-memory runtime: failures and blocked dependents,
// health waits that time out, the state port, re-deploying what the runtime lost, the queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceRuntime, ServiceSpec, ServiceState } from '../../core/services/types.js';
import { isZvError } from '../../errors/registry.js';
import { ServiceReconciler, type AppliedServices, type AppliedServicesPort } from './applier.js';

function spec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name, version: '1.0.0', source: { type: 'npm' }, env: {}, health: { type: 'tcp', interval: 1000, timeout: 500 },
    dependsOn: [], route: null, port: null, file: `apps/${name}/app.json`, ...over,
  };
}

/** Runs everything in memory; `fail` makes an action throw, `sick` keeps a service unhealthy. */
class MemoryRuntime implements ServiceRuntime {
  readonly calls: string[] = [];
  readonly services = new Map<string, ServiceState>();
  fail = new Set<string>();
  sick = new Set<string>();

  private run(spec: ServiceSpec): void {
    this.services.set(spec.name, { name: spec.name, version: spec.version, status: 'running', health: this.sick.has(spec.name) ? 'unhealthy' : 'healthy', restarts: 0 });
  }
  private check(what: string, name: string): void {
    this.calls.push(`${what} ${name}`);
    if (this.fail.has(`${what} ${name}`)) throw new Error(`${what} ${name} broke`);
  }
  async deploy(spec: ServiceSpec): Promise<void> { this.check('deploy', spec.name); this.run(spec); }
  async upgrade(spec: ServiceSpec, old: string): Promise<void> { this.check('upgrade', spec.name); this.calls.push(`  from ${old}`); this.run(spec); }
  async reconfigure(spec: ServiceSpec): Promise<void> { this.check('reconfigure', spec.name); this.run(spec); }
  async remove(name: string): Promise<void> { this.check('remove', name); this.services.delete(name); }
  async getCurrentState(): Promise<ServiceState[]> { return [...this.services.values()]; }
}

const quick = { healthTimeoutMs: 200, healthPollMs: 10 };

test('a failed deploy blocks its dependents, leaves others alone and is retried next time', async () => {
  const rt = new MemoryRuntime();
  rt.fail.add('deploy db');
  const rec = new ServiceReconciler({ runtime: rt, ...quick });
  const desired = [spec('db'), spec('api', { dependsOn: ['db'] }), spec('web', { dependsOn: ['api'] }), spec('solo')];
  const r = await rec.apply(desired);
  assert.deepEqual(rt.calls, ['deploy db', 'deploy solo']);
  assert.deepEqual(r.failed, [{ name: 'db', action: 'deploy', error: 'deploy db broke' }]);
  assert.deepEqual(r.blocked.map((b) => [b.name, b.blockedBy]), [['api', 'db'], ['web', 'api']]);
  assert.deepEqual(r.applied.map((c) => c.name), ['solo']);
  assert.deepEqual(rec.appliedSpecs().map((s) => s.name), ['solo']);

  rt.fail.clear();
  rt.calls.length = 0;
  const again = await rec.apply(desired);
  assert.deepEqual(rt.calls, ['deploy db', 'deploy api', 'deploy web']);
  assert.deepEqual([again.failed, again.blocked], [[], []]);
});

test('a failed upgrade keeps the old version recorded and running; dependents wait for health and time out', async () => {
  const rt = new MemoryRuntime();
  const rec = new ServiceReconciler({ runtime: rt, ...quick });
  await rec.apply([spec('db'), spec('api', { dependsOn: ['db'] })]);
  rt.fail.add('upgrade db');
  rt.calls.length = 0;
  const r = await rec.apply([spec('db', { version: '2.0.0' }), spec('api', { dependsOn: ['db'], env: { X: '1' } })]);
  assert.deepEqual(rt.calls, ['upgrade db']);
  assert.equal(r.blocked[0]?.name, 'api');
  assert.equal(rec.appliedSpecs().find((s) => s.name === 'db')?.version, '1.0.0');
  assert.equal(rt.services.get('db')?.status, 'running');

  // Upgrade goes through but the new version never gets healthy: the dependent is blocked, with why.
  rt.fail.clear();
  rt.sick.add('db');
  rt.calls.length = 0;
  const sick = await rec.apply([spec('db', { version: '2.0.0' }), spec('api', { dependsOn: ['db'], env: { X: '1' } })]);
  assert.deepEqual(rt.calls, ['upgrade db', '  from 1.0.0']);
  assert.deepEqual(sick.applied.map((c) => c.name), ['db']);
  assert.equal(sick.blocked[0]?.blockedBy, 'db');
  assert.match(sick.blocked[0]?.reason ?? '', /db not healthy after 200 ms \(status running, health unhealthy\)/);
});

test('removals go dependents first; a failed removal keeps what it depends on', async () => {
  const rt = new MemoryRuntime();
  const rec = new ServiceReconciler({ runtime: rt, ...quick });
  await rec.apply([spec('db'), spec('api', { dependsOn: ['db'] }), spec('web', { dependsOn: ['api'] })]);
  rt.calls.length = 0;
  rt.fail.add('remove api');
  const r = await rec.apply([]);
  assert.deepEqual(rt.calls, ['remove web', 'remove api']);
  assert.deepEqual(r.failed.map((f) => f.name), ['api']);
  assert.deepEqual(r.blocked.map((b) => [b.name, b.blockedBy]), [['db', 'api']]);
  assert.deepEqual(rec.appliedSpecs().map((s) => s.name), ['api', 'db']);
  assert.ok(rt.services.has('db'));
});

test('a cycle throws before any runtime call (an unknown dependency does not: unknown-deps.test.ts)', async () => {
  const rt = new MemoryRuntime();
  const rec = new ServiceReconciler({ runtime: rt, ...quick });
  await assert.rejects(rec.apply([spec('a', { dependsOn: ['b'] }), spec('b', { dependsOn: ['a'] })]), (e: unknown) => {
    assert.ok(isZvError(e, 'MANIFEST_INVALID'));
    assert.match(e.message, /depends_on: cycle a → b → a/);
    return true;
  });
  assert.deepEqual(rt.calls, []);
});

test('the state port carries the applied specs to the next reconciler, saved after each action; its errors', async () => {
  let stored: AppliedServices | null = null;
  const saves: AppliedServices[] = [];
  const state: AppliedServicesPort = {
    load: async () => stored,
    save: async (a) => {
      saves.push(structuredClone(a));
      stored = structuredClone(a);
    },
  };
  const rt = new MemoryRuntime();
  await new ServiceReconciler({ runtime: rt, state, ...quick }).apply([spec('db'), spec('api', { dependsOn: ['db'] })], { commit: 'c1' });
  // after db, after api, then the commit
  assert.deepEqual(saves.map((a) => [a.commit, a.specs.map((x) => x.name)]), [[null, ['db']], [null, ['api', 'db']], ['c1', ['api', 'db']]]);
  assert.deepEqual(stored, { commit: 'c1', specs: [spec('api', { dependsOn: ['db'] }), spec('db')] });

  rt.calls.length = 0;
  const next = new ServiceReconciler({ runtime: rt, state, ...quick });
  await next.load();
  assert.equal(next.appliedCommit(), 'c1');
  assert.deepEqual(next.appliedSpecs().map((x) => x.name), ['api', 'db']);
  const removed = await next.apply([spec('db')], { commit: 'c2' });
  assert.deepEqual(rt.calls, ['remove api']);
  assert.deepEqual(removed.failed, []);
  assert.deepEqual(stored, { commit: 'c2', specs: [spec('db')] });

  // a port that cannot load fails the apply before any runtime call; one that cannot save only warns
  rt.calls.length = 0;
  const broken = { load: () => Promise.reject(new Error('database is locked')), save: () => Promise.resolve() };
  await assert.rejects(new ServiceReconciler({ runtime: rt, state: broken }).apply([]), /cannot read the service state: database is locked/);
  assert.deepEqual(rt.calls, []);
  const warnings: string[] = [];
  const logger = { info: () => undefined, error: () => undefined, warn: (o: object, m?: string) => { warnings.push(`${m}: ${JSON.stringify(o)}`); } };
  const readOnly = { load: async () => null, save: () => Promise.reject(new Error('disk full')) };
  const r = await new ServiceReconciler({ runtime: new MemoryRuntime(), state: readOnly, logger, ...quick }).apply([spec('db')], { commit: 'c3' });
  assert.deepEqual(r.applied.map((c) => c.name), ['db']);
  assert.ok(warnings.some((w) => w.includes('cannot save the applied state') && w.includes('disk full')), warnings.join('\n'));
});

test('the applied specs carry to the next reconciler through the port; a lost service is deployed again', async () => {
  let stored: AppliedServices | null = null;
  const state: AppliedServicesPort = { load: async () => structuredClone(stored), save: async (a) => { stored = structuredClone(a); } };
  const rt = new MemoryRuntime();
  await new ServiceReconciler({ runtime: rt, state, ...quick }).apply([spec('db'), spec('api', { dependsOn: ['db'] })], { commit: 'c1' });

  // Same runtime, new reconciler: nothing to do. Then the runtime loses api: only api is deployed.
  rt.calls.length = 0;
  const next = new ServiceReconciler({ runtime: rt, state, ...quick });
  const same = await next.apply([spec('db'), spec('api', { dependsOn: ['db'] })]);
  assert.deepEqual(rt.calls, []);
  assert.equal(next.appliedCommit(), 'c1');
  assert.ok(same.plan.every((c) => c.action === 'unchanged'));
  rt.services.delete('api');
  const lost = await next.apply([spec('db'), spec('api', { dependsOn: ['db'] })]);
  assert.deepEqual(rt.calls, ['deploy api']);
  assert.deepEqual(lost.plan.find((c) => c.name === 'api'), { name: 'api', action: 'deploy', fromVersion: '1.0.0', toVersion: '1.0.0', changes: ['missing'] });
});

test('depends_on-only changes are recorded without a runtime call; health changes reconfigure', async () => {
  const rt = new MemoryRuntime();
  const rec = new ServiceReconciler({ runtime: rt, ...quick });
  await rec.apply([spec('db'), spec('api')]);
  rt.calls.length = 0;
  const r = await rec.apply([spec('db'), spec('api', { dependsOn: ['db'] })]);
  assert.deepEqual(rt.calls, []);
  assert.deepEqual(r.applied.map((c) => [c.name, c.action]), [['api', 'apply']]);
  const h = await rec.apply([spec('db', { health: null }), spec('api', { dependsOn: ['db'] })]);
  assert.deepEqual(rt.calls, ['reconfigure db']);
  assert.deepEqual(h.applied[0]?.changes, ['health']);
});

test('calls queue: two applies never interleave', async () => {
  const rt = new MemoryRuntime();
  const rec = new ServiceReconciler({ runtime: rt, ...quick });
  const [a, b] = await Promise.all([rec.apply([spec('x')]), rec.apply([spec('x', { version: '2.0.0' })])]);
  assert.deepEqual(rt.calls, ['deploy x', 'upgrade x', '  from 1.0.0']);
  assert.equal(a.applied[0]?.action, 'deploy');
  assert.equal(b.applied[0]?.action, 'upgrade');
});
