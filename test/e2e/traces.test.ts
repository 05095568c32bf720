// Metrics and OpenTelemetry traces of a real server (issue 12, item 5). The test runs an OTLP/HTTP
// receiver of its own (node:http decoding the OTLP JSON payloads the exporter sends to /v1/traces)
// and points OTEL_EXPORTER_OTLP_ENDPOINT at it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { TestRepo } from '../support/repo.js';
import { startHarness } from '../support/server.js';
import { requestSpans } from '../../src/telemetry/tracing.js';

const manifest = (body: string) => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: tr
spec:
  functions:
    - path: /hello
      runtime: lua
      code: |
        function handle(req) return "${body}" end
    - path: /boom
      runtime: lua
      code: |
        function handle(req) error("boom") end
`;

interface OtlpAttr {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: OtlpAttr[];
  status?: { code?: number };
}
interface Received {
  resource: Record<string, string>;
  span: OtlpSpan;
}

const attrs = (list: OtlpAttr[] = []): Record<string, string> =>
  Object.fromEntries(list.map((a) => [a.key, String(a.value.stringValue ?? a.value.intValue ?? a.value.boolValue ?? '')]));

/** An OTLP/HTTP receiver: every span it was sent, with its resource's attributes; `posts` counts the requests. */
async function startReceiver(): Promise<{ url: string; spans: Received[]; posts: () => number; close(): Promise<void> }> {
  const spans: Received[] = [];
  let posts = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts++;
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      if (req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(raw.toString('utf8')) as { resourceSpans?: { resource?: { attributes?: OtlpAttr[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[] };
      for (const rs of body.resourceSpans ?? []) {
        const resource = attrs(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) spans.push({ resource, span });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, spans, posts: () => posts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const OTEL_VARS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES', 'OTEL_BSP_SCHEDULE_DELAY', 'OTEL_TRACES_SAMPLER'];

describe('metrics and traces', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let repo: TestRepo;
  const saved: Record<string, string | undefined> = {};

  before(async () => {
    for (const k of OTEL_VARS) saved[k] = process.env[k];
    for (const k of OTEL_VARS) delete process.env[k];
    receiver = await startReceiver();
    repo = await TestRepo.create({ 'zerverless.yaml': manifest('one') });
  });
  after(async () => {
    for (const k of OTEL_VARS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await receiver.close();
    await repo.remove();
  });

  it('exports nothing and loads no tracer when no endpoint is set', async () => {
    const h = await startHarness();
    try {
      assert.equal(requestSpans.record, null);
      assert.equal((await h.register('tr', 'quiet', repo.url)).status, 'synced');
      const res = await h.get('/quiet/hello', { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
      assert.equal(await res.text(), 'one');
    } finally {
      await h.close(); // a tracer would flush what it queued here
    }
    assert.equal(receiver.posts(), 0);
  });

  it('a sync is a root span with its steps; a request is a server span under its traceparent; /metrics has the new series', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_SERVICE_NAME = 'zv-under-test';
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment=test,team=platform';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
    const h = await startHarness();
    try {
      assert.equal((await h.register('tr', 'traced', repo.url)).status, 'synced');
      await repo.commit({ 'zerverless.yaml': manifest('two') });
      const st = await h.sync('tr', 'traced');
      assert.equal(st.status, 'synced', st.message);
      const commit = repo.head();

      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const parentId = '00f067aa0ba902b7';
      const res = await h.get('/traced/hello?token=s3cret', { headers: { traceparent: `00-${traceId}-${parentId}-01`, authorization: 'Bearer hidden' } });
      assert.equal(await res.text(), 'two');
      assert.equal((await h.get('/traced/boom')).status >= 500, true);

      // The sync of the push: a root span with a child per step.
      const root = await until('the root span of the second sync', () =>
        receiver.spans.find((s) => s.span.name === 'sync traced/tr' && attrs(s.span.attributes)['zerverless.commit'] === commit));
      assert.equal(root.span.parentSpanId ?? '', '');
      assert.equal(root.resource['service.name'], 'zv-under-test');
      assert.equal(root.resource['deployment.environment'], 'test');
      assert.equal(root.resource.team, 'platform');
      assert.equal(attrs(root.span.attributes)['zerverless.result'], 'success');
      const steps = await until('the step spans', () => {
        const children = receiver.spans.filter((s) => s.span.parentSpanId === root.span.spanId).map((s) => s.span.name);
        return children.includes('finish') ? children : undefined;
      });
      for (const step of ['head', 'snapshot', 'read', 'plan', 'prepare', 'commit', 'services', 'finish']) {
        assert.ok(steps.includes(step), `no ${step} span among ${steps.join(', ')}`);
      }
      for (const s of receiver.spans.filter((x) => x.span.parentSpanId === root.span.spanId)) assert.equal(s.span.traceId, root.span.traceId);

      // The request: a server span in the caller's trace, with the route template and no query or header.
      const req = await until('the request span', () => receiver.spans.find((s) => s.span.traceId === traceId));
      assert.equal(req.span.parentSpanId, parentId);
      assert.equal(req.span.kind, 2, 'SPAN_KIND_SERVER');
      assert.equal(req.span.name, 'GET /traced/hello');
      const a = attrs(req.span.attributes);
      assert.equal(a['http.request.method'], 'GET');
      assert.equal(a['http.route'], '/traced/hello');
      assert.equal(a['http.response.status_code'], '200');
      assert.equal(a['zerverless.runtime'], 'lua');
      const boom = await until('the failed request span', () => receiver.spans.find((s) => s.span.name === 'GET /traced/boom'));
      assert.equal(boom.span.status?.code, 2, 'STATUS_CODE_ERROR');
      const everything = JSON.stringify(receiver.spans);
      assert.ok(!everything.includes('s3cret') && !everything.includes('hidden'), 'no query string or header in any span');

      // /metrics: sync durations, per-function requests, git durations.
      const text = await (await h.get('/metrics', { headers: { authorization: `Bearer ${h.token}` } })).text();
      assert.match(text, /zerverless_sync_duration_seconds_count\{namespace="traced",app="tr",result="success"\} [1-9]/);
      assert.match(text, /zerverless_function_requests_total\{namespace="traced",app="tr",function="\/hello",runtime="lua",status_class="2xx"\} 1\n/);
      assert.match(text, /zerverless_function_requests_total\{namespace="traced",app="tr",function="\/boom",runtime="lua",status_class="5xx"\} 1\n/);
      assert.match(text, /zerverless_function_request_duration_seconds_count\{namespace="traced",app="tr",function="\/hello",runtime="lua",status_class="2xx"\} 1\n/);
      assert.match(text, /zerverless_git_duration_seconds_count\{op="fetch",result="ok"\} [1-9]/);
      assert.match(text, /zerverless_git_duration_seconds_count\{op="ls-remote",result="ok"\} [1-9]/);

      // A function removed by a push loses its series; a deleted application loses them all.
      await repo.commit({ 'zerverless.yaml': manifest('three').replace(/ {4}- path: \/boom[\s\S]*$/, '') });
      assert.equal((await h.sync('tr', 'traced')).status, 'synced');
      let after = await (await h.get('/metrics', { headers: { authorization: `Bearer ${h.token}` } })).text();
      assert.doesNotMatch(after, /function="\/boom"/);
      assert.match(after, /function="\/hello"/);
      assert.equal((await h.api('DELETE', '/tr?namespace=traced')).status, 204);
      after = await (await h.get('/metrics', { headers: { authorization: `Bearer ${h.token}` } })).text();
      assert.doesNotMatch(after, /zerverless_function_requests_total\{namespace="traced"/);
    } finally {
      await h.close();
    }
    assert.equal(requestSpans.record, null, 'closing the server stops tracing');
  });
});
