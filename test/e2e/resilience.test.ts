// End to end: misbehaving functions, updates under load, limits, API errors, conflicts, polling.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRepo } from '../support/repo.js';
import { errorCode, startHarness, type Harness } from '../support/server.js';

const LOOPS = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: loops
  namespace: loops
spec:
  functions:
    - path: /lua-loop
      runtime: lua
      timeout: 1s
      code: |
        function handle(req)
          while true do end
        end
    - path: /py-loop
      runtime: python
      timeout: 1s
      code: |
        def handle(req):
            while True:
                pass
    - path: /js-loop
      runtime: js
      timeout: 1s
      code: |
        function handle(req) { for (;;) {} }
    - path: /ok
      runtime: lua
      code: |
        function handle(req) return "still here" end
`;

/** Waits for `pred`; the deadline is generous (a loaded machine is slow), it only ends a wait that will never end. */
async function until(what: string, pred: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A request body that arrives in two parts, 20 ms apart. */
function slowBody(i: number): ReadableStream<Uint8Array> {
  return new ReadableStream({
    async start(controller) {
      controller.enqueue(new TextEncoder().encode(`client ${i} `));
      await new Promise((r) => setTimeout(r, 20));
      controller.enqueue(new TextEncoder().encode('done'));
      controller.close();
    },
  });
}

function versioned(v: number): string {
  return `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: live
  namespace: live
spec:
  functions:
    - path: /v
      runtime: lua
      code: |
        function handle(req) return "v${v}" end
    - path: /js
      runtime: js
      code: |
        function handle(req) { return "js${v}" }
    - path: /py
      runtime: python
      code: |
        def handle(req):
            return "py${v}"
`;
}

describe('resilience', () => {
  let h: Harness;
  const repos: TestRepo[] = [];
  const newRepo = async (files: Record<string, string>) => {
    const r = await TestRepo.create(files);
    repos.push(r);
    return r;
  };

  before(async () => {
    h = await startHarness({ maxBodyBytes: 1024 * 1024 });
  });
  after(async () => {
    await h.close();
    for (const r of repos) await r.remove();
  });

  it('an endless loop in each runtime answers 504 within its timeout while other functions answer', async () => {
    const repo = await newRepo({ 'zerverless.yaml': LOOPS });
    const st = await h.register('loops', 'loops', repo.url);
    assert.equal(st.status, 'synced', st.message);
    const loops = ['/lua-loop', '/py-loop', '/js-loop'].map(async (p) => {
      const res = await h.get(`/loops${p}`);
      return { p, status: res.status, code: (await errorCode(res)) };
    });
    await new Promise((r) => setTimeout(r, 200));
    const ok = await h.get('/loops/ok');
    assert.equal(await ok.text(), 'still here');
    for (const r of await Promise.all(loops)) {
      assert.equal(r.status, 504, r.p);
      // FUNCTION_TIMEOUT is the proof the 1 s timeout was enforced: the loops never end by themselves.
      assert.equal(r.code, 'FUNCTION_TIMEOUT', r.p);
    }
    // and they answer (504 again) on the next call: their instances were replaced
    assert.equal((await h.get('/loops/js-loop')).status, 504);
    assert.equal(await (await h.get('/loops/ok')).text(), 'still here');
  });

  it('50 concurrent clients during an update see zero failed requests', async () => {
    const repo = await newRepo({ 'zerverless.yaml': versioned(1) });
    const st = await h.register('live', 'live', repo.url);
    assert.equal(st.status, 'synced', st.message);
    let stop = false;
    const failures: string[] = [];
    const seen = new Set<string>();
    let requests = 0;
    const client = async (i: number) => {
      const paths = ['/live/v', '/live/js', '/live/py'];
      while (!stop) {
        const p = paths[i % 3] as string;
        try {
          // half the clients POST a body, sent slowly enough to straddle the switch
          const res = i % 2 === 0 ? await h.get(p) : await h.get(p, { method: 'POST', body: slowBody(i), duplex: 'half' } as RequestInit);
          const body = await res.text();
          requests++;
          if (res.status !== 200) failures.push(`${p}: ${res.status} ${body}`);
          else seen.add(body);
        } catch (e) {
          failures.push(`${p}: ${String(e)}`);
        }
      }
    };
    const clients = Array.from({ length: 50 }, (_, i) => client(i));
    // Counted, not timed: a loaded machine answers fewer requests per second.
    await until('60 requests before the first update', () => requests >= 60);
    for (const v of [2, 3]) {
      await repo.commit({ 'zerverless.yaml': versioned(v) });
      const s = await h.sync('live');
      assert.equal(s.status, 'synced', s.message);
      const after = requests;
      await until(`answers of version ${v} from each runtime`, () => [`v${v}`, `js${v}`, `py${v}`].every((x) => seen.has(x)) && requests >= after + 25);
    }
    stop = true;
    await Promise.all(clients);
    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
    for (const v of ['v3', 'js3', 'py3']) assert.ok(seen.has(v), `never saw ${v}`);
    assert.ok(requests > 100, `only ${requests} requests`);
  });

  it('two applications registered at once cannot both take one path', async () => {
    const files = (name: string) => ({ 'zerverless.yaml': versioned(1).replace('name: live', `name: ${name}`).replaceAll('namespace: live', 'namespace: race') });
    const [ra, rb] = [await newRepo(files('ra')), await newRepo(files('rb'))];
    const [a, b] = await Promise.all([h.register('ra', 'race', ra.url), h.register('rb', 'race', rb.url)]);
    const statuses = [a.status, b.status].sort();
    assert.deepEqual(statuses, ['error', 'synced'], `${a.message} | ${b.message}`);
    const loser = a.status === 'error' ? a : b;
    assert.match(loser.message, /OWNERSHIP_CONFLICT/);
    assert.equal(await (await h.get('/race/v')).text(), 'v1');
  });

  it('a function cannot set framing headers that would corrupt the connection', async () => {
    const repo = await newRepo({
      'zerverless.yaml': `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: frame
