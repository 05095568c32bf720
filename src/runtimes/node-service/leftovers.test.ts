// A server that dies in the middle of an upgrade (SIGKILL, a crash, a supervisor's kill after its stop
// timeout) must leave no service process that a restart cannot find: every process the runtime starts
// is in the service's pids.json from its spawn until it is stopped (the new version while it starts
// beside the old one, the old one while it drains, the process of a pinned port), so a new runtime on
// the same data dir stops them all and runs exactly one process group. A shutdown does not wait out a
// drain either (the server stops every process right after). Real processes, listed from /proc.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { TestRepo } from '../../../test/support/repo.js';
import { processesUnder } from '../../../test/support/procs.js';
import type { ServiceSpec } from '../../core/services/types.js';
import { versionFolder } from './fetch.js';
import { bindable } from './ports.js';
import { runtime, taggedServiceRepo, taggedSpec, tempDir, until, viaUpstream } from './fixtures.test.js';

/**
 * The process groups running in a service's version folders, each with its folder (a fetch under way,
 * in a `.tmp-` folder, is not a service process).
 */
function groupsIn(serviceDir: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const p of processesUnder(serviceDir)) {
    const folder = relative(serviceDir, p.cwd.replace(/ \(deleted\)$/, '')).split(sep)[0] ?? '';
    if (!folder.startsWith('.tmp-')) out.set(p.pgid, folder);
  }
  return out;
}

/** After a test: nothing it started may outlive it, even when it failed. */
async function cleanUp(data: string, ...runtimes: { close(): Promise<void> }[]): Promise<void> {
  for (const rt of runtimes) await rt.close();
  for (const pgid of groupsIn(join(data, 'services', 'web')).keys()) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch { /* gone */ }
  }
  await rm(data, { recursive: true, force: true });
}

