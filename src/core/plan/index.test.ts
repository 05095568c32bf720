// Unit tests of planApplication (the one plan of an application: functions, static files, the site
// as a whole, services, one summary), on desired and deployed states made by small builders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeployedState, DesiredFunction, DesiredState, StaticSite } from '../desired.js';
import type { ServiceSpec } from '../services/types.js';
import { isNoop, planApplication } from './index.js';
import type { Plan } from './index.js';

// ---- builders ---------------------------------------------------------------------------------

const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);

/** A Lua function at `path`; its hash follows whatever the test sets (tests set `hash` when they mean a change). */
function fn(path: string, over: Partial<DesiredFunction> = {}): DesiredFunction {
  const base: DesiredFunction = {
    path, runtime: 'lua', code: `function handle() return "${path}" end`, filename: 'zerverless.yaml',
    timeoutMs: 30_000, memoryMb: 128, env: {}, hash: `h-${path}`,
  };
  return { ...base, ...over };
}

function site(files: Record<string, string>, dir = 'static'): StaticSite {
  return { dir, files: Object.entries(files).map(([path, hash]) => ({ path, hash, size: hash.length })) };
}

function state(commit: string, functions: DesiredFunction[] = [], stat: StaticSite | null = null): DesiredState {
  return { commit, functions, static: stat, warnings: [] };
}

function svc(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name, version: '1.0.0', source: { type: 'npm' }, env: { POOL_SIZE: '10' },
    health: { type: 'http', path: '/health', interval: 30_000, timeout: 5_000 },
    dependsOn: [], route: null, port: null, file: `apps/${name}/app.yaml`, ...over,
  };
}

const deployed = (s: DeployedState | null, services: ServiceSpec[] = []): { state: DeployedState | null; services: ServiceSpec[] } => ({ state: s, services });
const action = (plan: Plan, path: string): string | undefined => plan.functions.find((f) => f.path === path)?.action;

// ---- functions --------------------------------------------------------------------------------

test('first sync (nothing deployed): every function, file and service is a create, the site too', () => {
  const desired = state(C1, [fn('/b'), fn('/a')], site({ 'index.html': 'x1', 'css/site.css': 'x2' }));
  const plan = planApplication({ state: desired, services: [svc('web')] }, deployed(null));
  assert.equal(plan.fromCommit, null);
  assert.equal(plan.toCommit, C1);
  assert.deepEqual(plan.functions, [
    { path: '/a', runtime: 'lua', action: 'create', toHash: 'h-/a' },
    { path: '/b', runtime: 'lua', action: 'create', toHash: 'h-/b' },
  ]);
  assert.deepEqual(plan.static, [{ path: 'css/site.css', action: 'create' }, { path: 'index.html', action: 'create' }]);
  assert.equal(plan.staticSite, 'create');
  assert.deepEqual(plan.services, [{ name: 'web', action: 'deploy', toVersion: '1.0.0' }]);
  assert.deepEqual(plan.summary, { create: 5, update: 0, delete: 0, unchanged: 0 });
  assert.equal(isNoop(plan), false);
});

test('first sync of an empty commit: an empty plan that is a no-op', () => {
  const plan = planApplication({ state: state(C1) }, deployed(null));
  assert.deepEqual(plan, { fromCommit: null, toCommit: C1, functions: [], static: [], staticSite: null, services: [], summary: { create: 0, update: 0, delete: 0, unchanged: 0 } });
  assert.ok(isNoop(plan));
});

test('functions: create, update, delete and unchanged by path, sorted by path', () => {
  const before = state(C1, [fn('/keep'), fn('/change'), fn('/gone')]);
  const after = state(C2, [fn('/new'), fn('/change', { code: 'function handle() return "v2" end', timeoutMs: 5_000, hash: 'h2' }), fn('/keep')]);
  const plan = planApplication({ state: after }, deployed(before));
  assert.equal(plan.fromCommit, C1);
  assert.deepEqual(plan.functions.map((f) => [f.path, f.action]), [['/change', 'update'], ['/gone', 'delete'], ['/keep', 'unchanged'], ['/new', 'create']]);
  assert.deepEqual(plan.functions.find((f) => f.path === '/change'), {
    path: '/change', runtime: 'lua', action: 'update', fromHash: 'h-/change', toHash: 'h2', changes: ['code', 'timeout'],
  });
  assert.deepEqual(plan.functions.find((f) => f.path === '/gone'), { path: '/gone', runtime: 'lua', action: 'delete', fromHash: 'h-/gone' });
  assert.deepEqual(plan.summary, { create: 1, update: 1, delete: 1, unchanged: 1 });
});

