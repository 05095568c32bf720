// Drift repair (PRODUCT.md §11) with real parts: a docker function's container stopped or removed by
// hand is started again or made anew and answers again; static blobs deleted or overwritten are
// restored from a snapshot of the deployed commit (read from the git objects, nothing kept per commit); a
// service the runtime no longer runs is deployed again, while a killed process is left to the
// supervisor. Each repair is published on zerverless:drift:repair; describeRepairs words the history.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { Deployer, type AppIdentity } from '../apply/functions.js';
import { ServiceHost } from '../apply/services/host.js';
import type { DeployedState } from '../core/desired.js';
import { planApplication } from '../core/plan/index.js';
import { DockerRuntime } from '../runtimes/docker/index.js';
import { GitSource } from '../sources/git/index.js';
import { TreeDesiredReader } from '../sources/desired-reader.js';
import { FsBlobStore } from '../store/blobs/fs.js';
import { ServingTable } from '../serving/table.js';
import { CHANNELS } from '../telemetry/events.js';
import { silentLogger } from '../telemetry/log.js';
import { TestRepo } from '../../test/support/repo.js';
import { ensureBaseImage, removeNetworksOf, requireDocker } from '../../test/support/docker.js';
import { alive, makeSpec, runtime as serviceRuntime, serviceFiles, until, viaUpstream } from '../runtimes/node-service/fixtures.test.js';
import type { RuntimeSet } from '../runtimes/types.js';
import type { AppliedServices } from '../store/types.js';
import { describeRepairs, repairDrift, type DriftApp, type DriftRepair } from './drift.js';

const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

/** Collects zerverless:drift:repair events while a test runs. */
function recordEvents(): { events: Record<string, unknown>[]; stop(): void } {
  const events: Record<string, unknown>[] = [];
  const on = (m: unknown): void => {
    events.push(m as Record<string, unknown>);
  };
  diagnostics_channel.subscribe(CHANNELS.driftRepair, on);
  return { events, stop: () => diagnostics_channel.unsubscribe(CHANNELS.driftRepair, on) };
}

/** One application synced through the real pipeline: git snapshot → tree reader → plan → Deployer. */
class Pipeline {
  readonly serving = new ServingTable();
  readonly deployer: Deployer;
  readonly source: GitSource;
  readonly blobs: FsBlobStore;
  deployed: DeployedState | null = null;

  constructor(readonly dataDir: string, runtimes: RuntimeSet) {
    this.source = new GitSource({ dataDir, allowFileRepos: true });
    this.blobs = new FsBlobStore(join(dataDir, 'blobs'));
    this.deployer = new Deployer(runtimes, this.blobs, this.serving, silentLogger);
  }

  async sync(app: DriftApp): Promise<void> {
    const ref = { repoURL: app.source.repoURL, branch: app.source.branch, namespace: app.namespace };
    const snap = await this.source.snapshot(ref);
    const read = await new TreeDesiredReader().read(snap, { path: app.source.path, namespace: app.namespace, commit: snap.revision, deployed: this.deployed });
    const plan = planApplication({ state: read.state }, { state: this.deployed });
    const prepared = await this.deployer.prepare(app, read, plan);
    this.deployer.commit(app, prepared);
    this.deployed = read.state;
  }

  repair(app: DriftApp, host: ServiceHost | null = null): Promise<DriftRepair[]> {
    return repairDrift(app, { deployer: this.deployer, host, source: this.source, deployed: this.deployed, logger: silentLogger });
  }
}

const identity = (namespace: string, name: string, repo: TestRepo, path = ''): DriftApp & AppIdentity => ({
  key: `${namespace}/${name}`, name, namespace, source: { repoURL: repo.url, branch: 'main', path },
});

// Awaited before any suite is declared: node:test starts running the suites declared so far while
// the module waits, and a suite declared after that await can be left out of the run.
const noDocker = await requireDocker();

describe('describeRepairs', () => {
  it('words a drift pass for the history: repaired first, then failures with their reason', () => {
    const repairs: DriftRepair[] = [
      { kind: 'static', target: 'logo.svg', problem: 'blob corrupt', result: 'failed', message: 'not in commit abc' },
      { kind: 'function', target: '/api', problem: 'container removed', result: 'repaired' },
      { kind: 'service', target: 'web', problem: 'process gone', result: 'repaired' },
    ];
    assert.equal(describeRepairs(repairs),
      'drift repaired 2, failed 1: function /api: container removed, repaired; service web: process gone, repaired; ' +
      'static file logo.svg: blob corrupt, repair failed: not in commit abc');
    assert.equal(describeRepairs([]), 'drift: nothing to repair');
  });
});