spec:
  functions:
    - path: /short
      runtime: lua
      code: |
        function handle(req)
          return {status=200, headers={["content-length"]="2", ["transfer-encoding"]="chunked", connection="close", ["x-kept"]="yes"}, body="hello world"}
        end
`,
    });
    assert.equal((await h.register('frame', 'frame', repo.url)).status, 'synced');
    for (let i = 0; i < 3; i++) {
      const res = await h.get('/frame/short');
      assert.equal(res.headers.get('x-kept'), 'yes');
      assert.equal(res.headers.get('content-length'), '11');
      assert.equal(await res.text(), 'hello world');
    }
  });

  it('a body over --max-body answers 413', async () => {
    const res = await h.get('/live/v', { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) });
    assert.equal(res.status, 413);
    assert.equal((await errorCode(res)), 'PAYLOAD_TOO_LARGE');
  });

  it('the API refuses bad input with stable codes', async () => {
    const cases: [unknown, number, string][] = [
      [{ name: 'x', namespace: 'api', source: { repoURL: 'https://example.com/r.git' } }, 400, 'INVALID_NAMESPACE'],
      [{ name: 'x', namespace: 'Bad_NS', source: { repoURL: 'https://example.com/r.git' } }, 400, 'INVALID_NAMESPACE'],
      [{ name: 'x', namespace: 'ok', source: { repoURL: '-oProxyCommand=touch /tmp/x' } }, 400, 'INVALID_REPO_URL'],
      [{ name: 'x', namespace: 'ok', source: { repoURL: 'ext::sh -c touch% /tmp/pwned' } }, 400, 'INVALID_REPO_URL'],
      [{ name: 'x', namespace: 'ok' }, 400, 'VALIDATION_FAILED'],
      [{ name: 'x', namespace: 'ok', source: { repoURL: 'https://example.com/r.git', path: '../up' } }, 400, 'VALIDATION_FAILED'],
      [{ name: 'live', namespace: 'live', source: { repoURL: 'https://example.com/r.git' } }, 409, 'APP_EXISTS'],
    ];
    for (const [body, status, code] of cases) {
      const r = await h.api<{ error: { code: string; message: string } }>('POST', '/', body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(r.body.error.code, code, JSON.stringify(r.body));
      assert.ok(r.body.error.message.length > 0);
    }
    const inside = await h.api<{ error: { code: string; message: string } }>('POST', '/', { name: 'x', namespace: 'ok', source: { repoURL: `file://${h.dataDir}/git/repos/other.git` } });
    assert.equal(inside.status, 400);
    assert.equal(inside.body.error.code, 'INVALID_REPO_URL');
    assert.match(inside.body.error.message, /data directory/);
    const nf = await h.api<{ error: { code: string } }>('GET', '/nope');
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.code, 'APP_NOT_FOUND');
    const list = await h.api<{ applications: unknown[]; total: number }>('GET', '/?namespace=live');
    assert.equal(list.status, 200);
    assert.equal(list.body.total, 1);
  });

  it('refuses file:// repositories unless --allow-file-repos', async () => {
    const strict = await startHarness({ allowFileRepos: false });
    try {
      const r = await strict.api<{ error: { code: string; message: string } }>('POST', '/', { name: 'x', namespace: 'x', source: { repoURL: 'file:///etc' } });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, 'INVALID_REPO_URL');
      assert.match(r.body.error.message, /allow-file-repos/);
    } finally {
      await strict.close();
    }
  });

  it('metadata.namespace must match the registration; two apps cannot own one path', async () => {
    const mismatched = await newRepo({ 'zerverless.yaml': versioned(1) });
    const st = await h.register('other', 'elsewhere', mismatched.url);
    assert.equal(st.status, 'error');
    assert.match(st.message, /NAMESPACE_MISMATCH/);

    const twin = await newRepo({ 'zerverless.yaml': versioned(9).replace('name: live', 'name: twin') });
    const st2 = await h.register('twin', 'live', twin.url);
    assert.equal(st2.status, 'error');
    assert.match(st2.message, /OWNERSHIP_CONFLICT/);
    assert.match(st2.message, /'live'/);
    assert.equal(await (await h.get('/live/v')).text(), 'v3');
  });

  it('the same name in two namespaces needs ?namespace=', async () => {
    const r = await h.api<{ error: { code: string } }>('GET', '/other');
    assert.equal(r.status, 200);
    const a = await newRepo({ 'zerverless.yaml': versioned(1).replaceAll('live', 'second') });
    await h.register('other', 'second', a.url);
    const amb = await h.api<{ error: { code: string } }>('GET', '/other');
    assert.equal(amb.status, 409);
    assert.equal(amb.body.error.code, 'APP_AMBIGUOUS');
    const ok = await h.api('GET', '/other?namespace=second');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.namespace, 'second');
  });
});

describe('polling', () => {
  it('picks up a pushed commit without a manual sync', async () => {
    const h = await startHarness({ pollIntervalMs: 300 });
    const repo = await TestRepo.create({ 'zerverless.yaml': versioned(1) });
    try {
      await h.register('live', 'live', repo.url);
      assert.equal(await (await h.get('/live/v')).text(), 'v1');
      const sha = await repo.commit({ 'zerverless.yaml': versioned(2) });
      const st = await h.waitFor('live', (s) => s.source.commit === sha, 120_000);
      assert.equal(st.status, 'synced');
      assert.equal(await (await h.get('/live/v')).text(), 'v2');
    } finally {
      await h.close();
      await repo.remove();
    }
  });
});
