// Lazy functions end to end (issue 10, item 3): after a restart the server answers before any
// function is loaded (200 JS functions: no isolate compiled by the restore), each function loads on
// its first call, an idle one is unloaded and loads again, and a load that fails after the restart
// shows in the status (failed, the application degraded) until a load succeeds.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZvError } from '../../src/errors/registry.js';
import type { FunctionRuntimeKind } from '../../src/core/desired.js';
import type { AppStatus } from '../../src/core/status.js';
import type { FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction } from '../../src/runtimes/types.js';
import { JsRuntime } from '../../src/runtimes/js/index.js';
import { resolveServeConfig } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { silentLogger } from '../../src/telemetry/log.js';
import { TestRepo } from '../support/repo.js';

const COUNT = 200;

/** The real JS runtime, counting loads; loads of sources whose id matches `failing` are refused. */
class CountingJs implements FunctionRuntime {
  readonly name = 'js' as const;
  readonly inner = new JsRuntime();
  loads = 0;
  failing: RegExp | null = null;

  async load(s: FunctionSource, log: FunctionLogger): Promise<LoadedFunction> {
    this.loads++;
    if (this.failing?.test(s.id)) throw new ZvError('RUNTIME_UNAVAILABLE', 'js: the runtime is down for the test');
    return this.inner.load(s, log);
  }

  available(): Promise<{ ok: true } | { ok: false; reason: string }> {
    return this.inner.available();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function manyFunctions(): string {
  const fns = Array.from({ length: COUNT }, (_, i) => `    - path: /f${i}
      runtime: js
      code: |
        function handle() { return "f${i}"; }
`).join('');
  return `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: many
  namespace: lazy
spec:
  functions:
${fns}`;
}

async function until<T>(what: string, get: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await get();
    if (pred(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lazy functions across a restart (real server, real JS runtime)', () => {
  let dataDir: string;
  let repo: TestRepo;
  let server: RunningServer | null = null;
  let js: CountingJs;
  let token: string;

  const start = async (idle: string): Promise<void> => {
    js = new CountingJs();
    const config = resolveServeConfig({ port: 0, 'allow-file-repos': true, 'data-dir': dataDir, 'poll-interval': '1h', 'function-idle': idle }, {}, {});
    server = await startServer(config, { logger: silentLogger, runtimes: new Map<FunctionRuntimeKind, FunctionRuntime>([['js', js]]) });
  };
  const stop = async (): Promise<void> => {
    await server?.close();
    server = null;
  };
  const get = (path: string): Promise<Response> => fetch(`${server?.url}${path}`);
  const status = async (): Promise<AppStatus> => {
    const res = await fetch(`${server?.url}/api/gitops/applications/many?namespace=lazy`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as AppStatus;
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'zv-data-'));
    repo = await TestRepo.create({ 'zerverless.yaml': manyFunctions() });
    await start('1h');
    token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const res = await fetch(`${server?.url}/api/gitops/applications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'many', namespace: 'lazy', source: { repoURL: repo.url, branch: 'main' } }),
    });
    assert.equal(res.status, 201);
    const st = await until('the first sync ended', status, (s) => s.status !== 'pending' && s.status !== 'syncing', 300_000);
    assert.equal(st.status, 'synced', st.message);
    // a sync compiles every function (a commit that does not compile fails it) and serves them warm
    assert.equal(js.loads, COUNT);
    assert.equal(js.inner.liveCount, COUNT);
  });
  after(async () => {
    await stop();
    await rm(dataDir, { recursive: true, force: true });
    await repo.remove();
  });

  it(`answers /healthz after a restart with ${COUNT} JS functions before loading any; each loads on its first call`, async () => {
    await stop();
    await start('1h');
    const health = await get('/healthz');
    assert.equal(health.status, 200);
    await health.text();
    assert.equal(js.loads, 0, 'the restore loaded functions');
    assert.equal(js.inner.liveCount, 0);
    const st = await status();
    assert.equal(st.status, 'synced');
    assert.equal(st.functions.length, COUNT);
    assert.ok(st.functions.every((f) => f.status === 'ready'));
    // concurrent first calls load once
    const first = await Promise.all(Array.from({ length: 8 }, async () => {
      const res = await get('/lazy/f0');
      return `${res.status} ${await res.text()}`;
    }));
    assert.deepEqual(first, Array(8).fill('200 f0'));
    assert.equal(js.loads, 1);
    for (let i = 1; i < COUNT; i++) {
      const res = await get(`/lazy/f${i}`);
      assert.equal(`${res.status} ${await res.text()}`, `200 f${i}`);
    }
    assert.equal(js.loads, COUNT);
    assert.equal(js.inner.liveCount, COUNT);
  });

  it('unloads idle functions and loads them again; a load that fails after a restart shows in the status', async () => {
    await stop();
    await start('300ms');
    js.failing = /\/f7@/;
    const failed = await get('/lazy/f7');
    assert.equal(failed.status, 503);
    const body = (await failed.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'FUNCTION_UNAVAILABLE');
    assert.match(body.error.message, /RUNTIME_UNAVAILABLE: js: the runtime is down for the test/);
    let st = await status();
    assert.equal(st.status, 'degraded');
    const f7 = st.functions.find((f) => f.path === '/f7');
    assert.equal(f7?.status, 'failed');
    assert.match(f7?.message ?? '', /the runtime is down/);
    assert.ok(st.functions.filter((f) => f.path !== '/f7').every((f) => f.status === 'ready'));

    // the next call tries again: once it loads, the status is truthful again
    js.failing = null;
    const back = await get('/lazy/f7');
    assert.equal(`${back.status} ${await back.text()}`, '200 f7');
    st = await status();
    assert.equal(st.status, 'synced');
    assert.equal(st.functions.find((f) => f.path === '/f7')?.status, 'ready');

    // idle: unloaded (the isolate is gone), and the next call loads it again
    const loads = js.loads;
    await until('the idle functions are unloaded', async () => js.inner.liveCount, (n) => n === 0);
    const again = await get('/lazy/f7');
    assert.equal(`${again.status} ${await again.text()}`, '200 f7');
    assert.equal(js.loads, loads + 1);
  });

  it('a sync reloads a function whose load failed after a restart', async () => {
    await stop();
    await start('1h');
    js.failing = /\/f9@/;
    assert.equal((await get('/lazy/f9')).status, 503);
    assert.equal((await status()).functions.find((f) => f.path === '/f9')?.status, 'failed');
    js.failing = null;
    const res = await fetch(`${server?.url}/api/gitops/applications/many/sync?namespace=lazy`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const st = (await res.json()) as AppStatus;
    assert.equal(st.status, 'synced', st.message);
    assert.equal(st.functions.find((f) => f.path === '/f9')?.status, 'ready');
    // reloaded by the sync (warm): the call loads nothing
    const loads = js.loads;
    const ok = await get('/lazy/f9');
    assert.equal(`${ok.status} ${await ok.text()}`, '200 f9');
    assert.equal(js.loads, loads);
  });
});