describe('drift repair: static blobs', () => {
  let dir: string;
  let repo: TestRepo;
  let p: Pipeline;
  const app = (): DriftApp & AppIdentity => identity('drift-static', 'site', repo, 'web');
  const big = 'x'.repeat(3 * 1024 * 1024 + 17);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-drift-static-'));
    repo = await TestRepo.create({
      'web/zerverless.yaml': 'apiVersion: zerverless.io/v1\nkind: Application\nmetadata: {name: site}\nspec:\n  static: {dir: public}\n',
      'web/public/index.html': '<h1>home</h1>\n',
      'web/public/css/site.css': 'body { color: red }\n',
      'web/public/copy.html': '<h1>home</h1>\n',
      'web/public/big.bin': big,
    });
    p = new Pipeline(dir, new Map());
    await p.sync(app());
  });
  after(async () => {
    await repo.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds nothing while every blob is intact', async () => {
    assert.deepEqual(await p.deployer.checkDrift(app()), []);
    assert.deepEqual(await p.repair(app()), []);
  });

  it('restores a deleted blob and an overwritten one from the deployed commit, also after a prune', async () => {
    const rec = recordEvents();
    try {
      const index = p.blobs.path(sha('<h1>home</h1>\n'));
      const css = p.blobs.path(sha('body { color: red }\n'));
      const bigPath = p.blobs.path(sha(big));
      await unlink(index);
      await writeFile(css, 'body { color: blue }\n'); // other bytes
      // Same size, other bytes: only the hash tells.
      await writeFile(bigPath, `y${big.slice(1)}`);
      await p.source.prune(new Set());
      // A new commit on the branch changes nothing: the deployed commit's bytes come back.
      await repo.commit({ 'web/public/css/site.css': 'body { color: green }\n' });

      const found = await p.deployer.checkDrift(app());
      assert.deepEqual(found.map((f) => [f.target, f.problem]), [['big.bin', 'blob corrupt'], ['copy.html', 'blob missing'], ['css/site.css', 'blob corrupt']]);
      // copy.html and index.html share one blob: one finding names both.
      assert.match(found[1]?.detail ?? '', /also index\.html/);

      const repairs = await p.repair(app());
      assert.deepEqual(repairs.map((r) => [r.kind, r.problem, r.result]).sort(), [
        ['static', 'blob corrupt', 'repaired'], ['static', 'blob corrupt', 'repaired'], ['static', 'blob missing', 'repaired'],
      ]);
      assert.equal(sha(await readFile(index)), sha('<h1>home</h1>\n'));
      assert.equal(await readFile(css, 'utf8'), 'body { color: red }\n');
      assert.equal(sha(await readFile(bigPath)), sha(big));
      assert.deepEqual(await p.deployer.checkDrift(app()), []);

      assert.equal(rec.events.length, 3);
      for (const e of rec.events) {
        assert.equal(e.app, 'site');
        assert.equal(e.namespace, 'drift-static');
        assert.equal(e.kind, 'static');
        assert.equal(e.result, 'repaired');
      }
      assert.match(describeRepairs(repairs), /^drift repaired 3: static file /);
    } finally {
      rec.stop();
    }
  });

  it('reports a blob it cannot restore as failed and keeps going', async () => {
    const css = p.blobs.path(sha('body { color: red }\n'));
    await unlink(css);
    const saved = p.deployed;
    // The deployed state points at a commit the repository does not have.
    p.deployed = saved && { ...saved, commit: 'f'.repeat(40) };
    try {
      const repairs = await p.repair(app());
      assert.equal(repairs.length, 1);
      assert.equal(repairs[0]?.result, 'failed');
      assert.equal(repairs[0]?.problem, 'blob missing');
      assert.ok(repairs[0]?.message, 'the reason is given');
    } finally {
      p.deployed = saved;
    }
    const again = await p.repair(app());
    assert.deepEqual(again.map((r) => r.result), ['repaired']);
    assert.equal(await readFile(css, 'utf8'), 'body { color: red }\n');
  });
});

