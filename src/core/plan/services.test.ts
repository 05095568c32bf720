// Unit tests of the service plan: one case per action, what `changes` lists, and the order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceSpec } from '../services/types.js';
import { canonical, isServicePlanNoop, planServices, summarizeServicePlan } from './services.js';

function spec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    version: '1.0.0',
    source: { type: 'npm' },
    env: { PORT_HINT: '1', POOL_SIZE: '10' },
    health: { type: 'http', path: '/health', interval: 30000, timeout: 5000 },
    dependsOn: [],
    route: null,
    port: null,
    file: `apps/${name}/app.yaml`,
    ...over,
  };
}

test('a new name is a deploy', () => {
  assert.deepEqual(planServices([spec('web')], []), [{ name: 'web', action: 'deploy', toVersion: '1.0.0' }]);
});

test('a name gone is a remove', () => {
  assert.deepEqual(planServices([], [spec('web', { version: '2.0.0' })]), [{ name: 'web', action: 'remove', fromVersion: '2.0.0' }]);
});

test('the same spec is unchanged, even read from another file or with keys in another order', () => {
  const a = spec('web');
  const b = spec('web', { file: 'apps/web/app.config', env: { POOL_SIZE: '10', PORT_HINT: '1' }, health: { timeout: 5000, interval: 30000, path: '/health', type: 'http' } });
  assert.deepEqual(planServices([b], [a]), [{ name: 'web', action: 'unchanged', fromVersion: '1.0.0', toVersion: '1.0.0' }]);
  assert.ok(isServicePlanNoop(planServices([b], [a])));
});

test('a version change is an upgrade', () => {
  assert.deepEqual(planServices([spec('web', { version: '2.0.0' })], [spec('web')]), [
    { name: 'web', action: 'upgrade', fromVersion: '1.0.0', toVersion: '2.0.0', changes: ['version'] },
  ]);
});

test('a source change is an upgrade even at the same version', () => {
  const plan = planServices([spec('web', { source: { type: 'git', url: 'https://example.com/r.git', ref: 'v1' } })], [spec('web')]);
  assert.equal(plan[0]?.action, 'upgrade');
  assert.deepEqual(plan[0]?.changes, ['source']);
  const ref = planServices(
    [spec('web', { source: { type: 'git', url: 'https://example.com/r.git', ref: 'v2' } })],
    [spec('web', { source: { type: 'git', url: 'https://example.com/r.git', ref: 'v1' } })],
  );
  assert.equal(ref[0]?.action, 'upgrade');
});

test('an upgrade with env changes lists both; upgrade wins', () => {
  const plan = planServices([spec('web', { version: '2.0.0', env: { POOL_SIZE: '20' } })], [spec('web')]);
  assert.equal(plan[0]?.action, 'upgrade');
  assert.deepEqual(plan[0]?.changes, ['version', 'env.POOL_SIZE', 'env.PORT_HINT']);
});

test('env keys added, changed or removed are a reconfigure naming the keys', () => {
  const added = planServices([spec('web', { env: { PORT_HINT: '1', POOL_SIZE: '10', DEBUG: 'true' } })], [spec('web')]);
  assert.deepEqual(added, [{ name: 'web', action: 'reconfigure', fromVersion: '1.0.0', toVersion: '1.0.0', changes: ['env.DEBUG'] }]);
  const changed = planServices([spec('web', { env: { PORT_HINT: '1', POOL_SIZE: '11' } })], [spec('web')]);
  assert.deepEqual(changed[0]?.changes, ['env.POOL_SIZE']);
  assert.equal(changed[0]?.action, 'reconfigure');
  const removed = planServices([spec('web', { env: { POOL_SIZE: '10' } })], [spec('web')]);
  assert.deepEqual(removed[0]?.changes, ['env.PORT_HINT']);
  assert.equal(removed[0]?.action, 'reconfigure');
});

test('health, depends_on, route and port changes are applied, each named', () => {
  const health = planServices([spec('web', { health: { type: 'tcp', interval: 30000, timeout: 5000 } })], [spec('web')]);
  assert.deepEqual(health[0], { name: 'web', action: 'apply', fromVersion: '1.0.0', toVersion: '1.0.0', changes: ['health'] });
  const none = planServices([spec('web', { health: null })], [spec('web')]);
  assert.deepEqual(none[0]?.changes, ['health']);
  const deps = planServices([spec('db'), spec('web', { dependsOn: ['db'] })], [spec('db'), spec('web')]);
  assert.deepEqual(deps[1], { name: 'web', action: 'apply', fromVersion: '1.0.0', toVersion: '1.0.0', changes: ['depends_on'] });
  const route = planServices([spec('web', { route: '/web' })], [spec('web')]);
  assert.deepEqual(route[0]?.changes, ['route']);
  const port = planServices([spec('web', { port: 8080 })], [spec('web')]);
  assert.deepEqual(port[0]?.changes, ['port']);
  const all = planServices([spec('web', { port: 8080, route: '/w', health: null, dependsOn: ['x'] })], [spec('web')]);
  assert.deepEqual(all[0]?.changes, ['health', 'depends_on', 'route', 'port']);
  assert.equal(all[0]?.action, 'apply');
});

test('depends_on order and repeats do not count', () => {
  const plan = planServices([spec('web', { dependsOn: ['b', 'a', 'a'] })], [spec('web', { dependsOn: ['a', 'b'] })]);
  assert.equal(plan[0]?.action, 'unchanged');
});

test('env changes beat apply changes', () => {
  const plan = planServices([spec('web', { route: '/w', env: {} })], [spec('web')]);
  assert.equal(plan[0]?.action, 'reconfigure');
  assert.deepEqual(plan[0]?.changes, ['env.POOL_SIZE', 'env.PORT_HINT', 'route']);
});

test('the plan is sorted by name whatever the input order, removals included', () => {
  const desired = [spec('zeta'), spec('alpha', { version: '2.0.0' }), spec('mid')];
  const current = [spec('gone'), spec('alpha'), spec('zeta')];
  const plan = planServices(desired, current);
  assert.deepEqual(plan.map((c) => `${c.name}:${c.action}`), ['alpha:upgrade', 'gone:remove', 'mid:deploy', 'zeta:unchanged']);
  assert.deepEqual(planServices([...desired].reverse(), [...current].reverse()), plan);
  assert.deepEqual(summarizeServicePlan(plan), { deploy: 1, upgrade: 1, reconfigure: 0, apply: 0, remove: 1, unchanged: 1 });
  assert.ok(!isServicePlanNoop(plan));
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(plan)));
});

test('canonical ignores key order and undefined members', () => {
  assert.equal(canonical({ b: 1, a: [1, { d: undefined, c: 'x' }] }), canonical({ a: [1, { c: 'x' }], b: 1 }));
  assert.notEqual(canonical({ a: 1 }), canonical({ a: '1' }));
});
