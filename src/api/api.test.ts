// The management API in process (app.request(), no socket): mounted in the gateway's Hono app
// behind the real guard as server.ts does it, over a real SQLite store, real tokens and credentials.
// The reconciler is a small fake (syncing is the e2e tests' business): it registers into the store
// and answers a status made from the record. Routing, the error shape, 401/403, JSON bodies, 413,
// CORS, and each route's validation.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { managementApi } from './index.js';
import { apiGuard } from './guard.js';
import { credentialsApi } from './credentials.js';
import { createHttpApp } from '../gateway/http.js';
import { ServingTable } from '../serving/table.js';
import { FsBlobStore } from '../store/blobs/fs.js';
import { SqliteStore } from '../store/sqlite/store.js';
import type { AppRecord, NewApp } from '../store/types.js';
import { TokenService } from '../auth/tokens.js';
import { CredentialService } from '../credentials/service.js';
import { MasterKey } from '../secrets/master-key.js';
import { validateRepoUrl } from '../git-cli/url.js';
import { Metrics } from '../telemetry/metrics.js';
import { silentLogger } from '../telemetry/log.js';
import type { Reconciler } from '../reconciler/reconciler.js';

const MAX_BODY = 16 * 1024;
const REPO = 'https://example.com/team/site.git';
const CORS_ORIGIN = 'https://dashboard.example.com';

