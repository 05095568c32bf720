// createGitOps over real git repositories in temp dirs (file://) with a custom runtime: a small
// recording class implementing the five methods, keeping state in memory and turning services
// healthy a little after each call, so the test can see that dependents wait for health.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import diagnostics_channel from 'node:diagnostics_channel';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ServiceRuntime } from '../core/services/types.js';
import { isZvError } from '../errors/registry.js';
import { CHANNELS } from '../telemetry/events.js';
import { createGitOps, type GitOpsOptions } from '../index.js';
import { RecordingRuntime } from '../../test/support/recording-runtime.js';

let base = '';
let counter = 0;
const events: { channel: string; msg: Record<string, unknown> }[] = [];
const listeners = Object.values(CHANNELS).map((channel) => {
  const fn = (m: unknown): void => { events.push({ channel, msg: m as Record<string, unknown> }); };
  return { channel, fn };
});

before(() => {
  base = mkdtempSync(join(tmpdir(), 'zv-gitops-test-'));
  for (const l of listeners) diagnostics_channel.subscribe(l.channel, l.fn);
});
after(() => {
  for (const l of listeners) diagnostics_channel.unsubscribe(l.channel, l.fn);
  rmSync(base, { recursive: true, force: true });
});

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'commit.gpgsign=false', ...args], {
    cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' },
  }).trim();
}

type App = { version: string; depends_on?: string[]; env?: Record<string, unknown> };

/** Writes apps/<name>/app.json for each app (null: delete the folder) and commits; returns the SHA. */
function commit(repo: string, apps: Record<string, App | null>): string {
  for (const [name, app] of Object.entries(apps)) {
    const file = join(repo, 'apps', name, 'app.json');
    rmSync(dirname(file), { recursive: true, force: true });
    if (!app) continue;
    mkdirSync(dirname(file), { recursive: true });
    const spec = { name, source: { type: 'npm' }, health: { type: 'http', path: '/health', interval: 1000, timeout: 500 }, ...app };
    writeFileSync(file, JSON.stringify(spec, null, 2));
  }
  git(repo, 'add', '-A');
  git(repo, 'commit', '--quiet', '--allow-empty', '-m', 'change');
  return git(repo, 'rev-parse', 'HEAD');
}

function makeRepo(apps: Record<string, App | null>): { repo: string; url: string; head: string } {
  const repo = join(base, `repo-${++counter}`);
  mkdirSync(repo, { recursive: true });
  git(repo, 'init', '--quiet', '--initial-branch=main');
  const head = commit(repo, apps);
  return { repo, url: `file://${repo}`, head };
}

function gitops(url: string, runtime: ServiceRuntime, over: Partial<GitOpsOptions> = {}): ReturnType<typeof createGitOps> {
  return createGitOps({ repoUrl: url, runtime, dataDir: join(base, `data-${++counter}`), allowFileRepos: true, ...over });
}

const STACK: Record<string, App> = {
  db: { version: '1.0.0', env: { pool_size: 10 } },
  cache: { version: '1.0.0' },
  api: { version: '1.0.0', depends_on: ['db', 'cache'] },
  web: { version: '1.0.0', depends_on: ['api'] },
};