const DOCKERFILE = `FROM zv-busybox:test
COPY www /www
CMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]
`;

describe('drift repair: docker functions', { skip: noDocker, timeout: 300_000 }, () => {
  const docker = new Dockerode();
  const namespace = `drift-${randomBytes(3).toString('hex')}`;
  let dir: string;
  let repo: TestRepo;
  let rt: DockerRuntime;
  let p: Pipeline;
  const app = (): DriftApp & AppIdentity => identity(namespace, 'dock', repo);
  const container = (): string => p.deployer.describe(app()).get('/www')?.container ?? '';
  const answer = async (): Promise<string> => {
    const fn = p.serving.getApp(app().key)?.functions.get('/www')?.handle.fn;
    const up = fn?.upstream?.();
    if (!up) return 'no upstream';
    const res = await fetch(`http://${up.host}:${up.port}/index.html`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(30_000) });
    return res.text();
  };

  before(async () => {
    await ensureBaseImage(docker);
    dir = await mkdtemp(join(tmpdir(), 'zv-drift-docker-'));
    repo = await TestRepo.create({
      'zerverless.yaml': 'apiVersion: zerverless.io/v1\nkind: Application\nmetadata: {name: dock}\nspec:\n  functions:\n' +
        '    - path: /www\n      runtime: docker\n      dockerfile: ./svc/Dockerfile\n      context: ./svc\n      port: 8080\n      memory: 64\n',
      'svc/Dockerfile': DOCKERFILE,
      'svc/www/index.html': 'hello from the container\n',
    });
    rt = new DockerRuntime({ docker, instance: `drift-${randomBytes(4).toString('hex')}`, readyTimeoutMs: 60_000 });
    p = new Pipeline(dir, new Map([['docker', rt]]));
    await p.sync(app());
    assert.equal(await answer(), 'hello from the container\n');
  });
  after(async () => {
    if (p) {
      p.deployer.remove(app());
      await until('the function container is removed', async () =>
        (await docker.listContainers({ all: true, filters: { label: [`zerverless.namespace=${namespace}`] } })).length === 0).catch(() => undefined);
    }
    await rt?.close();
    await removeNetworksOf([namespace], docker).catch(() => undefined);
    await repo?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts a container stopped by hand again, and the function answers', async () => {
    const rec = recordEvents();
    try {
      const id = container();
      await docker.getContainer(id).stop({ t: 1 });
      await until('the function shows as unavailable', () => p.deployer.unavailable(app()).has('/www'));
      const found = await p.deployer.checkDrift(app());
      assert.deepEqual(found.map((f) => [f.kind, f.target, f.problem]), [['function', '/www', 'container stopped']]);

      const repairs = await p.repair(app());
      assert.deepEqual(repairs.map((r) => [r.kind, r.target, r.problem, r.result]), [['function', '/www', 'container stopped', 'repaired']]);
      assert.equal(container(), id, 'the same container runs again');
      assert.equal((await docker.getContainer(id).inspect()).State.Running, true);
      assert.equal(await answer(), 'hello from the container\n');
      assert.equal(p.deployer.unavailable(app()).size, 0);
      assert.deepEqual(await p.deployer.checkDrift(app()), []);
      assert.deepEqual(rec.events.map((e) => [e.kind, e.target, e.problem, e.result]), [['function', '/www', 'container stopped', 'repaired']]);
    } finally {
      rec.stop();
    }
  });

  it('makes a container removed by hand anew, with the same image, limits and network', async () => {
    const old = container();
    const before = await docker.getContainer(old).inspect();
    await docker.getContainer(old).remove({ force: true });
    await until('the drift is seen', async () => (await p.deployer.checkDrift(app())).length > 0);
    assert.deepEqual((await p.deployer.checkDrift(app())).map((f) => f.problem), ['container removed']);

    const repairs = await p.repair(app());
    assert.deepEqual(repairs.map((r) => [r.target, r.problem, r.result]), [['/www', 'container removed', 'repaired']]);
    const now = container();
    assert.notEqual(now, old);
    const after = await docker.getContainer(now).inspect();
    assert.equal(after.State.Running, true);
    assert.equal(after.Config.Image, before.Config.Image);
    assert.equal(after.HostConfig.NetworkMode, before.HostConfig.NetworkMode);
    assert.equal(after.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(after.HostConfig.NanoCpus, before.HostConfig.NanoCpus);
    assert.equal(after.Config.Labels?.['zerverless.fnhash'], before.Config.Labels?.['zerverless.fnhash']);
    // The upstream is the new container's port.
    assert.equal(await answer(), 'hello from the container\n');
    assert.deepEqual(await p.deployer.checkDrift(app()), []);

    // Garbage collection keeps the new container (the function holds it).
    await p.deployer.collectGarbage();
    assert.equal((await docker.getContainer(now).inspect()).State.Running, true);

    // A stop after the replacement is seen and repaired on the new container.
    await docker.getContainer(now).stop({ t: 1 });
    const again = await p.repair(app());
    assert.deepEqual(again.map((r) => [r.problem, r.result]), [['container stopped', 'repaired']]);
    assert.equal(await answer(), 'hello from the container\n');
  });
});

