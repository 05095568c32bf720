// The permission matrix of PRODUCT.md §9 over the real server: every API route × every kind of
// caller × namespace a and b. No cross-namespace read or write may succeed. The observed table is
// the one in docs/security.md (ZV_WRITE_MATRIX=1 rewrites it there).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { luaManifest } from './fixtures.js';

const DOC = fileURLToPath(new URL('../../docs/security.md', import.meta.url));
const NS = ['a', 'b'] as const;
type Ns = (typeof NS)[number];

const MANIFEST = luaManifest('hi');

interface Caller {
  name: string;
  token: string | null;
}

interface Route {
  name: string;
  /** Makes what the call needs (with the admin token) and returns the call. */
  call: (ns: Ns) => Promise<{ method: string; path: string; body?: unknown }>;
  /** Status of a call that is allowed. */
  ok: number;
  /** What the route needs: read or write access to the namespace, or admin; 'any' = any valid token. */
  needs: 'read' | 'write' | 'admin' | 'any';
  /** An event stream: only its status (and the error of a refusal) is read, then it is closed. */
  stream?: boolean;
}

describe('permission matrix (every API route × caller × namespace)', () => {
  let h: Harness;
  let repo: TestRepo;
  const callers: Caller[] = [];
  let counter = 0;
  const unique = (p: string) => `${p}-${++counter}`;

  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await h.call<Record<string, unknown>>(method, path, { body });
    assert.ok(r.status < 300, `${method} ${path} as admin answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const makeToken = async (name: string, extra: Record<string, unknown>): Promise<{ id: string; token: string }> =>
    (await admin('POST', '/tokens', { name, ...extra })) as { id: string; token: string };
  // Later applications of a namespace fail their sync (the first owns /hi): they only need to exist.
  const register = async (ns: Ns, name: string, want: 'synced' | 'done' = 'done') => {
    await admin('POST', '/gitops/applications', { name, namespace: ns, source: { repoURL: repo.url } });
    await h.waitFor(name, (s) => (want === 'synced' ? s.status === 'synced' : s.status !== 'pending' && s.status !== 'syncing'), 120_000, ns);
  };

  before(async () => {
    h = await startHarness();
    repo = await TestRepo.create({ 'zerverless.yaml': MANIFEST });
    for (const ns of NS) await register(ns, 'app', 'synced');
    const expired = await makeToken('expired', { role: 'admin', expiresIn: 1 });
    const revoked = await makeToken('revoked', { role: 'admin' });
    await admin('DELETE', `/tokens/${revoked.id}`);
    callers.push(
      { name: 'no token', token: null },
      { name: 'wrong token', token: `zv_${'A'.repeat(43)}` },
      { name: 'expired', token: expired.token },
      { name: 'revoked', token: revoked.token },
      { name: 'reader of a', token: (await makeToken('reader-a', { role: 'reader', namespaces: ['a'] })).token },
      { name: 'deployer of a', token: (await makeToken('deployer-a', { role: 'deployer', namespaces: ['a'], services: true })).token },
      { name: 'deployer of a, no services', token: (await makeToken('deployer-a-nosvc', { role: 'deployer', namespaces: ['a'] })).token },
      { name: 'admin', token: h.token },
    );
    // The expired token must really have expired before the matrix runs (it lived 1 s).
    const deadline = Date.now() + 60_000;
    while ((await h.call('GET', '/whoami', { token: expired.token })).status !== 401) {
      assert.ok(Date.now() < deadline, 'the 1 s token never expired');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await h?.close();
    await repo?.remove();
  });

  const routes: Route[] = [
    { name: 'POST /api/gitops/applications', needs: 'write', ok: 201,
      call: async (ns) => ({ method: 'POST', path: '/gitops/applications', body: { name: unique('reg'), namespace: ns, source: { repoURL: repo.url } } }) },
    { name: 'GET /api/gitops/applications?namespace=', needs: 'read', ok: 200, call: async (ns) => ({ method: 'GET', path: `/gitops/applications?namespace=${ns}` }) },
    { name: 'GET /api/gitops/applications/{name}', needs: 'read', ok: 200, call: async (ns) => ({ method: 'GET', path: `/gitops/applications/app?namespace=${ns}` }) },
    { name: 'GET …/{name}/syncs', needs: 'read', ok: 200, call: async (ns) => ({ method: 'GET', path: `/gitops/applications/app/syncs?namespace=${ns}` }) },
    // A plan preview changes nothing: a reader may ask.
    { name: 'GET …/{name}/plan', needs: 'read', ok: 200, call: async (ns) => ({ method: 'GET', path: `/gitops/applications/app/plan?namespace=${ns}` }) },
    // Authorised callers learn that the application has no such service (404); others get 403/401.
    { name: 'GET …/{name}/services/{svc}/logs', needs: 'read', ok: 404, call: async (ns) => ({ method: 'GET', path: `/gitops/applications/app/services/none/logs?namespace=${ns}` }) },
    // Kept function output: a reader may read it, like a service's (docs/security.md).
    { name: 'GET …/{name}/logs', needs: 'read', ok: 200, call: async (ns) => ({ method: 'GET', path: `/gitops/applications/app/logs?namespace=${ns}&tail=5` }) },
    { name: 'POST …/{name}/sync', needs: 'write', ok: 202, call: async (ns) => ({ method: 'POST', path: `/gitops/applications/app/sync?namespace=${ns}&async=true` }) },
    { name: 'POST …/{name}/suspend', needs: 'write', ok: 200, call: async (ns) => ({ method: 'POST', path: `/gitops/applications/app/suspend?namespace=${ns}`, body: { reason: 'matrix' } }) },
    { name: 'POST …/{name}/resume', needs: 'write', ok: 200, call: async (ns) => ({ method: 'POST', path: `/gitops/applications/app/resume?namespace=${ns}` }) },
    { name: 'GET …/{name}/notify', needs: 'read', ok: 200, call: async (ns) => ({ method: 'GET', path: `/gitops/applications/app/notify?namespace=${ns}` }) },
    { name: 'GET …/{name}/revisions', needs: 'read', ok: 200, call: async (ns) => ({ method: 'GET', path: `/gitops/applications/app/revisions?namespace=${ns}` }) },
    // Back to the revision it serves (its only one): nothing changes but the suspension.
    { name: 'POST …/{name}/rollback', needs: 'write', ok: 200,
      call: async (ns) => {
        const { revisions } = (await admin('GET', `/gitops/applications/app/revisions?namespace=${ns}`)) as { revisions: { revision: string }[] };
        return { method: 'POST', path: `/gitops/applications/app/rollback?namespace=${ns}`, body: { revision: revisions[0]?.revision } };
      } },
    { name: 'PATCH …/{name}', needs: 'write', ok: 200, call: async (ns) => ({ method: 'PATCH', path: `/gitops/applications/app?namespace=${ns}`, body: { source: { branch: 'main' } } }) },
    { name: 'DELETE …/{name}', needs: 'write', ok: 204,
      call: async (ns) => {
        const name = unique('del');
        await register(ns, name);
        return { method: 'DELETE', path: `/gitops/applications/${name}?namespace=${ns}` };
      } },
    { name: 'POST /api/credentials', needs: 'write', ok: 201,
      call: async (ns) => ({ method: 'POST', path: '/credentials', body: { name: unique('cred'), namespace: ns, urlPrefix: 'https://git.example.com/team/', username: 'u', password: 'matrix-secret' } }) },
    { name: 'GET /api/credentials?namespace=', needs: 'read', ok: 200, call: async (ns) => ({ method: 'GET', path: `/credentials?namespace=${ns}` }) },
    { name: 'GET /api/credentials/{name}', needs: 'read', ok: 200,
      call: async (ns) => {
        const name = unique('cget');
        await admin('POST', '/credentials', { name, namespace: ns, urlPrefix: 'https://git.example.com/y/', username: 'u', password: 'matrix-secret' });
        return { method: 'GET', path: `/credentials/${name}?namespace=${ns}` };
      } },
    { name: 'DELETE /api/credentials/{name}', needs: 'write', ok: 204,
      call: async (ns) => {
        const name = unique('cdel');
        await admin('POST', '/credentials', { name, namespace: ns, urlPrefix: 'https://git.example.com/x/', username: 'u', password: 'matrix-secret' });
        return { method: 'DELETE', path: `/credentials/${name}?namespace=${ns}` };
      } },
    { name: 'POST /api/tokens', needs: 'admin', ok: 201, call: async (ns) => ({ method: 'POST', path: '/tokens', body: { name: unique('t'), role: 'reader', namespaces: [ns] } }) },
    { name: 'GET /api/tokens', needs: 'admin', ok: 200, call: async () => ({ method: 'GET', path: '/tokens' }) },
    { name: 'DELETE /api/tokens/{id}', needs: 'admin', ok: 204,
      call: async (ns) => {
        const t = await makeToken(unique('victim'), { role: 'reader', namespaces: [ns] });
        return { method: 'DELETE', path: `/tokens/${t.id}` };
      } },
    { name: 'GET /api/whoami', needs: 'any', ok: 200, call: async () => ({ method: 'GET', path: '/whoami' }) },
    { name: 'GET /api/openapi.json', needs: 'any', ok: 200, call: async () => ({ method: 'GET', path: '/openapi.json' }) },
    { name: 'GET /api/secrets/recipient', needs: 'any', ok: 200, call: async () => ({ method: 'GET', path: '/secrets/recipient' }) },
    // Live events of one namespace (every namespace the token covers without ?namespace=).
    { name: 'GET /api/events?namespace=', needs: 'read', ok: 200, stream: true, call: async (ns) => ({ method: 'GET', path: `/events?namespace=${ns}` }) },
    { name: 'POST /api/events/ticket', needs: 'any', ok: 201, call: async () => ({ method: 'POST', path: '/events/ticket' }) },
  ];

  /** The status of a GET of an event stream (closed at once) and, when refused, its error. */
  const streamStatus = async (path: string, token: string | null): Promise<{ status: number; body: { error?: { code?: string } } | null }> => {
    const abort = new AbortController();
    const res = await fetch(`${h.url}/api${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` }, signal: abort.signal });
    if (res.status === 200) {
      abort.abort();
      return { status: 200, body: null };
    }
    return { status: res.status, body: (await res.json()) as { error?: { code?: string } } };
  };

  const expected = (route: Route, caller: Caller, ns: Ns): number => {
    if (['no token', 'wrong token', 'expired', 'revoked'].includes(caller.name)) return 401;
    if (caller.name === 'admin' || route.needs === 'any') return route.ok;
    if (route.needs === 'admin') return 403;
    if (ns !== 'a') return 403;
    if (route.needs === 'write' && caller.name === 'reader of a') return 403;
    return route.ok;
  };

  it('answers every cell as the access rules say, and no cross-namespace call succeeds', async () => {
    const rows: string[] = [];
    const wrong: string[] = [];
    let cells = 0;
    let crossNamespaceSuccesses = 0;
    for (const route of routes) {
      const row: string[] = [];
      for (const caller of callers) {
        const got: string[] = [];
        for (const ns of NS) {
          const { method, path, body } = await route.call(ns);
          const r = route.stream ? await streamStatus(path, caller.token) : await h.call<{ error?: { code?: string } }>(method, path, { body, token: caller.token });
          cells++;
          const want = expected(route, caller, ns);
          if (r.status !== want) wrong.push(`${route.name} as ${caller.name} in ${ns}: ${r.status} ${JSON.stringify(r.body)} (expected ${want})`);
          if (r.status === 401) assert.equal(r.body?.error?.code, 'UNAUTHENTICATED');
          if (r.status === 403) assert.equal(r.body?.error?.code, 'FORBIDDEN');
          const scoped = caller.name !== 'admin' && caller.token !== null;
          if (scoped && ns === 'b' && route.needs !== 'any' && r.status < 300) crossNamespaceSuccesses++;
          got.push(String(r.status));
        }
        row.push(got[0] === got[1] ? (got[0] as string) : got.join(' / '));
      }
      rows.push(`| ${route.name} | ${row.join(' | ')} |`);
    }
    assert.deepEqual(wrong, []);
    assert.equal(crossNamespaceSuccesses, 0);
    assert.equal(cells, routes.length * callers.length * NS.length);

    const table = [
      `| route (namespace a / b) | ${callers.map((c) => c.name).join(' | ')} |`,
      `|---|${callers.map(() => '---').join('|')}|`,
      ...rows,
    ].join('\n');
    const begin = '<!-- matrix:begin -->';
    const end = '<!-- matrix:end -->';
    const doc = await readFile(DOC, 'utf8');
    const current = doc.slice(doc.indexOf(begin) + begin.length, doc.indexOf(end)).trim();
    if (process.env.ZV_WRITE_MATRIX === '1') {
      await writeFile(DOC, `${doc.slice(0, doc.indexOf(begin) + begin.length)}\n${table}\n${doc.slice(doc.indexOf(end))}`);
    } else {
      assert.equal(current, table, 'docs/security.md shows another matrix: run ZV_WRITE_MATRIX=1 node scripts/run-tests.mjs permissions');
    }
  });

  it('never answers a secret: no password, key or token hash in any answer of the matrix', async () => {
    const creds = await h.call('GET', '/credentials');
    assert.ok(!JSON.stringify(creds.body).includes('matrix-secret'));
    const tokens = await h.call('GET', '/tokens');
    assert.ok(!JSON.stringify(tokens.body).includes('zv_'), 'token listings carry no secret');
  });

  it('lists only what the token may read', async () => {
    const reader = callers.find((c) => c.name === 'reader of a') as Caller;
    const all = await h.call<{ applications: { namespace: string }[]; total: number }>('GET', '/gitops/applications', { token: reader.token });
    assert.equal(all.status, 200);
    assert.ok(all.body.applications.length > 0);
    assert.deepEqual([...new Set(all.body.applications.map((a) => a.namespace))], ['a']);
    assert.equal(all.body.total, all.body.applications.length);
    // A name that exists only in namespace b is not found for a token of namespace a.
    const other = await h.call<{ error: { code: string } }>('GET', '/gitops/applications/app', { token: reader.token });
    assert.equal(other.status, 200, 'app exists in a and b: the reader sees only the one in a');
    const creds = await h.call<{ credentials: { namespace: string }[] }>('GET', '/credentials', { token: reader.token });
    assert.ok(creds.body.credentials.every((c) => c.namespace === 'a' || c.namespace === '*'));
  });

  it('a deployer without services: true cannot deploy apps/ services; nothing is deployed', async () => {
    const svcRepo = await TestRepo.create({
      'zerverless.yaml': MANIFEST,
      'apps/web/app.yaml': 'name: web\nversion: "1.0.0"\nsource: {type: git, url: "https://example.invalid/x.git", ref: main}\n',
    });
    try {
      const nosvc = callers.find((c) => c.name === 'deployer of a, no services') as Caller;
      const r = await h.call('POST', '/gitops/applications', { token: nosvc.token, body: { name: 'svc', namespace: 'a', source: { repoURL: svcRepo.url } } });
      assert.equal(r.status, 201);
      const s = await h.waitFor('svc', (st) => st.status === 'error', 120_000, 'a');
      assert.match(s.message, /^FORBIDDEN: .*services: true/);
      assert.deepEqual(s.functions, [], 'all or nothing: not even the functions were deployed');
      assert.equal((await h.get('/a/hi')).status, 200, 'the other application of the namespace keeps serving');
    } finally {
      await svcRepo.remove();
    }
  });

  it('refuses cross-site requests: other origins, non-JSON bodies, and CORS only for --cors-origin', async () => {
    // The text/plain POST a page of another site can send without a preflight.
    const csrf = await h.call('POST', '/gitops/applications', {
      token: null, body: JSON.stringify({ name: 'csrf', namespace: 'a', source: { repoURL: repo.url } }),
      headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
    });
    assert.equal(csrf.status, 403);
    const plain = await h.call('POST', '/gitops/applications', {
      body: JSON.stringify({ name: 'plain', namespace: 'a', source: { repoURL: repo.url } }), headers: { 'content-type': 'text/plain' },
    });
    assert.equal(plain.status, 415);
    assert.equal((await h.api('GET', '/plain?namespace=a')).status, 404, 'nothing was registered');
    const pre = await fetch(`${h.url}/api/gitops/applications`, {
      method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
    assert.notEqual(pre.status, 204);

    const h2 = await startHarness({ corsOrigins: ['https://console.example'] });
    try {
      const ok = await fetch(`${h2.url}/api/gitops/applications`, {
        method: 'OPTIONS', headers: { origin: 'https://console.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
      assert.equal(ok.status, 204);
      assert.equal(ok.headers.get('access-control-allow-origin'), 'https://console.example');
      const list = await fetch(`${h2.url}/api/gitops/applications`, { headers: { origin: 'https://console.example', authorization: `Bearer ${h2.token}` } });
      assert.equal(list.status, 200);
      assert.equal(list.headers.get('access-control-allow-origin'), 'https://console.example');
      const noToken = await fetch(`${h2.url}/api/gitops/applications`, { headers: { origin: 'https://console.example' } });
      assert.equal(noToken.status, 401);
    } finally {
      await h2.close();
    }
  });

  it('/metrics needs a token unless --public-metrics; failures are counted, never with the token', async () => {
    assert.equal((await h.get('/metrics')).status, 401);
    const m = await h.get('/metrics', { headers: { authorization: `Bearer ${h.token}` } });
    assert.equal(m.status, 200);
    const text = await m.text();
    assert.match(text, /zerverless_auth_failures_total\{reason="unknown"\} [1-9]/);
    assert.match(text, /zerverless_auth_failures_total\{reason="missing"\} [1-9]/);
    assert.match(text, /zerverless_auth_failures_total\{reason="forbidden"\} [1-9]/);
    assert.match(text, /zerverless_auth_failures_total\{reason="expired"\} [1-9]/);
    assert.ok(!text.includes('zv_'), 'no token in the metrics');
    const pub = await startHarness({ publicMetrics: true });
    try {
      assert.equal((await pub.get('/metrics')).status, 200);
      assert.equal((await pub.get('/healthz')).status, 200);
      assert.equal((await fetch(`${pub.url}/api/gitops/applications`)).status, 401, 'the API still needs a token');
    } finally {
      await pub.close();
    }
  });
});
