// Upgrades of a service from apps/ leave exactly one version running, whatever the timing: several
// upgrades in a row (one committed and synced while the previous one's old process still drains, one
// after), a restart, a server killed (SIGKILL) while an old process drains and started again, a server
// stopped (SIGTERM) during a drain (then none runs). The service processes are read from /proc (working directory in a version folder of
// the data dir), not from the status.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppStatus } from '../../src/core/status.js';
import type { TestRepo } from '../support/repo.js';
import { processesUnder } from '../support/procs.js';
import { startHarness, type Harness } from '../support/server.js';
import { SERVICE_SERVER_JS as SERVER_JS, serviceAppConfig as APP_CONFIG, serviceRepos } from '../support/node-service.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The service process groups under a data dir, each with the version its folder holds (`<version>-<hash>`). */
function running(dataDir: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const p of processesUnder(join(dataDir, 'services'))) {
    const folder = p.cwd.replace(/ \(deleted\)$/, '').split('/').find((s) => /^\d+\.\d+\.\d+-[0-9a-f]+$/.test(s));
    if (folder) out.set(p.pgid, folder.slice(0, folder.lastIndexOf('-')));
  }
  return out;
}
const versions = (dataDir: string): string[] => [...new Set(running(dataDir).values())].sort();

async function until<T>(what: string, get: () => T | Promise<T>, ok: (v: T) => boolean, ms = 180_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

/** Stops what a failed test may have left (only processes working in this data dir). */
function killAll(dataDir: string): void {
  for (const pgid of running(dataDir).keys()) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch { /* gone */ }
  }
}