test('a function is unchanged when its hash is, whatever else the builder says (the hash is the identity)', () => {
  const plan = planApplication({ state: state(C2, [fn('/f', { timeoutMs: 1 })]) }, deployed(state(C1, [fn('/f')])));
  assert.equal(action(plan, '/f'), 'unchanged');
  assert.ok(isNoop(plan));
});

test('an update names what changed: runtime, memory, port, image, envFrom', () => {
  const docker = (over: Partial<DesiredFunction>): DesiredFunction => fn('/d', {
    runtime: 'docker', code: 'FROM x', port: 8080,
    build: { dockerfile: 'Dockerfile', context: '.', contextHash: 'c1', capabilities: [] }, ...over,
  });
  const before = state(C1, [docker({}), fn('/l')]);
  const after = state(C2, [
    docker({ hash: 'd2', memoryMb: 256, port: 9090, build: { dockerfile: 'Dockerfile', context: '.', contextHash: 'c2', capabilities: [] } }),
    fn('/l', { runtime: 'js', language: 'typescript', hash: 'l2', secrets: [{ file: 'secrets/a.env.age', data: 'QQ==', digests: {} }] }),
  ]);
  const plan = planApplication({ state: after }, deployed(before));
  assert.deepEqual(plan.functions.find((f) => f.path === '/d')?.changes, ['memory', 'port', 'image']);
  assert.deepEqual(plan.functions.find((f) => f.path === '/l')?.changes, ['runtime', 'envFrom']);
});

test('env changes are named by key, never by value', () => {
  const before = state(C1, [fn('/f', { env: { KEEP: 'same', DB_PASSWORD: 'old-secret-value', GONE: 'bye-value' } })]);
  const after = state(C2, [fn('/f', { hash: 'h2', env: { KEEP: 'same', DB_PASSWORD: 'new-secret-value', ADDED: 'hello-value' } })]);
  const plan = planApplication({ state: after }, deployed(before));
  assert.deepEqual(plan.functions[0]?.changes, ['env.ADDED added', 'env.DB_PASSWORD changed', 'env.GONE removed']);
  const json = JSON.stringify(plan);
  for (const value of ['old-secret-value', 'new-secret-value', 'bye-value', 'hello-value']) assert.ok(!json.includes(value), `${value} is not in the plan`);
});

// ---- static files and the site ----------------------------------------------------------------

test('static files: create, update, delete by path, unchanged ones counted; the site is an update', () => {
  const before = state(C1, [], site({ 'index.html': 'a', 'old.html': 'b', 'same.css': 'c' }));
  const after = state(C2, [], site({ 'index.html': 'a2', 'new.html': 'd', 'same.css': 'c' }));
  const plan = planApplication({ state: after }, deployed(before));
  assert.deepEqual(plan.static, [
    { path: 'index.html', action: 'update' }, { path: 'new.html', action: 'create' },
    { path: 'old.html', action: 'delete' },
  ]);
  assert.equal(plan.staticSite, 'update');
  assert.deepEqual(plan.summary, { create: 1, update: 1, delete: 1, unchanged: 1 });
});

test('the site as a whole: kept, moved to another folder, removed, added', () => {
  const files = { 'index.html': 'a' };
  const same = planApplication({ state: state(C2, [], site(files)) }, deployed(state(C1, [], site(files))));
  assert.equal(same.staticSite, 'unchanged');
  assert.ok(isNoop(same));
  const moved = planApplication({ state: state(C2, [], site(files, 'public')) }, deployed(state(C1, [], site(files))));
  assert.equal(moved.staticSite, 'update', 'another folder with the same files is an update of the site');
  assert.deepEqual([moved.static, moved.summary.unchanged], [[], 1]);
  const removed = planApplication({ state: state(C2) }, deployed(state(C1, [], site(files))));
  assert.equal(removed.staticSite, 'delete');
  assert.deepEqual(removed.static, [{ path: 'index.html', action: 'delete' }]);
  assert.equal(isNoop(removed), false);
  const added = planApplication({ state: state(C2, [], site({})) }, deployed(state(C1)));
  assert.equal(added.staticSite, 'create', 'an empty site is still a site');
  assert.deepEqual(added.summary, { create: 0, update: 0, delete: 0, unchanged: 0 });
  assert.equal(isNoop(added), false, 'setting up a site (even empty) changes what is served');
  const none = planApplication({ state: state(C2) }, deployed(state(C1)));
  assert.equal(none.staticSite, null);
});

// ---- services ---------------------------------------------------------------------------------

