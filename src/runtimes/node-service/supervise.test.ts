// Supervision by the Node service runtime, with real processes: health checks of each type run (and
// publish zerverless:health:check), a crash-looping service is reported and restarted ever more
// slowly, stopping reaches the whole process tree (npm start → node), logs stay bounded, and processes
// left behind by a server that died are stopped when a new runtime deploys the service again.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import diagnostics_channel from 'node:diagnostics_channel';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { HealthSpec } from '../../core/services/types.js';
import { CHANNELS } from '../../telemetry/events.js';
import { TestRepo } from '../../../test/support/repo.js';
import { failureOf } from './index.js';
import type { NodeServiceRuntime } from './index.js';
import { alive, HTTP_HEALTH, makeSpec, runtime, serviceFiles, tempDir, until, viaUpstream } from './fixtures.test.js';

describe('node services: supervision', () => {
  let repo: TestRepo;
  let dataDir: string;
  let rt: NodeServiceRuntime;
  const events: Record<string, unknown>[] = [];
  const onCheck = (m: unknown): void => {
    events.push(m as Record<string, unknown>);
  };
  const src = (): { type: 'git'; url: string; ref: string } => ({ type: 'git', url: repo.url, ref: 'main' });
  const state = async (name: string) => (await rt.getCurrentState()).find((s) => s.name === name);

  before(async () => {
    repo = await TestRepo.create(serviceFiles('1.0.0'));
    dataDir = await tempDir();
    rt = runtime(dataDir, { portRange: [42000, 42199], gracePeriodMs: 600 });
    diagnostics_channel.subscribe(CHANNELS.healthCheck, onCheck);
  });
  after(async () => {
    diagnostics_channel.unsubscribe(CHANNELS.healthCheck, onCheck);
    await rt.close();
    await repo.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('runs http, tcp and custom health checks and publishes each result', async () => {
    const mark = join(dataDir, 'custom-port.txt');
    await rt.deploy(makeSpec('h-http', { source: src() }));
    await rt.deploy(makeSpec('h-tcp', { source: src(), health: { type: 'tcp', interval: 300, timeout: 500 } }));
    await rt.deploy(makeSpec('h-custom', { source: src(), env: { MARK: mark },
      health: { type: 'custom', command: 'test -n "$PORT" && echo "$PORT" > "$MARK.$$" && mv "$MARK.$$" "$MARK"', interval: 300, timeout: 2000 } }));
    await rt.deploy(makeSpec('h-none', { source: src(), health: null }));
    for (const name of ['h-http', 'h-tcp', 'h-custom', 'h-none']) {
      assert.equal((await state(name))?.health, 'healthy', name);
      assert.ok(rt.upstream(name), name);
    }
    // The custom command saw the service's PORT.
    assert.equal((await readFile(mark, 'utf8')).trim(), String((await state('h-custom'))?.port));
    for (const [app, type] of [['h-http', 'http'], ['h-tcp', 'tcp'], ['h-custom', 'custom']]) {
      const e = events.find((x) => x.app === app && x.result === 'healthy');
      assert.ok(e, `a health:check event for ${app}`);
      assert.equal(e.type, type);
      assert.equal(typeof e.duration, 'number');
    }
    assert.ok(!events.some((x) => x.app === 'h-none'), 'no check, no event');
  });

  it('reports unhealthy: /health answering 500, a closed tcp port, a failing command', async (t) => {
    // Its own runtime: these never get healthy, so the deploys end at the ready timeout. It is short for
    // a test, yet long enough for a loaded machine to start the process and run a failing check (the
    // message names the check's failure, not "not listening yet").
    const rt = runtime(dataDir, { portRange: [42450, 42499], readyTimeoutMs: 20_000, namespace: 'unhealthy' });
    t.after(() => rt.close());
    const state = async (name: string) => (await rt.getCurrentState()).find((s) => s.name === name);
    const cases: { name: string; env: Record<string, string>; health: HealthSpec; why: RegExp }[] = [
      // Check timeouts a slow machine does not reach: the last check's failure is the one meant.
      { name: 'u-http', env: { HEALTH_STATUS: '500' }, health: { ...HTTP_HEALTH, timeout: 10_000 }, why: /answered 500/ },
      { name: 'u-tcp', env: {}, health: { type: 'tcp' as const, port: 1, interval: 300, timeout: 10_000 }, why: /port 1/ },
      { name: 'u-custom', env: {}, health: { type: 'custom' as const, command: 'echo nope >&2; exit 3', interval: 300, timeout: 10_000 }, why: /exited 3: nope/ },
    ];
    await Promise.all(cases.map(async (c) => {
      await assert.rejects(rt.deploy(makeSpec(c.name, { source: src(), env: c.env, health: c.health })), (e) => failureOf(e) === 'unhealthy');
      const st = await state(c.name);
      assert.equal(st?.status, 'running', c.name);
      assert.equal(st?.health, 'unhealthy', c.name);
      assert.match(st?.message ?? '', c.why);
      assert.equal(rt.upstream(c.name), null, 'no traffic to an unhealthy process');
      assert.ok(events.some((x) => x.app === c.name && x.result === 'unhealthy' && typeof x.duration === 'number'));
    }));
    await Promise.all(cases.map((c) => rt.remove(c.name)));
  });

  it('reports a crash loop and restarts it with growing delays, never at full speed', async (t) => {
    // Its own runtime: a ready timeout far longer than a crash loop takes to show. The error says
    // which ended the deploy ("is in a crash loop", not "did not become healthy within").
    const rt = runtime(dataDir, { portRange: [42400, 42449], readyTimeoutMs: 300_000, namespace: 'loop' });
    t.after(() => rt.close());
    const state = async (name: string) => (await rt.getCurrentState()).find((s) => s.name === name);
    const started = Date.now();
    await assert.rejects(rt.deploy(makeSpec('crasher', { source: src(), env: { CRASH: '1' } })), /crasher 1\.0\.0 is in a crash loop/);
    const st = await state('crasher');
    assert.equal(st?.status, 'crash-loop');
    assert.equal(st?.health, 'unhealthy');
    assert.match(st?.message ?? '', /crash loop: \d+ exits/);
    await until('a third restart (after the 2 s backoff)', async () => ((await state('crasher'))?.restarts ?? 0) >= 3);
    const total = Date.now() - started;
    const restarts = (await state('crasher'))?.restarts ?? 0;
    // At full speed (≈150 ms per node start) that would be dozens in a few seconds; with backoff
    // 0.5, 1, 2, 4 … s, n restarts take at least 0.5 × (2^n − 1) s however fast the machine is.
    assert.ok(500 * (2 ** restarts - 1) <= total, `${restarts} restarts in ${total} ms`);
    const delays = rt.logs('crasher').flatMap((l) => / system 1\.0\.0: .*restart(?:ing)? in (\d+) ms/.exec(l)?.[1] ?? []).map(Number);
    assert.ok(delays.length >= 3);
    for (let i = 1; i < delays.length; i++) assert.ok((delays[i] as number) > (delays[i - 1] as number), `growing delays: ${delays.join(', ')}`);
    assert.ok(rt.logs('crasher').some((l) => / stderr crashing at once$/.test(l)));
    await rt.remove('crasher');
    assert.equal(await state('crasher'), undefined);
  });

  it('stopping kills the whole process tree (npm start → node), SIGKILL after the grace period', async () => {
    await rt.deploy(makeSpec('tree', { source: src(), env: { IGNORE_TERM: '1' } }));
    const leader = (await state('tree'))?.pid as number;
    const node = (await viaUpstream(rt, 'tree')).json.pid as number;
    assert.notEqual(leader, node, 'npm runs the service as a child');
    assert.ok(await alive(leader) && await alive(node));
    const t0 = Date.now();
    await rt.remove('tree');
    assert.ok(Date.now() - t0 >= 500, 'SIGTERM was ignored, so the grace period ran out');
    assert.equal(await alive(node), false, 'the node child is gone too');
    assert.equal(await alive(leader), false);
    assert.equal(existsSync(join(dataDir, 'services', 'tree')), false, 'remove cleans the folder');

    await rt.deploy(makeSpec('polite', { source: src() }));
    const pid = (await viaUpstream(rt, 'polite')).json.pid as number;
    await rt.remove('polite');
    assert.equal(await alive(pid), false);
  });

  it('keeps logs bounded', async () => {
    const small = runtime(dataDir, { portRange: [42200, 42299], maxLogBytes: 4096, namespace: 'small' });
    try {
      await small.deploy(makeSpec('chatty', { source: src(), env: { SPAM: '500' } }));
      const lines = small.logs('chatty');
      assert.ok(lines.join('\n').length < 4096 + 2048, `${lines.join('\n').length} characters kept`);
      assert.ok(lines.some((l) => l.includes('spam line 499')) || lines.some((l) => l.includes('listening on')));
      assert.ok(!lines.some((l) => l.includes('spam line 0 ')), 'the oldest lines were dropped');
      assert.match(lines.at(-1) ?? '', /^\d{4}-\d\d-\d\dT[\d:.]+Z (stdout|stderr|system) /);
    } finally {
      await small.close();
    }
  });

  it('stops processes left by a server that died, then serves from a new runtime', async () => {
    const data = await tempDir();
    const spec = makeSpec('orphan', { source: src() });
    const index = new URL('./index.ts', import.meta.url).href;
    const code = `
      import { NodeServiceRuntime } from ${JSON.stringify(index)};
      const rt = new NodeServiceRuntime({ dataDir: ${JSON.stringify(data)}, allowFileRepos: true, portRange: [42300, 42349] });
      await rt.deploy(${JSON.stringify(spec)});
      const s = (await rt.getCurrentState())[0];
      console.log('READY ' + s.pid + ' ' + s.port);
      setInterval(() => {}, 1000);`;
    const server = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    server.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await until('the other server to deploy', () => /READY \d+ \d+/.test(out), 120_000);
    const [, pid, port] = /READY (\d+) (\d+)/.exec(out) as RegExpExecArray;
    server.kill('SIGKILL');
    await until('the server to die', () => server.exitCode !== null || server.signalCode !== null);
    assert.ok(await alive(Number(pid)), 'its service outlived it (own process group)');

    const b = runtime(data, { portRange: [42300, 42349] });
    try {
      await b.deploy(spec);
      await until('the leftover to be gone', async () => !(await alive(Number(pid))));
      assert.equal((await viaUpstream(b, 'orphan')).json.version, '1.0.0');
      assert.ok(b.logs('orphan').some((l) => l.includes('reusing the prepared folder')));
      assert.ok(Number(port) > 0);
    } finally {
      await b.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});
