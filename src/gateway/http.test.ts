// The HTTP edge in process (app.request(), no socket): the Hono app of gateway/http.ts built as
// server.ts builds it, with real parts — a real ServingTable holding Lua functions loaded by the real
// Lua runtime, a static site in a real blob store, the real API guard over a real SQLite store.
// Routing, the error shape, 404/405 (Allow), 413, the response backstop, system endpoints. The e2e
// tests (test/e2e) cover what needs a socket: 431, lingering after a 413, docker streaming.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { createHttpApp } from './http.js';
import { ServingTable, type ServedFunction } from '../serving/table.js';
import { DrainingFunction } from '../serving/drain.js';
import { LuaRuntime } from '../runtimes/lua/index.js';
import type { LoadedFunction } from '../runtimes/types.js';
import { FsBlobStore } from '../store/blobs/fs.js';
import { SqliteStore } from '../store/sqlite/store.js';
import { TokenService } from '../auth/tokens.js';
import { apiGuard } from '../api/guard.js';
import { Metrics } from '../telemetry/metrics.js';
import { silentLogger } from '../telemetry/log.js';
import type { StaticFileEntry } from '../core/desired.js';

const MAX_BODY = 64 * 1024;

const LUA = {
  echo: `function handle(req)
  return {status = 200, body = {method = req.method, path = req.path, query = req.query, body = req.body, h = req.headers["x-h"]}}
end`,
  text: 'function handle(req) return "hello" end',
  throws: 'function handle(req) error("boom") end',
  headers: `function handle(req)
  return {status = 201, headers = {["x-ok"] = "yes", connection = "upgrade", ["transfer-encoding"] = "chunked"}, body = "made"}
end`,
  big: 'function handle(req) return string.rep("x", 4096) end',
  noContent: 'function handle(req) return {status = 204, body = "ignored"} end',
};

/** An error answer: the status and the one shape {"error": {"code", "message"}}. */
async function assertError(res: Response, status: number, code: string): Promise<string> {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  return body.error.message;
}