test('a custom runtime receives deploy, upgrade, reconfigure and remove calls in dependency order', async () => {
  const { repo, url, head } = makeRepo(STACK);
  const rt = new RecordingRuntime();
  const g = gitops(url, rt);
  assert.equal((await g.status()).status, 'pending');

  // Initial deploy: dependencies first, each dependent only after its dependencies are healthy.
  const first = await g.reconcile();
  assert.deepEqual(rt.log(), ['deploy cache', 'deploy db', 'deploy api', 'deploy web']);
  const at = (name: string): number => rt.calls.find((c) => c.name === name)?.at ?? NaN;
  for (const [dependent, deps] of [['api', ['db', 'cache']], ['web', ['api']]] as const) {
    for (const d of deps) assert.ok(at(dependent) >= (rt.healthyAt.get(d) ?? Infinity), `${dependent} deployed before ${d} was healthy`);
  }
  assert.deepEqual(rt.calls.find((c) => c.name === 'db')?.env, { POOL_SIZE: '10' });
  assert.deepEqual([first.commit, first.failed, first.blocked], [head, [], []]);
  assert.deepEqual((await g.getDesiredState()).map((s) => s.name).sort(), ['api', 'cache', 'db', 'web']);
  // web turns healthy (the runtime's timer): waited for, however slow the machine
  for (const end = Date.now() + 60_000; (await g.status()).healthyCount < 4 && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await g.status(), { status: 'synced', lastCommit: head, appCount: 4, healthyCount: 4 });
  assert.equal((await g.getAppStatus('web'))?.healthy, true);
  assert.equal(await g.getAppStatus('nope'), null);

  // Nothing changed: no calls.
  await g.sync();
  assert.equal(rt.calls.length, 4);

  // Version bump → upgrade from the old version; env change → reconfigure.
  commit(repo, { db: { version: '1.1.0', env: { pool_size: 10 } }, cache: { version: '1.0.0', env: { ttl: 60 } } });
  const second = await g.reconcile();
  assert.deepEqual(rt.log(4), ['reconfigure cache', 'upgrade db']);
  assert.deepEqual(rt.calls.find((c) => c.op === 'upgrade'), { op: 'upgrade', name: 'db', version: '1.1.0', oldVersion: '1.0.0', at: rt.calls[5]?.at });
  assert.deepEqual(rt.calls[4]?.env, { TTL: '60' });
  assert.deepEqual(second.applied.map((c) => [c.name, c.action, c.changes]), [['cache', 'reconfigure', ['env.TTL']], ['db', 'upgrade', ['version']]]);

  // Specs removed → removed, dependents first.
  const last = commit(repo, { web: null, api: null });
  await g.reconcile();
  assert.deepEqual(rt.log(6), ['remove web', 'remove api']);
  const status = await g.status();
  assert.deepEqual([status.lastCommit, status.appCount], [last, 2]);
});

test('a dependency cycle is a reconcile error naming it, and no runtime call is made', async () => {
  const { url } = makeRepo({ a: { version: '1.0.0', depends_on: ['b'] }, b: { version: '1.0.0', depends_on: ['a'] }, c: { version: '1.0.0' } });
  const rt = new RecordingRuntime();
  const g = gitops(url, rt);
  const from = events.length;
  await assert.rejects(g.reconcile(), (e: unknown) => {
    assert.ok(isZvError(e, 'MANIFEST_INVALID'));
    assert.match(e.message, /depends_on: cycle a → b → a/);
    return true;
  });
  assert.deepEqual(rt.calls, []);
  const status = await g.status();
  assert.equal(status.status, 'error');
  assert.match(status.error ?? '', /a → b → a/);
  const err = events.slice(from).find((e) => e.channel === CHANNELS.reconcileError);
  assert.ok(err && typeof err.msg.duration === 'number');
  assert.match(String(err.msg.error), /cycle/);
});

test('diagnostics_channel events carry durations and metadata', async () => {
  const { repo, url, head } = makeRepo({ db: { version: '1.0.0' }, api: { version: '1.0.0', depends_on: ['db'] } });
  const rt = new RecordingRuntime(5);
  const g = gitops(url, rt);
  const from = events.length;
  await g.reconcile();
  commit(repo, { db: { version: '2.0.0' }, api: null });
  const next = git(repo, 'rev-parse', 'HEAD');
  await g.reconcile();
  // The sync's steps and head lookups have their own tests (test/e2e/events.test.ts, telemetry).
  const seen = events.slice(from).filter((e) => e.msg.repo === url && e.channel !== CHANNELS.syncStep && e.channel !== CHANNELS.gitLsRemote);
  assert.deepEqual(seen.map((e) => `${e.channel}${e.msg.app ? ` ${String(e.msg.app)}` : ''}`), [
    'zerverless:reconcile:start', 'zerverless:git:pull',
    'zerverless:deploy:start db', 'zerverless:deploy:stop db', 'zerverless:deploy:start api', 'zerverless:deploy:stop api',
    'zerverless:reconcile:stop',
    'zerverless:reconcile:start', 'zerverless:git:pull',
    'zerverless:remove:start api', 'zerverless:remove:stop api', 'zerverless:upgrade:start db', 'zerverless:upgrade:stop db',
    'zerverless:reconcile:stop',
  ]);
  for (const e of seen.filter((x) => x.channel.endsWith(':stop') || x.channel === CHANNELS.gitPull)) {
    assert.equal(typeof e.msg.duration, 'number', e.channel);
    assert.ok((e.msg.duration as number) >= 0);
    assert.equal(e.msg.result, 'ok');
    assert.equal(e.msg.branch, 'main');
  }
  const stops = seen.filter((e) => e.channel === CHANNELS.reconcileStop);
  assert.deepEqual(stops.map((e) => [e.msg.commit, e.msg.applied]), [[head, 2], [next, 2]]);
  const up = seen.find((e) => e.channel === CHANNELS.upgradeStop);
  assert.deepEqual([up?.msg.from_version, up?.msg.to_version], ['1.0.0', '2.0.0']);
  assert.equal(seen.find((e) => e.channel === CHANNELS.deployStart)?.msg.version, '1.0.0');
});