async function assertError(res: Response, status: number, code: string): Promise<string> {
  assert.equal(res.status, status, `status of ${code}`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
  assert.equal(body.error.code, code);
  return body.error.message;
}

/** Registers into the store and answers a status from the record; records what it was asked. */
function fakeReconciler(store: SqliteStore): { reconciler: Reconciler; calls: string[] } {
  const calls: string[] = [];
  const status = async (app: AppRecord, opts: { settled?: boolean } = {}) => ({
    name: app.name, namespace: app.namespace, source: app.source, status: 'synced', settled: opts.settled ?? false,
  });
  const fake = {
    register: async (input: NewApp) => {
      calls.push(`register ${input.namespace}/${input.name} services=${String(input.allowServices)}`);
      return store.createApp(input);
    },
    status,
    sync: async (id: number) => {
      calls.push(`sync ${id}`);
      const app = await store.getAppById(id);
      assert.ok(app);
      return app;
    },
    remove: async (app: AppRecord) => {
      calls.push(`remove ${app.namespace}/${app.name}`);
      await store.deleteApp(app.id);
    },
    serviceLogs: async (_app: AppRecord, service: string) => [`${service} 1`, `${service} 2`, `${service} 3`],
  };
  return { reconciler: fake as unknown as Reconciler, calls };
}

describe('management API over app.request()', () => {
  let dir: string;
  let store: SqliteStore;
  let app: Hono;
  let calls: string[];
  const tok: Record<'admin' | 'deployer' | 'reader' | 'expiring', string> = { admin: '', deployer: '', reader: '', expiring: '' };
  let clock = Date.now();

  const req = (path: string, who: keyof typeof tok | null, init: RequestInit & { json?: unknown } = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (who) headers.set('authorization', `Bearer ${tok[who]}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return Promise.resolve(app.request(path, { ...init, headers, body }));
  };
  const register = (who: keyof typeof tok, name: string, namespace = 'team'): Promise<Response> =>
    req('/api/gitops/applications', who, { method: 'POST', json: { name, namespace, source: { repoURL: REPO } } });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-api-'));
    store = new SqliteStore(join(dir, 'zerverless.db'));
    const tokens = new TokenService(store, () => new Date(clock));
    const make = async (name: string, role: 'admin' | 'deployer' | 'reader', namespaces: string[] | null, expiresInMs: number | null = null): Promise<string> =>
      (await tokens.create({ name, role, namespaces, services: false, expiresInMs, createdBy: null })).token;
    tok.admin = await make('root', 'admin', null);
    tok.deployer = await make('ci', 'deployer', ['team']);
    tok.reader = await make('viewer', 'reader', ['team']);
    tok.expiring = await make('short', 'reader', ['team'], 60_000);
    const credentials = new CredentialService({ store, key: new MasterKey(randomBytes(32)), tmpDir: join(dir, 'tmp') });
    const fake = fakeReconciler(store);
    calls = fake.calls;
    const api = managementApi({
      store, reconciler: fake.reconciler, credentials, tokens,
      checkRepoUrl: (url) => validateRepoUrl(url, { allowFileRepos: false }),
      extra: { '/credentials': credentialsApi({ store, credentials }) },
    });
    const metrics = new Metrics();
    app = createHttpApp({
      serving: new ServingTable(), blobs: new FsBlobStore(join(dir, 'blobs')), metrics, api,
      guard: apiGuard({ tokens, metrics, logger: silentLogger, corsOrigins: [CORS_ORIGIN] }),
      publicMetrics: false, ready: () => true, maxBodyBytes: MAX_BODY,
    });
  });

  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('401 UNAUTHENTICATED (with WWW-Authenticate) without a token, with a malformed, unknown or expired one', async () => {
    for (const headers of [{}, { authorization: 'Basic abc' }, { authorization: 'Bearer zv_not_a_real_token' }] as Record<string, string>[]) {
      const res = await app.request('/api/whoami', { headers });
      await assertError(res, 401, 'UNAUTHENTICATED');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    }
    assert.equal((await req('/api/whoami', 'expiring')).status, 200);
    clock += 120_000;
    try {
      assert.match(await assertError(await req('/api/whoami', 'expiring'), 401, 'UNAUTHENTICATED'), /expired/);
    } finally {
      clock -= 120_000;
    }
  });

  it('whoami tells a token what it is', async () => {
    const res = await req('/api/whoami', 'deployer');
    assert.equal(res.status, 200);
    const me = (await res.json()) as Record<string, unknown>;
    assert.equal(me.name, 'ci');
    assert.equal(me.role, 'deployer');
    assert.deepEqual(me.namespaces, ['team']);
  });

  it('unknown routes are 404 NOT_FOUND in the error shape, after authentication', async () => {
    await assertError(await req('/api/nothing', 'admin'), 404, 'NOT_FOUND');
    await assertError(await req('/api/gitops/nothing/at/all', 'admin'), 404, 'NOT_FOUND');
    await assertError(await req('/api/nothing', null), 401, 'UNAUTHENTICATED');
  });

  it('a known path asked with a method it does not serve is 405 with Allow', async () => {
    const res = await req('/api/whoami', 'admin', { method: 'PUT', json: {} });
    await assertError(res, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    const sync = await req('/api/gitops/applications/some-app/sync', 'admin', { method: 'DELETE' });
    await assertError(sync, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(sync.headers.get('allow'), 'POST');
    const one = await req('/api/gitops/applications/some-app', 'admin', { method: 'PUT', json: {} });
    await assertError(one, 405, 'METHOD_NOT_ALLOWED');
    assert.match(one.headers.get('allow') ?? '', /DELETE.*GET/);
    // A path no route serves stays 404, and the caller must still be authenticated first.
    await assertError(await req('/api/gitops/applications/a/b/c', 'admin', { method: 'PUT', json: {} }), 404, 'NOT_FOUND');
    await assertError(await req('/api/whoami', null, { method: 'PUT', json: {} }), 401, 'UNAUTHENTICATED');
  });

  it('bodies must be JSON: 415 for another type, 400 for JSON that does not parse, 400 naming fields at fault', async () => {
    await assertError(await req('/api/gitops/applications', 'admin', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await assertError(await req('/api/gitops/applications', 'admin', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": ' }), 400, 'BAD_REQUEST');
    const msg = await assertError(await req('/api/gitops/applications', 'admin', { method: 'POST', json: { name: 'x', source: {}, extra: 1 } }), 400, 'VALIDATION_FAILED');
    assert.match(msg, /namespace: is required/);
    assert.match(msg, /source\.repoURL: is required/);
    assert.match(msg, /unknown field 'extra'/);
    const vendor = await req('/api/tokens', 'admin', { method: 'POST', headers: { 'content-type': 'application/vnd.zv+json' }, body: JSON.stringify({ name: 'v', role: 'reader', namespaces: ['team'] }) });
    assert.equal(vendor.status, 201, 'a +json media type is JSON');
  });

  it('a body over the limit is 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await req('/api/gitops/applications', 'admin', { method: 'POST', json: { name: 'x'.repeat(MAX_BODY) } });
    await assertError(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('register: 201 with the status, the namespace and name checked, 409 for a second one', async () => {
    const res = await register('deployer', 'site');
    assert.equal(res.status, 201);
    assert.deepEqual(await res.json(), { name: 'site', namespace: 'team', source: { repoURL: REPO, branch: 'main', path: '' }, status: 'synced', settled: false });
    assert.ok(calls.includes('register team/site services=false'), 'a deployer token without services may not deploy services');
    await assertError(await register('deployer', 'site'), 409, 'APP_EXISTS');
    await assertError(await register('admin', 'ok', 'api'), 400, 'INVALID_NAMESPACE');
    await assertError(await register('admin', 'Not A Name'), 400, 'VALIDATION_FAILED');
    await assertError(await req('/api/gitops/applications', 'admin', { method: 'POST', json: { name: 'x', namespace: 'team', source: { repoURL: 'file:///etc' } } }), 400, 'INVALID_REPO_URL');
    await assertError(await req('/api/gitops/applications', 'admin', { method: 'POST', json: { name: 'x', namespace: 'team', source: { repoURL: REPO, branch: '-x' } } }), 400, 'VALIDATION_FAILED');
    await assertError(await req('/api/gitops/applications', 'admin', { method: 'POST', json: { name: 'x', namespace: 'team', source: { repoURL: REPO, path: '../up' } } }), 400, 'VALIDATION_FAILED');
  });

  it('403 FORBIDDEN for a namespace the token does not cover or a role that may not write', async () => {
    await assertError(await register('deployer', 'elsewhere', 'other'), 403, 'FORBIDDEN');
    await assertError(await register('reader', 'nope'), 403, 'FORBIDDEN');
    await assertError(await req('/api/gitops/applications?namespace=other', 'reader'), 403, 'FORBIDDEN');
    await assertError(await req('/api/tokens', 'deployer'), 403, 'FORBIDDEN');
    await assertError(await req('/api/tokens', 'reader', { method: 'POST', json: { name: 'x', role: 'admin' } }), 403, 'FORBIDDEN');
  });

  it('lists what the token may read; get, ambiguity and namespaces; paging is checked', async () => {
    assert.equal((await register('admin', 'shared', 'team')).status, 201);
    assert.equal((await register('admin', 'shared', 'other')).status, 201);
    const mine = (await (await req('/api/gitops/applications', 'reader')).json()) as { applications: { namespace: string }[]; total: number };
    assert.ok(mine.applications.length >= 1 && mine.applications.every((a) => a.namespace === 'team'), 'only the covered namespace');
    const all = (await (await req('/api/gitops/applications', 'admin')).json()) as { applications: { namespace: string }[]; total: number };
    assert.ok(all.applications.some((a) => a.namespace === 'other'));
    assert.equal(all.total, all.applications.length);
    const page = (await (await req('/api/gitops/applications?limit=1&offset=1', 'admin')).json()) as { applications: unknown[]; total: number };
    assert.equal(page.applications.length, 1);
    assert.equal(page.total, all.total);
    await assertError(await req('/api/gitops/applications?limit=-1', 'admin'), 400, 'BAD_REQUEST');
    assert.equal(((await (await req('/api/gitops/applications/shared', 'reader')).json()) as { namespace: string }).namespace, 'team', 'a scoped token sees only its own');
    await assertError(await req('/api/gitops/applications/shared', 'admin'), 409, 'APP_AMBIGUOUS');
    assert.equal(((await (await req('/api/gitops/applications/shared?namespace=other', 'admin')).json()) as { namespace: string }).namespace, 'other');
    await assertError(await req('/api/gitops/applications/missing', 'admin'), 404, 'APP_NOT_FOUND');
    await assertError(await req('/api/gitops/applications/shared?namespace=other', 'reader'), 403, 'FORBIDDEN');
  });

  it('sync (and async sync), service logs with tail, delete', async () => {
    assert.equal((await register('admin', 'syncme')).status, 201);
    const sync = await req('/api/gitops/applications/syncme/sync', 'deployer', { method: 'POST' });
    assert.equal(sync.status, 200);
    assert.equal(((await sync.json()) as { settled: boolean }).settled, true);
    const later = await req('/api/gitops/applications/syncme/sync?async=true', 'deployer', { method: 'POST' });
    assert.equal(later.status, 202);
    assert.equal(((await later.json()) as { status: string }).status, 'syncing');
    await assertError(await req('/api/gitops/applications/syncme/sync', 'reader', { method: 'POST' }), 403, 'FORBIDDEN');
    const logs = await req('/api/gitops/applications/syncme/services/web/logs?tail=2', 'reader');
    assert.deepEqual(await logs.json(), { service: 'web', lines: ['web 2', 'web 3'] });
    await assertError(await req('/api/gitops/applications/syncme/services/web/logs?tail=x', 'reader'), 400, 'BAD_REQUEST');
    await assertError(await req('/api/gitops/applications/syncme', 'reader', { method: 'DELETE' }), 403, 'FORBIDDEN');
    const del = await req('/api/gitops/applications/syncme', 'deployer', { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    assert.ok(calls.includes('remove team/syncme'));
    await assertError(await req('/api/gitops/applications/syncme', 'admin'), 404, 'APP_NOT_FOUND');
  });

  it('tokens: made once with the secret, listed without it, revoked; 404 TOKEN_NOT_FOUND after', async () => {
    const made = await req('/api/tokens', 'admin', { method: 'POST', json: { name: 'bot', role: 'deployer', namespaces: ['team'], expiresIn: '1h' } });
    assert.equal(made.status, 201);
    const t = (await made.json()) as { id: string; token: string; role: string };
    assert.equal(t.role, 'deployer');
    assert.ok(t.token.length > 20);
    const listed = await (await req('/api/tokens', 'admin')).text();
    assert.ok(listed.includes(t.id) && !listed.includes(t.token), 'listed, never with its secret');
    assert.ok(!/hash/i.test(listed));
    await assertError(await req('/api/tokens', 'admin', { method: 'POST', json: { name: 'bad', role: 'deployer' } }), 400, 'VALIDATION_FAILED');
    assert.equal((await app.request('/api/whoami', { headers: { authorization: `Bearer ${t.token}` } })).status, 200);
    assert.equal((await req(`/api/tokens/${t.id}`, 'admin', { method: 'DELETE' })).status, 204);
    await assertError(await app.request('/api/whoami', { headers: { authorization: `Bearer ${t.token}` } }), 401, 'UNAUTHENTICATED');
    await assertError(await req(`/api/tokens/${t.id}`, 'admin', { method: 'DELETE' }), 404, 'TOKEN_NOT_FOUND');
  });

  it('CORS: an allowed origin gets its headers and preflights; another origin is 403 even with a token', async () => {
    const pre = await app.request('/api/whoami', { method: 'OPTIONS', headers: { origin: CORS_ORIGIN, 'access-control-request-method': 'GET' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), CORS_ORIGIN);
    const ok = await req('/api/whoami', 'admin', { headers: { origin: CORS_ORIGIN } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), CORS_ORIGIN);
    await assertError(await req('/api/whoami', 'admin', { headers: { origin: 'https://evil.example' } }), 403, 'FORBIDDEN');
    await assertError(await req('/api/whoami', 'admin', { headers: { origin: 'null' } }), 403, 'FORBIDDEN');
  });
});