describe('gateway over app.request()', () => {
  let dir: string;
  let store: SqliteStore;
  let lua: LuaRuntime;
  let app: Hono;
  let capped: Hono;
  let token: string;
  let ready = true;
  const loaded: LoadedFunction[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-gateway-'));
    store = new SqliteStore(join(dir, 'zerverless.db'));
    const tokens = new TokenService(store);
    token = (await tokens.create({ name: 'admin', role: 'admin', namespaces: null, services: true, expiresInMs: null, createdBy: null })).token;
    const blobs = new FsBlobStore(join(dir, 'blobs'));
    lua = new LuaRuntime();
    const serving = new ServingTable();
    const functions = new Map<string, ServedFunction>();
    for (const [name, code] of Object.entries(LUA)) {
      const path = name === 'echo' ? '/api/echo' : `/${name}`;
      const fn = await lua.load({ id: `team/app${path}`, runtime: 'lua', code, filename: 'zerverless.yaml', timeoutMs: 5000, memoryMb: 64, env: {} }, () => {});
      loaded.push(fn);
      functions.set(path, { appKey: 'team/app', path, runtime: 'lua', handle: new DrainingFunction(fn), timeoutMs: 5000 });
    }
    const files = new Map<string, StaticFileEntry>();
    for (const [path, text] of Object.entries({ 'index.html': '<h1>hi</h1>', 'css/site.css': 'body{}', 'about.txt': 'about me' })) {
      const bytes = Buffer.from(text);
      files.set(path, { path, hash: await blobs.put(bytes), size: bytes.length });
    }
    serving.setApp('team/app', { namespace: 'team', functions, static: { appKey: 'team/app', files } });
    const api = new Hono({ strict: false });
    api.get('/ping', (c) => c.json({ pong: true }));
    const metrics = new Metrics();
    const guard = apiGuard({ tokens, metrics, logger: silentLogger, corsOrigins: [] });
    const deps = { serving, blobs, metrics, api, guard, publicMetrics: false, ready: () => ready, maxBodyBytes: MAX_BODY };
    app = createHttpApp(deps);
    capped = createHttpApp({ ...deps, maxResponseBytes: 1024 });
  });

  after(async () => {
    for (const f of loaded) await f.dispose().catch(() => {});
    await lua.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers /healthz, and /readyz until the server is closing (then 503 NOT_READY)', async () => {
    assert.deepEqual(await (await app.request('/healthz')).json(), { status: 'ok' });
    assert.deepEqual(await (await app.request('/readyz')).json(), { status: 'ready' });
    ready = false;
    try {
      await assertError(await app.request('/readyz'), 503, 'NOT_READY');
    } finally {
      ready = true;
    }
  });

  it('/metrics needs a token unless public', async () => {
    await assertError(await app.request('/metrics'), 401, 'UNAUTHENTICATED');
    const res = await app.request('/metrics', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /zerverless_/);
  });

  it('invokes a function with the path below the namespace, the first value of each query key, headers and body', async () => {
    const res = await app.request('/team/api/echo/x/y?a=1&a=2&b=two', { method: 'POST', headers: { 'X-H': 'v', 'content-type': 'text/plain' }, body: 'hi there' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(await res.json(), { method: 'POST', path: '/api/echo/x/y', query: { a: '1', b: 'two' }, body: 'hi there', h: 'v' });
  });

  it('routes by exact path, then the longest prefix on a / boundary', async () => {
    assert.equal(await (await app.request('/team/text')).text(), 'hello');
    assert.equal(await (await app.request('/team/text/deeper/still')).text(), 'hello');
    await assertError(await app.request('/team/textual'), 404, 'NOT_FOUND');
    await assertError(await app.request('/team/'), 404, 'NOT_FOUND');
    await assertError(await app.request('/nobody/text'), 404, 'NOT_FOUND');
    await assertError(await app.request('/'), 404, 'NOT_FOUND');
  });

  it('never routes a reserved namespace to functions', async () => {
    for (const ns of ['ui', 'hooks']) await assertError(await app.request(`/${ns}/text`), 404, 'NOT_FOUND');
  });

  it('a function that throws is a 500 FUNCTION_ERROR with its message', async () => {
    const msg = await assertError(await app.request('/team/throws'), 500, 'FUNCTION_ERROR');
    assert.match(msg, /boom/);
    assert.equal(await (await app.request('/team/text')).text(), 'hello', 'and the server keeps answering');
  });

  it('keeps the status and headers a function sets, but not hop-by-hop ones', async () => {
    const res = await app.request('/team/headers');
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-ok'), 'yes');
    assert.equal(res.headers.get('connection'), null);
    assert.equal(res.headers.get('transfer-encoding'), null);
    assert.equal(await res.text(), 'made');
  });

  it('sends no body for HEAD and for a 204', async () => {
    const head = await app.request('/team/text', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const none = await app.request('/team/noContent');
    assert.equal(none.status, 204);
    assert.equal(await none.text(), '');
  });

  it('refuses a body over the limit with 413 PAYLOAD_TOO_LARGE (declared or streamed) and closes', async () => {
    const declared = await app.request('/team/api/echo', { method: 'POST', body: 'x'.repeat(MAX_BODY + 1) });
    await assertError(declared, 413, 'PAYLOAD_TOO_LARGE');
    assert.equal(declared.headers.get('connection'), 'close');
    const chunks = [new Uint8Array(MAX_BODY).fill(120), new Uint8Array(10).fill(120)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const streamed = await app.request('/team/api/echo', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    await assertError(streamed, 413, 'PAYLOAD_TOO_LARGE');
    const fits = await app.request('/team/api/echo', { method: 'POST', body: 'x'.repeat(MAX_BODY) });
    assert.equal(fits.status, 200);
    assert.equal(((await fits.json()) as { body: string }).body.length, MAX_BODY);
  });

  it('refuses a response over maxResponseBytes (the backstop) with 500 FUNCTION_RESPONSE_TOO_LARGE', async () => {
    await assertError(await capped.request('/team/big'), 500, 'FUNCTION_RESPONSE_TOO_LARGE');
    assert.equal((await (await app.request('/team/big')).text()).length, 4096);
  });

  it('serves the static site: index.html, files, 301 to the folder, 405 with Allow, 404 in the error shape', async () => {
    const index = await app.request('/static/team/');
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(await index.text(), '<h1>hi</h1>');
    const css = await app.request('/static/team/css/site.css');
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    assert.equal(await css.text(), 'body{}');
    const bare = await app.request('/static/team?x=1');
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get('location'), '/static/team/?x=1');
    const post = await app.request('/static/team/about.txt', { method: 'POST', body: '{}' });
    await assertError(post, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await assertError(await app.request('/static/team/missing.txt'), 404, 'NOT_FOUND');
    await assertError(await app.request('/static/nobody/'), 404, 'NOT_FOUND');
    await assertError(await app.request('/static/'), 404, 'NOT_FOUND');
  });

  it('mounts the API behind the guard: 401 without a token, the route with one, 404 in the error shape past it', async () => {
    const anon = await app.request('/api/ping');
    await assertError(anon, 401, 'UNAUTHENTICATED');
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Bearer/);
    const auth = { authorization: `Bearer ${token}` };
    assert.deepEqual(await (await app.request('/api/ping', { headers: auth })).json(), { pong: true });
    await assertError(await app.request('/api/nothing/here', { headers: auth }), 404, 'NOT_FOUND');
    await assertError(await app.request('/api/ping', { method: 'POST', headers: auth, body: 'x'.repeat(MAX_BODY + 1) }), 413, 'PAYLOAD_TOO_LARGE');
  });
});