describe('drift repair: services', { timeout: 300_000 }, () => {
  let dir: string;
  let repo: TestRepo;
  let host: ServiceHost;
  let p: Pipeline;
  const app = (): DriftApp & AppIdentity => identity('drift-svc', 'svc', repo);
  const spec = () => makeSpec('web', { source: { type: 'git', url: repo.url, ref: 'main' } });
  const state = async () => (await host.runtime.getCurrentState()).find((s) => s.name === 'web');
  /** The pid of the process answering through the upstream; waits while there is none answering (e.g. mid-restart). */
  const pid = async (): Promise<number> => {
    let out = 0;
    await until('the service answers through its upstream', async () => {
      out = await viaUpstream(host.runtime as never, 'web').then((r) => Number(r.json.pid), () => 0);
      return out > 0;
    });
    return out;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-drift-svc-'));
    repo = await TestRepo.create(serviceFiles('1.0.0'));
    const applied = new Map<number, AppliedServices>();
    const store = {
      getAppliedServices: async (id: number) => applied.get(id) ?? null,
      saveAppliedServices: async (id: number, a: AppliedServices) => void applied.set(id, a),
    };
    host = new ServiceHost({
      dataDir: dir, appId: 1, namespace: 'drift-svc', app: 'svc', logger: silentLogger, store,
      // Below Linux's ephemeral range (32768–60999), where Docker's published ports of tests running
      // beside this one can take a port between the pool's check and the service's listen.
      createRuntime: (d) => serviceRuntime(d, { portRange: [23300, 23399], gracePeriodMs: 1000 }),
    });
    await host.load();
    const r = await host.apply([spec()], 'c'.repeat(40));
    assert.deepEqual([r.failed, r.blocked], [[], []]);
    await pid();
    p = new Pipeline(join(dir, 'pipeline'), new Map());
  });
  after(async () => {
    await host?.close();
    await repo?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('leaves a killed process to the supervisor, which restarts it', async () => {
    const first = await pid();
    const group = (await state())?.pid;
    assert.ok(group, 'the runtime reports the process group');
    process.kill(-group, 'SIGKILL');
    await until('the process is gone', async () => !(await alive(first)));
    // Crashed, restarting: the supervisor's business, not drift.
    assert.deepEqual(await host.repairDrift(), []);
    await until('the supervisor restarted it', async () => (await state())?.health === 'healthy' && host.runtime.upstream('web') !== null);
    assert.notEqual(await pid(), first);
  });

  it('deploys again a service the runtime no longer runs', async () => {
    const rec = recordEvents();
    try {
      const first = await pid();
      // The runtime forgets the service and its process ends (as after a runtime-side removal).
      await host.runtime.remove('web');
      assert.equal(await state(), undefined);
      assert.equal(await alive(first), false);

      const repairs = await p.repair(app(), host);
      assert.deepEqual(repairs.map((r) => [r.kind, r.target, r.problem, r.result]), [['service', 'web', 'process gone', 'repaired']]);
      assert.equal((await state())?.status, 'running');
      const second = await pid();
      assert.notEqual(second, first);
      assert.deepEqual(rec.events.map((e) => [e.kind, e.target, e.result, e.namespace]), [['service', 'web', 'repaired', 'drift-svc']]);
      assert.deepEqual(await host.repairDrift(), []);
    } finally {
      rec.stop();
    }
  });
});
