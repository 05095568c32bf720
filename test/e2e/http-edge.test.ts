// The HTTP edge against a real server: a request body over --max-body gets a 413 the client can
// read (the server lingers, reading and discarding what the client still sends within bounds,
// before it closes) for in-process functions, the API and docker functions; oversized request
// lines and headers get 431 (and unparsable requests 400) in the error shape, not a reset.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Dockerode from 'dockerode';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { sendBody } from '../support/raw-http.js';
import { dockerAvailable, ensureBaseImage, removeNetworksOf } from '../support/docker.js';

const MiB = 1024 * 1024;

const manifest = (name: string, fns: string) => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: ${name}
spec:
  functions:
${fns}`;

const LUA_FN = `    - path: /echo
      runtime: lua
      code: |
        function handle(req) return "len " .. #req.body end
    - path: /plain
      runtime: lua
      code: |
        function handle(req) return {ok = true} end
    - path: /mixed
      runtime: lua
      code: |
        function handle(req) return {status = 404, error = "x"} end
`;

describe('HTTP edge: a 413 is read by the client, not reset', () => {
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    h = await startHarness({ maxBodyBytes: MiB });
    repo = await TestRepo.create({ 'zerverless.yaml': manifest('edge', LUA_FN) });
    const st = await h.register('edge', 'edge', repo.url);
    assert.equal(st.status, 'synced', st.message);
  });
  after(async () => {
    await h?.close();
    await repo?.remove();
  });

  it('a body under the limit still reaches the function', async () => {
    const r = await sendBody(h.url, '/edge/echo', 1000, { headers: { connection: 'close' } });
    assert.equal(r.status, '200 OK', r.response);
    assert.match(r.response, /len 1000$/);
  });

  for (const [name, opts] of [
    ['declared with content-length', {}],
    ['chunked', { chunked: true }],
    ['declared, read only after the whole body is sent', { readAfterSend: true }],
    ['chunked, read only after the whole body is sent', { chunked: true, readAfterSend: true }],
  ] as const) {
    it(`a function: 50 MiB ${name} over a 1 MiB limit answers 413 and closes cleanly`, async () => {
      const r = await sendBody(h.url, '/edge/echo', 50 * MiB, opts);
      assert.equal(r.error, undefined, `the client hit ${r.error} after sending ${r.sent} bytes, having read ${JSON.stringify(r.response.slice(0, 300))}`);
      assert.equal(r.status, '413 Payload Too Large', r.response);
      assert.match(r.response, /PAYLOAD_TOO_LARGE/);
      assert.match(r.response, /\r\nconnection: close\r\n/i);
      assert.equal(r.sent, 50 * MiB);
    });
  }

  it('the API: 50 MiB declared over the limit answers 413 and closes cleanly', async () => {
    const r = await sendBody(h.url, '/api/gitops/applications', 50 * MiB, { headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' } });
    assert.equal(r.error, undefined, `the client hit ${r.error} after sending ${r.sent} bytes, having read ${JSON.stringify(r.response.slice(0, 300))}`);
    assert.equal(r.status, '413 Payload Too Large', r.response);
  });

  it('the API: 50 MiB chunked over the limit answers 413 and closes cleanly', async () => {
    const r = await sendBody(h.url, '/api/gitops/applications', 50 * MiB, { chunked: true, headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' } });
    assert.equal(r.error, undefined, `the client hit ${r.error} after sending ${r.sent} bytes, having read ${JSON.stringify(r.response.slice(0, 300))}`);
    assert.equal(r.status, '413 Payload Too Large', r.response);
  });

  it('lingering is bounded in bytes: a client that sends 400 MiB is cut off', async () => {
    const r = await sendBody(h.url, '/edge/echo', 400 * MiB);
    assert.ok(r.error, 'the server read the whole 400 MiB');
    assert.ok(r.sent < 200 * MiB, `the server read about ${r.sent} bytes`);
  });

  it('lingering is bounded in time: a client that stops sending is closed after the idle time', async () => {
    const r = await sendBody(h.url, '/edge/echo', 50 * MiB, { stallAfter: 2 * MiB, timeoutMs: 30_000 });
    assert.notEqual(r.error, 'TIMEOUT', 'the server kept the stalled connection open');
    assert.equal(r.status, '413 Payload Too Large', r.response);
    assert.ok(r.ms >= 4000, `closed after ${r.ms} ms, before the idle time`);
  });

  for (const [name, path, headers] of [
    ['a 100 KB URL', `/edge/echo?q=${'a'.repeat(100 * 1024)}`, {}],
    ['a 100 KB header', '/edge/echo', { 'x-big': 'b'.repeat(100 * 1024) }],
  ] as const) {
    it(`${name} gets 431 in the error shape and a clean close, not a reset`, async () => {
      const r = await sendBody(h.url, path, 0, { method: 'GET', headers, endAfterAnswer: true, timeoutMs: 30_000 });
      assert.equal(r.error, undefined, `the client hit ${r.error}, having read ${JSON.stringify(r.response.slice(0, 300))}`);
      assert.equal(r.status, '431 Request Header Fields Too Large', r.response);
      assert.match(r.response, /"code":"HEADERS_TOO_LARGE"/);
      assert.match(r.response, /\r\nconnection: close\r\n/i);
    });
  }

  it('a request the parser cannot read gets 400 in the error shape', async () => {
    const r = await sendBody(h.url, '/edge/echo', 0, { method: 'G\u0001T', endAfterAnswer: true, timeoutMs: 30_000 });
    assert.equal(r.status, '400 Bad Request', r.response);
    assert.match(r.response, /"code":"BAD_REQUEST"/);
  });

  it('a returned table without status, headers and body is a JSON 200; mixed with other keys, a 500 naming them', async () => {
    const plain = await h.get('/edge/plain');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get('content-type'), 'application/json');
    assert.deepEqual(await plain.json(), { ok: true });
    const mixed = await h.get('/edge/mixed');
    assert.equal(mixed.status, 500);
    const body = await mixed.json() as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'FUNCTION_BAD_RESPONSE');
    assert.match(body.error.message, /"error"/);
  });

  it('the server answers normally afterwards', async () => {
    const res = await h.get('/edge/echo', { method: 'POST', body: 'abc' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'len 3');
  });
});

const hasDocker = await dockerAvailable();
if (!hasDocker && process.env.CI === 'true') throw new Error('CI=true but no Docker engine answers: the Docker tests must run in CI');

const CGI = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'len=%s' "\${CONTENT_LENGTH:-0}"
head -c "\${CONTENT_LENGTH:-0}" >/dev/null
`;