/** A runtime in another process (a server), running `body` after `rt` is made; its stdout lines are collected. */
function otherServer(data: string, options: string, body: string): { child: ChildProcess; out: () => string; kill: () => Promise<void> } {
  const index = new URL('./index.ts', import.meta.url).href;
  const code = `
    import { NodeServiceRuntime } from ${JSON.stringify(index)};
    const rt = new NodeServiceRuntime({ dataDir: ${JSON.stringify(data)}, allowFileRepos: true, healthDefaults: { startupPollMs: 100, livenessDelayMs: 500 }, ${options} });
    ${body}
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  return {
    child,
    out: () => out,
    kill: async () => {
      child.kill('SIGKILL');
      await until('the server to die', () => child.exitCode !== null || child.signalCode !== null);
    },
  };
}

describe('node services: a server killed during an upgrade leaves nothing a restart cannot stop', () => {
  let repo: TestRepo;
  const v = (version: string, over: Partial<ServiceSpec> = {}): ServiceSpec => taggedSpec(repo, version, over);

  before(async () => {
    repo = await taggedServiceRepo('1.0.0', '2.0.0');
  });
  after(async () => {
    await repo.remove();
  });

  it('killed while the new version starts beside the old one: the restart stops the new process too', async () => {
    const data = await tempDir();
    const dir = join(data, 'services', 'web');
    const starting = v('2.0.0', { env: { HEALTH_STATUS: '503' } }); // never healthy: the upgrade waits
    const srv = otherServer(data, 'portRange: [42400, 42449], readyTimeoutMs: 3_600_000', `
      await rt.deploy(${JSON.stringify(v('1.0.0'))});
      void rt.upgrade(${JSON.stringify(starting)}, '1.0.0').catch(() => {});`);
    const b = runtime(data, { portRange: [42400, 42449] });
    try {
      await until('both versions to run', () => new Set(groupsIn(dir).values()).size === 2, 120_000);
      assert.deepEqual([...new Set(groupsIn(dir).values())].sort(), [versionFolder(v('1.0.0')), versionFolder(starting)].sort());
      await srv.kill();
      await b.deploy(v('1.0.0')); // what a restart deploys: the upgrade never applied
      const pid = (await b.getCurrentState())[0]?.pid;
      assert.deepEqual([...groupsIn(dir)], [[pid, versionFolder(v('1.0.0'))]], 'exactly one process group: the new runtime\'s 1.0.0');
    } finally {
      srv.child.kill('SIGKILL');
      await cleanUp(data, b);
    }
  });

  it('killed while the old version drains after the takeover: the restart stops the draining process too', async () => {
    const data = await tempDir();
    const dir = join(data, 'services', 'web');
    const srv = otherServer(data, 'portRange: [42450, 42499], drainMs: 3_600_000', `
      await rt.deploy(${JSON.stringify(v('1.0.0'))});
      void rt.upgrade(${JSON.stringify(v('2.0.0'))}, '1.0.0');
      const timer = setInterval(async () => {
        const s = (await rt.getCurrentState())[0];
        if (s?.version === '2.0.0' && s.health === 'healthy') { clearInterval(timer); console.log('TOOK-OVER ' + s.pid); }
      }, 50);`);
    const b = runtime(data, { portRange: [42450, 42499] });
    try {
      await until('the takeover', () => /TOOK-OVER \d+/.test(srv.out()), 120_000);
      assert.deepEqual([...new Set(groupsIn(dir).values())].sort(), [versionFolder(v('1.0.0')), versionFolder(v('2.0.0'))].sort(), '1.0.0 drains');
      await srv.kill();
      await b.deploy(v('2.0.0'));
      const pid = (await b.getCurrentState())[0]?.pid;
      assert.deepEqual([...groupsIn(dir)], [[pid, versionFolder(v('2.0.0'))]], 'exactly one process group: the new runtime\'s 2.0.0');
    } finally {
      srv.child.kill('SIGKILL');
      await cleanUp(data, b);
    }
  });

  it('killed after an upgrade of a pinned port (stop → start): the restart stops that process and serves its own', async () => {
    const data = await tempDir();
    const dir = join(data, 'services', 'web');
    let port = 42950;
    while (!(await bindable(port))) port++;
    const pinned = (version: string): ServiceSpec => v(version, { port });
    const srv = otherServer(data, 'portRange: [42500, 42549]', `
      await rt.deploy(${JSON.stringify(pinned('1.0.0'))});
      await rt.upgrade(${JSON.stringify(pinned('2.0.0'))}, '1.0.0');
      console.log('UPGRADED ' + (await rt.getCurrentState())[0].pid);`);
    const b = runtime(data, { portRange: [42500, 42549] });
    try {
      await until('the upgrade', () => /UPGRADED \d+/.test(srv.out()), 120_000);
      const old = Number(/UPGRADED (\d+)/.exec(srv.out())?.[1]);
      await srv.kill();
      await b.deploy(pinned('2.0.0'));
      const pid = (await b.getCurrentState())[0]?.pid;
      assert.notEqual(pid, old);
      assert.deepEqual([...groupsIn(dir)], [[pid, versionFolder(pinned('2.0.0'))]], 'exactly one process group: the new runtime\'s');
      assert.equal((await viaUpstream(b, 'web')).json.port, port);
    } finally {
      srv.child.kill('SIGKILL');
      await cleanUp(data, b);
    }
  });

  /** A runtime with an hour's drain whose upgrade 1.0.0 → 2.0.0 has taken over: 1.0.0 drains. */
  const draining = async (portRange: [number, number]): Promise<{ data: string; dir: string; rt: ReturnType<typeof runtime>; upgrade: Promise<unknown> }> => {
    const data = await tempDir();
    const rt = runtime(data, { portRange, drainMs: 3_600_000 });
    try {
      await rt.deploy(v('1.0.0'));
      const upgrade = rt.upgrade(v('2.0.0'), '1.0.0');
      await until('the takeover', async () => (await rt.getCurrentState())[0]?.version === '2.0.0', 120_000);
      return { data, dir: join(data, 'services', 'web'), rt, upgrade };
    } catch (e) {
      await cleanUp(data, rt);
      throw e;
    }
  };

  it('a shutdown ends a drain under way: beginShutdown() lets the upgrade finish at once; close() stops everything', { timeout: 300_000 }, async () => {
    const { data, dir, rt, upgrade } = await draining([42550, 42599]);
    try {
      assert.equal(new Set(groupsIn(dir).values()).size, 2, '1.0.0 drains');
      rt.beginShutdown();
      await upgrade; // an hour's drain would hold it (and the server's shutdown) until the test's timeout
      assert.deepEqual([...new Set(groupsIn(dir).values())], [versionFolder(v('2.0.0'))], '1.0.0 was stopped');
      // A drain that begins after the shutdown began does not wait either.
      await rt.upgrade(v('1.0.0'), '2.0.0');
      assert.deepEqual([...new Set(groupsIn(dir).values())], [versionFolder(v('1.0.0'))], '2.0.0 was stopped');
      await rt.close();
      assert.deepEqual([...groupsIn(dir)], []);
    } finally {
      await cleanUp(data, rt);
    }
  });

  it('close() during a drain stops both processes and the upgrade settles', { timeout: 300_000 }, async () => {
    const { data, dir, rt, upgrade } = await draining([42600, 42649]);
    try {
      await rt.close();
      await upgrade;
      assert.deepEqual([...groupsIn(dir)], []);
    } finally {
      await cleanUp(data, rt);
    }
  });
});