test('start() reconciles, then polls the head and reconciles only when it moved; a restart re-reads the applied state', async () => {
  const { repo, url, head } = makeRepo({ db: { version: '1.0.0' } });
  const rt = new RecordingRuntime(5);
  const dataDir = join(base, `data-${++counter}`);
  const g = gitops(url, rt, { reconcileInterval: 50, dataDir });
  const from = events.length;
  await g.start();
  assert.deepEqual(rt.log(), ['deploy db']);
  await new Promise((r) => setTimeout(r, 200));
  const reconciles = (): number => events.slice(from).filter((e) => e.channel === CHANNELS.reconcileStart && e.msg.repo === url).length;
  assert.equal(reconciles(), 1, 'no reconcile while the head did not move');
  const moved = commit(repo, { db: { version: '1.0.1' } });
  for (const end = Date.now() + 60_000; rt.calls.length < 2 && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(rt.log(), ['deploy db', 'upgrade db']);
  await g.stop();
  assert.equal((await g.status()).lastCommit, moved);
  assert.notEqual(moved, head);

  // A new facade on the same data dir and runtime: nothing to redo.
  const again = gitops(url, rt, { dataDir });
  assert.equal((await again.status()).lastCommit, moved);
  await again.reconcile();
  assert.deepEqual(rt.log(2), []);
});

test('deploy, upgrade and remove by hand; remove refuses a service others depend on', async () => {
  const { url } = makeRepo({ db: { version: '1.0.0' }, api: { version: '1.0.0', depends_on: ['db'] } });
  const rt = new RecordingRuntime(5);
  const g = gitops(url, rt);
  await g.reconcile();
  await g.upgrade('db', '3.0.0');
  await g.deploy({ name: 'extra', version: '0.1.0', dependsOn: ['db'] });
  assert.deepEqual(rt.log(2), ['upgrade db', 'deploy extra']);
  assert.equal(rt.calls[2]?.oldVersion, '1.0.0');
  await assert.rejects(g.remove('db'), /cannot remove db: api, extra depend on it/);
  await assert.rejects(g.remove('ghost'), (e: unknown) => isZvError(e, 'APP_NOT_FOUND'));
  await assert.rejects(g.upgrade('ghost', '1.0.0'), (e: unknown) => isZvError(e, 'APP_NOT_FOUND'));
  await g.remove('extra');
  assert.deepEqual(rt.log(4), ['remove extra']);
  assert.equal((await g.getAppStatus('db'))?.spec?.version, '3.0.0');
  // git wins again at the next reconcile
  await g.reconcile();
  assert.deepEqual(rt.log(5), ['upgrade db']);
});

test('createGitOps refuses file:// repositories unless allowed, and a missing apps folder is an error', async () => {
  assert.throws(() => createGitOps({ repoUrl: 'file:///tmp/x', runtime: new RecordingRuntime() }), (e: unknown) => isZvError(e, 'INVALID_REPO_URL'));
  assert.throws(() => createGitOps({ repoUrl: 'https://example.com/r.git', appsDir: '../x', runtime: new RecordingRuntime() }), /appsDir/);
  const { url } = makeRepo({ db: { version: '1.0.0' } });
  const g = gitops(url, new RecordingRuntime(), { appsDir: 'services' });
  await assert.rejects(g.reconcile(), (e: unknown) => isZvError(e, 'MANIFEST_NOT_FOUND') && /services\/ does not exist/.test(e.message));
});

test('without a runtime, the Node runtime is loaded on first use and closed by stop()', async () => {
  const { repo, url } = makeRepo({});
  mkdirSync(join(repo, 'apps'), { recursive: true });
  writeFileSync(join(repo, 'apps', '.keep'), '');
  git(repo, 'add', '-A');
  git(repo, 'commit', '--quiet', '-m', 'empty apps');
  const g = createGitOps({ repoUrl: url, dataDir: join(base, `data-${++counter}`), allowFileRepos: true, reconcileInterval: 60_000 });
  await g.start();
  assert.deepEqual(await g.getCurrentState(), []);
  assert.deepEqual(await g.status(), { status: 'synced', lastCommit: git(repo, 'rev-parse', 'HEAD'), appCount: 0, healthyCount: 0 });
  await g.stop();
});

test('a runtime without getCurrentState (optional in bc_gitops): status() works and nothing is redeployed for want of a state', async () => {
  const { repo, url, head } = makeRepo({ db: { version: '1.0.0' }, api: { version: '1.0.0', depends_on: ['db'] } });
  const calls: string[] = [];
  const minimal = {
    deploy: async (s: { name: string; version: string }) => void calls.push(`deploy ${s.name}@${s.version}`),
    upgrade: async (s: { name: string; version: string }, from: string) => void calls.push(`upgrade ${s.name} ${from}→${s.version}`),
    reconfigure: async (s: { name: string }) => void calls.push(`reconfigure ${s.name}`),
    remove: async (name: string) => void calls.push(`remove ${name}`),
  } as unknown as ServiceRuntime;
  const g = gitops(url, minimal, { healthTimeout: 2_000 });
  const first = await g.reconcile();
  assert.deepEqual([first.failed, first.blocked], [[], []]);
  assert.deepEqual(calls, ['deploy db@1.0.0', 'deploy api@1.0.0']);
  const st = await g.status();
  assert.equal(st.lastCommit, head);
  assert.equal(st.appCount, 2);
  assert.deepEqual(await g.getCurrentState(), []);
  assert.equal((await g.getAppStatus('db'))?.spec?.version, '1.0.0');
  // Nothing changed in git: no call (the applied specs stand for what runs).
  await g.reconcile();
  assert.equal(calls.length, 2);
  commit(repo, { db: { version: '1.1.0' } });
  await g.reconcile();
  assert.deepEqual(calls.slice(2), ['upgrade db 1.0.0→1.1.0']);
});

test('the default Node runtime deploys a service from a file:// git source when allowFileRepos is set; list env values arrive as JSON', async () => {
  const svc = join(base, `svc-${++counter}`);
  mkdirSync(svc, { recursive: true });
  git(svc, 'init', '--quiet', '--initial-branch=main');
  writeFileSync(join(svc, 'package.json'), JSON.stringify({ name: 'web', version: '1.0.0', private: true, scripts: { start: 'node server.js' } }));
  writeFileSync(join(svc, 'server.js'), `require('node:http').createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(200); return res.end('ok'); }
  res.end(process.env.GREETING + ' ' + process.env.TAGS);
}).listen(Number(process.env.PORT), '127.0.0.1');\n`);
  git(svc, 'add', '-A');
  git(svc, 'commit', '--quiet', '-m', 'service');
  const { repo, url } = makeRepo({});
  mkdirSync(join(repo, 'apps', 'web'), { recursive: true });
  writeFileSync(join(repo, 'apps', 'web', 'app.json'), JSON.stringify({
    name: 'web', version: '1.0.0', source: { type: 'git', url: `file://${svc}`, ref: 'main' },
    env: { greeting: 'hello', tags: ['a', 'b'] }, health: { type: 'http', path: '/health', interval: 500, timeout: 2000 },
  }));
  git(repo, 'add', '-A');
  git(repo, 'commit', '--quiet', '-m', 'web');
  const g = createGitOps({ repoUrl: url, dataDir: join(base, `data-${++counter}`), allowFileRepos: true, reconcileInterval: 60_000, healthTimeout: 60_000 });
  try {
    const r = await g.reconcile();
    assert.deepEqual([r.failed, r.blocked], [[], []]);
    const [state] = await g.getCurrentState();
    assert.equal(state?.health, 'healthy', JSON.stringify(state));
    const res = await fetch(`http://127.0.0.1:${state?.port}/`);
    assert.equal(await res.text(), 'hello ["a","b"]');
    assert.equal((await g.status()).status, 'synced');
  } finally {
    await g.stop();
  }
});