/** `zerverless serve` from the sources in a child process (so that it can be killed), on `dataDir`. */
async function childServer(dataDir: string): Promise<{ child: ChildProcess; url: string; api: <T = AppStatus>(method: string, path: string) => Promise<{ status: number; body: T }> }> {
  const entry = `import('./src/cli/main.ts').then((m) => m.main(process.argv.slice(1))).then((c) => process.exit(c))`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', entry, '--', 'serve', '--port', '0', '--data-dir', dataDir, '--allow-file-repos',
    '--poll-interval', '1h', '--drift-interval', 'off', '--log-level', 'error'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const url = await until('the server to listen', () => /serving on (http:\/\/\S+)/.exec(out)?.[1] ?? (child.exitCode !== null ? `exited: ${out}` : ''), (u) => u !== '');
  assert.match(url, /^http:/);
  const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  const api = async <T>(method: string, path: string) => {
    const res = await fetch(`${url}/api/gitops/applications${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as T };
  };
  return { child, url, api };
}

describe('service upgrades leave exactly one version running', () => {
  let svc: TestRepo;
  let site: TestRepo;
  const release = (n: number): string => `${n}.0.0`;

  before(async () => {
    ({ svc, app: site } = await serviceRepos(Object.fromEntries([1, 2, 3, 4, 5, 6].map((n) => [`v${n}`, SERVER_JS(release(n))]))));
  });
  after(async () => {
    await svc.remove();
    await site.remove();
  });
  const bump = (n: number) => site.commit({ 'apps/web/app.config': APP_CONFIG(svc.url, `v${n}`, release(n)) });

  it('several upgrades in a row (one while the previous drain runs, one after), a restart, a stop', async () => {
    const h: Harness = await startHarness();
    const dataDir = h.dataDir;
    try {
      assert.equal((await h.register('svc', 'team', site.url)).status, 'synced');
      await h.waitFor('svc', (s) => s.services[0]?.health === 'healthy', 180_000);
      assert.deepEqual(versions(dataDir), ['1.0.0']);

      // 2.0.0: synced in the background; 3.0.0 committed and synced while 1.0.0 still drains.
      await bump(2);
      const second = h.api('POST', '/svc/sync');
      await until('2.0.0 to take over while 1.0.0 drains', () => versions(dataDir), (v) => v.join() === '1.0.0,2.0.0');
      await h.waitFor('svc', (s) => s.services[0]?.version === '2.0.0' && s.services[0].health === 'healthy');
      await bump(3);
      const third = await h.sync('svc');
      assert.equal((await second).body.status, 'synced');
      assert.equal(third.status, 'synced', third.message);
      assert.deepEqual(versions(dataDir), ['3.0.0']);
      // 4.0.0: after that drain ended.
      await bump(4);
      assert.equal((await h.sync('svc')).status, 'synced');
      assert.deepEqual([...running(dataDir).values()], ['4.0.0'], 'one process group, of 4.0.0');
      assert.equal((await h.get('/team/web/')).headers.get('x-version'), '4.0.0');

      await h.restart();
      await h.waitFor('svc', (s) => s.services[0]?.health === 'healthy', 180_000);
      assert.deepEqual([...running(dataDir).values()], ['4.0.0'], 'after a restart: one process group, of 4.0.0');
      await h.server.close();
      assert.deepEqual(versions(dataDir), [], 'a stopped server stops its services');
    } finally {
      killAll(dataDir);
      await h.close();
    }
  });

  it('a server killed while an old version drains: the restarted server runs exactly one version; a stop during a drain leaves none', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'zv-upgrades-'));
    let a: Awaited<ReturnType<typeof childServer>> | undefined;
    let b: Awaited<ReturnType<typeof childServer>> | undefined;
    try {
      await bump(4); // where the first test left it (also when it failed)
      a = await childServer(dataDir);
      const reg = await fetch(`${a.url}/api/gitops/applications`, {
        method: 'POST',
        headers: { authorization: `Bearer ${(await readFile(join(dataDir, 'admin-token'), 'utf8')).trim()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'svc', namespace: 'team', source: { repoURL: site.url, branch: 'main' } }),
      });
      assert.equal(reg.status, 201);
      const api = a.api;
      await until('4.0.0 to be healthy', async () => (await api('GET', '/svc')).body, (s) => s.status === 'synced' && s.services[0]?.health === 'healthy');

      await bump(5);
      assert.equal((await a.api('POST', '/svc/sync?async=true')).status, 202);
      await until('5.0.0 to take over while 4.0.0 drains', async () => ({ s: (await api('GET', '/svc')).body.services[0], v: versions(dataDir) }),
        ({ s, v }) => s?.version === '5.0.0' && s.health === 'healthy' && v.join() === '4.0.0,5.0.0');
      a.child.kill('SIGKILL');
      await until('the server to die', () => a?.child.exitCode !== null || a.child.signalCode !== null, (x) => x);
      assert.deepEqual(versions(dataDir), ['4.0.0', '5.0.0'], 'service processes outlive a killed server');

      b = await childServer(dataDir);
      const bApi = b.api;
      // The restart restores the last applied specs: 4.0.0, as the killed sync never finished applying 5.0.0.
      await until('the restored service', async () => (await bApi('GET', '/svc')).body.services[0], (s) => s?.health === 'healthy');
      assert.deepEqual([...running(dataDir).values()], ['4.0.0'], 'one process group, of the restored 4.0.0: the 4.0.0 and 5.0.0 left running were stopped');
      assert.equal((await b.api('POST', '/svc/sync')).body.status, 'synced');
      assert.deepEqual([...running(dataDir).values()], ['5.0.0'], 'one process group, of 5.0.0');

      // SIGTERM during a drain: the server stops, and so does every service process.
      await bump(6);
      assert.equal((await b.api('POST', '/svc/sync?async=true')).status, 202);
      await until('6.0.0 to take over while 5.0.0 drains', async () => ({ s: (await bApi('GET', '/svc')).body.services[0], v: versions(dataDir) }),
        ({ s, v }) => s?.version === '6.0.0' && s.health === 'healthy' && v.join() === '5.0.0,6.0.0');
      const exited = new Promise<number | null>((r) => b?.child.once('exit', (code) => r(code)));
      b.child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.deepEqual(versions(dataDir), [], 'a stopped server stops its services');
    } finally {
      a?.child.kill('SIGKILL');
      b?.child.kill('SIGKILL');
      killAll(dataDir);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