test('services: deploy, upgrade, reconfigure, apply, remove and unchanged, sorted by name', () => {
  const current = [svc('same'), svc('up'), svc('env'), svc('health'), svc('gone', { version: '3.1.0' })];
  const desired = [
    svc('same'),
    svc('up', { version: '2.0.0' }),
    svc('env', { env: { POOL_SIZE: '20' } }),
    svc('health', { health: { type: 'tcp', interval: 10_000, timeout: 1_000 } }),
    svc('new'),
  ];
  const plan = planApplication({ state: state(C2), services: desired }, deployed(state(C1), current));
  assert.deepEqual(plan.services, [
    { name: 'env', action: 'reconfigure', fromVersion: '1.0.0', toVersion: '1.0.0', changes: ['env.POOL_SIZE'] },
    { name: 'gone', action: 'remove', fromVersion: '3.1.0' },
    { name: 'health', action: 'apply', fromVersion: '1.0.0', toVersion: '1.0.0', changes: ['health'] },
    { name: 'new', action: 'deploy', toVersion: '1.0.0' },
    { name: 'same', action: 'unchanged', fromVersion: '1.0.0', toVersion: '1.0.0' },
    { name: 'up', action: 'upgrade', fromVersion: '1.0.0', toVersion: '2.0.0', changes: ['version'] },
  ]);
  // deploy → create; upgrade, reconfigure, apply → update; remove → delete; unchanged → unchanged
  assert.deepEqual(plan.summary, { create: 1, update: 3, delete: 1, unchanged: 1 });
  assert.equal(isNoop(plan), false);
});

test('a service env change names the key, never the value', () => {
  const plan = planApplication(
    { state: state(C2), services: [svc('db', { env: { PASSWORD: 'hunter2-new', NEW_KEY: 'v-added' } })] },
    deployed(state(C1), [svc('db', { env: { PASSWORD: 'hunter2-old', POOL_SIZE: '10' } })]),
  );
  assert.deepEqual(plan.services?.[0]?.changes, ['env.NEW_KEY', 'env.PASSWORD', 'env.POOL_SIZE']);
  const json = JSON.stringify(plan);
  for (const value of ['hunter2-new', 'hunter2-old', 'v-added']) assert.ok(!json.includes(value), `${value} is not in the plan`);
});

test('services absent on both sides give an empty list; only unchanged services make a no-op', () => {
  assert.deepEqual(planApplication({ state: state(C2) }, { state: state(C1) }).services, []);
  const plan = planApplication({ state: state(C2), services: [svc('a')] }, deployed(state(C1), [svc('a')]));
  assert.deepEqual(plan.summary, { create: 0, update: 0, delete: 0, unchanged: 1 });
  assert.ok(isNoop(plan));
  const removal = planApplication({ state: state(C2) }, deployed(state(C1), [svc('a')]));
  assert.deepEqual(removal.services, [{ name: 'a', action: 'remove', fromVersion: '1.0.0' }]);
  assert.equal(isNoop(removal), false);
});

// ---- all kinds together -----------------------------------------------------------------------

function mixed(): { desired: Parameters<typeof planApplication>[0]; current: Parameters<typeof planApplication>[1] } {
  return {
    desired: {
      state: state(C2, [fn('/z', { hash: 'z2' }), fn('/new'), fn('/same')], site({ 'a.html': '1', 'b.html': '2b' })),
      services: [svc('web', { version: '2.0.0' }), svc('db'), svc('cache')],
    },
    current: {
      state: state(C1, [fn('/z'), fn('/same'), fn('/old')], site({ 'a.html': '1', 'b.html': '2', 'c.html': '3' })),
      services: [svc('web'), svc('db'), svc('queue')],
    },
  };
}

test('the summary counts every kind: functions, static files and services', () => {
  const { desired, current } = mixed();
  const plan = planApplication(desired, current);
  // functions: /new create, /z update, /old delete, /same unchanged
  // static: b.html update, c.html delete, a.html unchanged
  // services: cache deploy, web upgrade, queue remove, db unchanged
  assert.deepEqual(plan.summary, { create: 2, update: 3, delete: 3, unchanged: 3 });
  assert.equal(plan.staticSite, 'update');
});

test('deterministic: the same input gives the same JSON, whatever the input order', () => {
  const { desired, current } = mixed();
  const one = JSON.stringify(planApplication(desired, current));
  assert.equal(JSON.stringify(planApplication(mixed().desired, mixed().current)), one);
  const shuffled = {
    state: { ...desired.state, functions: [...desired.state.functions].reverse(), static: site({ 'b.html': '2b', 'a.html': '1' }) },
    services: [...(desired.services ?? [])].reverse(),
  };
  const shuffledCurrent = { state: current.state && { ...current.state, functions: [...current.state.functions].reverse() }, services: [...(current.services ?? [])].reverse() };
  assert.equal(JSON.stringify(planApplication(shuffled, shuffledCurrent)), one);
});

test('planApplication does not change its inputs', () => {
  const { desired, current } = mixed();
  const before = JSON.stringify({ desired, current });
  planApplication(desired, current);
  assert.equal(JSON.stringify({ desired, current }), before);
});
