// Telemetry of a real sync: diagnostics_channel events with durations, metrics, health endpoints.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { CHANNELS } from '../../src/telemetry/events.js';

const MANIFEST = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: tel
spec:
  functions:
    - path: /x
      runtime: lua
      code: |
        function handle(req) return "x" end
`;

describe('telemetry', () => {
  let h: Harness;
  let repo: TestRepo;
  const events: { name: string; msg: Record<string, unknown> }[] = [];
  const listeners = new Map<string, (msg: unknown) => void>();

  before(async () => {
    for (const name of Object.values(CHANNELS)) {
      const fn = (msg: unknown) => events.push({ name, msg: msg as Record<string, unknown> });
      listeners.set(name, fn);
      diagnostics_channel.subscribe(name, fn);
    }
    h = await startHarness();
    repo = await TestRepo.create({ 'zerverless.yaml': MANIFEST });
  });
  after(async () => {
    for (const [name, fn] of listeners) diagnostics_channel.unsubscribe(name, fn);
    await h.close();
    await repo.remove();
  });

  it('a sync publishes reconcile, git and deploy events with durations and metadata', async () => {
    const st = await h.register('tel', 'tel', repo.url);
    assert.equal(st.status, 'synced', st.message);
    const mine = events.filter((e) => e.msg.app === 'tel' || e.msg.repo === repo.url);
    const names = mine.map((e) => e.name);
    for (const n of [CHANNELS.reconcileStart, CHANNELS.reconcileStop, CHANNELS.deployStart, CHANNELS.deployStop, CHANNELS.gitPull]) {
      assert.ok(names.includes(n), `missing ${n} in ${names.join(', ')}`);
    }
    assert.ok(names.indexOf(CHANNELS.reconcileStart) < names.indexOf(CHANNELS.deployStart));
    assert.ok(names.indexOf(CHANNELS.deployStop) < names.indexOf(CHANNELS.reconcileStop));
    const stop = mine.find((e) => e.name === CHANNELS.reconcileStop)?.msg ?? {};
    assert.equal(typeof stop.duration, 'number');
    assert.equal(stop.result, 'ok');
    assert.equal(stop.commit, repo.head());
    assert.equal(stop.namespace, 'tel');
    assert.equal(stop.branch, 'main');
    const pull = mine.find((e) => e.name === CHANNELS.gitPull)?.msg ?? {};
    assert.equal(typeof pull.duration, 'number');
    assert.equal(pull.commit, repo.head());
    const deploy = mine.find((e) => e.name === CHANNELS.deployStop)?.msg ?? {};
    assert.equal(deploy.to_version, repo.head());
    assert.equal(typeof deploy.duration, 'number');

    await repo.commit({ 'zerverless.yaml': 'nope: [' });
    events.length = 0;
    const bad = await h.sync('tel');
    assert.equal(bad.status, 'error');
    const err = events.find((e) => e.name === CHANNELS.reconcileError && e.msg.app === 'tel')?.msg;
    assert.ok(err, 'no reconcile:error event');
    assert.equal(err.result, 'error');
    assert.equal(typeof err.duration, 'number');

    events.length = 0;
    assert.equal((await h.api('DELETE', '/tel')).status, 204);
    assert.ok(events.some((e) => e.name === CHANNELS.removeStop && e.msg.app === 'tel' && typeof e.msg.duration === 'number'));
  });

  it('serves /healthz, /readyz and Prometheus /metrics', async () => {
    assert.deepEqual(await (await h.get('/healthz')).json(), { status: 'ok' });
    assert.deepEqual(await (await h.get('/readyz')).json(), { status: 'ready' });
    assert.equal((await h.get('/metrics')).status, 401, '/metrics needs a token unless --public-metrics');
    const m = await h.get('/metrics', { headers: { authorization: `Bearer ${h.token}` } });
    assert.match(m.headers.get('content-type') ?? '', /text\/plain/);
    const text = await m.text();
    assert.match(text, /zerverless_syncs_total\{result="success"\} \d+/);
    assert.match(text, /zerverless_syncs_total\{result="error"\} \d+/);
    assert.match(text, /zerverless_http_requests_total\{kind="system",status="200"\} \d+/);
  });
});