describe('HTTP edge: a 413 through the docker route is read, not reset', { skip: !hasDocker && 'no Docker engine' }, () => {
  let h: Harness;
  let repo: TestRepo;
  const docker = new Dockerode();
  let image: string | undefined;

  before(async () => {
    await ensureBaseImage();
    h = await startHarness({ maxBodyBytes: MiB });
    repo = await TestRepo.create({
      'zerverless.yaml': manifest('edgedock', `    - path: /cgi-bin/echo
      runtime: docker
      dockerfile: ./svc/Dockerfile
      context: ./svc
      timeout: 30s
`),
      'svc/Dockerfile': `FROM zv-busybox:test
COPY www /www
RUN chmod +x /www/cgi-bin/echo
CMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]
`,
      'svc/www/cgi-bin/echo': CGI,
    });
    const st = await h.register('edgedock', 'edgedock', repo.url);
    assert.equal(st.status, 'synced', st.message);
    image = st.functions[0]?.image;
  });
  after(async () => {
    await h?.api('DELETE', '/edgedock');
    await h?.close();
    await repo?.remove();
    const left = await docker.listContainers({ all: true, filters: { label: ['zerverless.managed=true', 'zerverless.namespace=edgedock'] } });
    for (const c of left) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    if (image) await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    await removeNetworksOf(['edgedock'], docker);
  });

  it('a body under the limit reaches the container', async () => {
    const r = await sendBody(h.url, '/edgedock/cgi-bin/echo', 1000, { headers: { connection: 'close' } });
    assert.equal(r.status, '200 OK', r.response);
    assert.match(r.response, /len=1000\r\n/);
  });

  it('50 MiB chunked: busybox httpd answers without reading a chunked body, and the client reads an answer, not a reset', async () => {
    // The container answers at once without reading a chunked body and closes its side. Whichever
    // comes first reaches the client: the container's own answer (passed through unchanged), the
    // proxy's 503, or the 413 at the body limit; in every case the gateway drains the rest of the
    // body, so the client reads that answer instead of a reset.
    const r = await sendBody(h.url, '/edgedock/cgi-bin/echo', 50 * MiB, { chunked: true });
    assert.equal(r.error, undefined, `the client hit ${r.error} after sending ${r.sent} bytes, having read ${JSON.stringify(r.response.slice(0, 300))}`);
    assert.match(r.status ?? '', /^(200|413|503) /, r.response);
  });

  for (const [name, opts] of [
    ['declared with content-length', {}],
    ['declared, read only after the whole body is sent', { readAfterSend: true }],
  ] as const) {
    it(`50 MiB ${name} over a 1 MiB limit answers 413 and closes cleanly`, async () => {
      const r = await sendBody(h.url, '/edgedock/cgi-bin/echo', 50 * MiB, opts);
      assert.equal(r.error, undefined, `the client hit ${r.error} after sending ${r.sent} bytes, having read ${JSON.stringify(r.response.slice(0, 300))}`);
      assert.equal(r.status, '413 Payload Too Large', r.response);
      assert.match(r.response, /PAYLOAD_TOO_LARGE/);
    });
  }
});
