// End to end (issue 8, point 2): memory limits that hold and a cap on a function's response.
// Each case measures the server's own RSS (the server runs in this process) around one request:
// a JS function must not hold WebAssembly memory past its `memory`, and a response over
// --max-response answers 500 FUNCTION_RESPONSE_TOO_LARGE without the server copying it whole.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRepo } from '../support/repo.js';
import { errorCode, startHarness, type Harness } from '../support/server.js';
import { resolveServeConfig } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { silentLogger } from '../../src/telemetry/log.js';
import { LuaRuntime } from '../../src/runtimes/lua/index.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MIB = 1024 * 1024;

const MANIFEST = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: mem
  namespace: mem
spec:
  functions:
    - path: /js-wasm
      runtime: js
      code: |
        function handle() {
          const m = new WebAssembly.Memory({ initial: 16384 });
          new Uint8Array(m.buffer).fill(1);
          return 'held ' + m.buffer.byteLength;
        }
    - path: /js-wasm-grow
      runtime: js
      code: |
        function handle() {
          const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
          for (let i = 0; i < 1000; i++) m.grow(16);
          new Uint8Array(m.buffer).fill(1);
          return 'grown ' + m.buffer.byteLength;
        }
    - path: /js-arraybuffer
      runtime: js
      code: |
        function handle() {
          const b = new ArrayBuffer(1e9);
          new Uint8Array(b).fill(1);
          return 'held ' + b.byteLength;
        }
    - path: /js-arraybuffers
      runtime: js
      code: |
        const keep = [];
        function handle() {
          for (let i = 0; i < 10; i++) { const b = new ArrayBuffer(100e6); new Uint8Array(b).fill(1); keep.push(b); }
          return 'held ' + keep.length;
        }
    - path: /js-flat-string
      runtime: js
      code: |
        let keep;
        function handle() {
          keep = 'x'.repeat(300 * 1024 * 1024);
          keep.charCodeAt(5); // flat: 300 MB on the isolate's heap
          return 'held ' + keep.length;
        }
    - path: /js-big
      runtime: js
      code: |
        function handle(req) { return 'x'.repeat(Number(req.query.mb) * 1024 * 1024); }
    - path: /js-big-json
      runtime: js
      code: |
        function handle(req) { return { status: 200, body: { data: 'x'.repeat(Number(req.query.mb) * 1024 * 1024) } }; }
    - path: /js-big-error
      runtime: js
      code: |
        function handle() { throw new Error('x'.repeat(300 * 1024 * 1024)); }
    - path: /lua-big
      runtime: lua
      memory: 256
      code: |
        function handle(req)
          local s = string.rep('x', tonumber(req.query.mb) * 1024 * 1024)
          if req.query.warm then return tostring(#s) end
          return s
        end
    - path: /lua-big-table
      runtime: lua
      code: |
        function handle(req)
          return { status = 200, headers = { ['x-a'] = 'b' }, body = string.rep('x', tonumber(req.query.mb) * 1024 * 1024) }
        end
    - path: /py-big
      runtime: python
      memory: 512
      code: |
        def handle(req):
            return 'x' * (int(req['query']['mb']) * 1024 * 1024)
    - path: /py-big-dict
      runtime: python
      code: |
        def handle(req):
            return {'status': 200, 'body': {'data': 'x' * (int(req['query']['mb']) * 1024 * 1024)}}
    - path: /py-big-bytes
      runtime: python
      code: |
        def handle(req):
            return {'status': 200, 'body': b'x' * (int(req['query']['mb']) * 1024 * 1024)}
    - path: /py-raw-pipe
      runtime: python
      memory: 512
      code: |
        import os
        def handle(req):
            # write around the protocol: a reply line of 300 MB straight to the reply pipe
            chunk = b'x' * (1024 * 1024)
            os.write(4, b'{"t":"result","value":"')
            for _ in range(300):
                os.write(4, chunk)
            os.write(4, b'"}\\n')
            return 'unreachable'
`;

const rss = (): number => process.memoryUsage().rss;

/** The request's status, error code and the server's RSS growth (peak during the call) in MiB. */
async function measure(h: Harness, path: string): Promise<{ status: number; code: string | undefined; growthMb: number; before: number; text: string }> {
  globalThis.gc?.();
  const before = rss();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss());
  }, 5);
  try {
    const res = await h.get(path);
    const text = await res.text();
    const after = rss();
    peak = Math.max(peak, after);
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      code = undefined;
    }
    const growthMb = Math.round((peak - before) / MIB);
    if (process.env.ZV_TEST_VERBOSE) console.log(`${path}: ${res.status} ${code ?? ''} rss ${Math.round(before / MIB)} → peak ${Math.round(peak / MIB)} MiB`);
    return { status: res.status, code, growthMb, before, text: text.length > 200 ? `${text.slice(0, 200)}…` : text };
  } finally {
    clearInterval(sampler);
  }
}

describe('memory limits and the response cap', () => {
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    h = await startHarness();
    repo = await TestRepo.create({ 'zerverless.yaml': MANIFEST });
    const st = await h.register('mem', 'mem', repo.url);
    assert.equal(st.status, 'synced', st.message);
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  for (const path of ['/js-wasm', '/js-wasm-grow']) {
    it(`a JS function cannot hold 1 GiB of WebAssembly memory under memory: 128 (${path})`, async () => {
      const r = await measure(h, `/mem${path}`);
      assert.equal(r.status, 500, r.text);
      assert.ok(r.code === 'FUNCTION_MEMORY_LIMIT' || r.code === 'FUNCTION_ERROR', r.text);
      assert.match(r.text, /WebAssembly/);
      assert.ok(r.growthMb < 300, `the server grew by ${r.growthMb} MiB`);
    });
  }

  for (const path of ['/js-arraybuffer', '/js-arraybuffers']) {
    it(`array buffers count against a JS function's memory (${path})`, async () => {
      const r = await measure(h, `/mem${path}`);
      assert.equal(r.status, 500, r.text);
      assert.equal(r.code, 'FUNCTION_MEMORY_LIMIT', r.text);
      assert.ok(r.growthMb < 300, `the server grew by ${r.growthMb} MiB`);
    });
  }

  it('a JS function holding a 300 MB string under memory: 128 fails and its isolate is freed', async () => {
    // V8 lets one big allocation past isolated-vm's limit until its next full collection: the heap
    // is measured after the call and an isolate over its limit is disposed
    const r = await measure(h, '/mem/js-flat-string');
    assert.equal(r.status, 500, r.text);
    assert.equal(r.code, 'FUNCTION_MEMORY_LIMIT', r.text);
    // the isolate is torn down in the background: its heap goes back within a generous deadline
    const limit = r.before + 100 * MIB;
    const deadline = Date.now() + 60_000;
    while (rss() > limit && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.ok(rss() <= limit, `the server still holds ${Math.round((rss() - r.before) / MIB)} MiB more after the call`);
  });

  it('a JS function returning a 300 MB string answers 500 FUNCTION_RESPONSE_TOO_LARGE', async () => {
    const r = await measure(h, '/mem/js-big?mb=300');
    assert.equal(r.status, 500, r.text);
    assert.equal(r.code, 'FUNCTION_RESPONSE_TOO_LARGE', r.text);
    assert.ok(r.growthMb < 100, `the server grew by ${r.growthMb} MiB`);
    const j = await measure(h, '/mem/js-big-json?mb=300');
    assert.equal(j.code, 'FUNCTION_RESPONSE_TOO_LARGE', j.text);
    assert.ok(j.growthMb < 100, `the server grew by ${j.growthMb} MiB`);
  });

  it('a JS function throwing a 300 MB message fails without the message reaching the server', async () => {
    const r = await measure(h, '/mem/js-big-error');
    assert.equal(r.status, 500);
    // the message is cut inside the isolate, which needs it flat: that may take it over its memory
    assert.ok(r.code === 'FUNCTION_ERROR' || r.code === 'FUNCTION_MEMORY_LIMIT', r.text);
    assert.ok(r.text.length < 100_000);
    assert.ok(r.growthMb < 100, `the server grew by ${r.growthMb} MiB`);
  });

  it('a Lua function returning 100 MiB answers FUNCTION_RESPONSE_TOO_LARGE without copying it out', async () => {
    // first let the worker's WebAssembly memory grow to what the string needs (inside `memory`)
    const warm = await h.get('/mem/lua-big?mb=100&warm=1');
    assert.equal(await warm.text(), String(100 * MIB));
    const r = await measure(h, '/mem/lua-big?mb=100');
    assert.equal(r.status, 500, r.text);
    assert.equal(r.code, 'FUNCTION_RESPONSE_TOO_LARGE', r.text);
    assert.ok(r.growthMb < 60, `the server grew by ${r.growthMb} MiB`);
    const t = await measure(h, '/mem/lua-big-table?mb=20');
    assert.equal(t.code, 'FUNCTION_RESPONSE_TOO_LARGE', t.text);
  });

  it('a Python function returning 200 MiB answers FUNCTION_RESPONSE_TOO_LARGE', async () => {
    const r = await measure(h, '/mem/py-big?mb=200');
    assert.equal(r.status, 500, r.text);
    assert.equal(r.code, 'FUNCTION_RESPONSE_TOO_LARGE', r.text);
    assert.ok(r.growthMb < 60, `the server grew by ${r.growthMb} MiB`);
    for (const p of ['/mem/py-big-dict?mb=20', '/mem/py-big-bytes?mb=20']) {
      const x = await measure(h, p);
      assert.equal(x.code, 'FUNCTION_RESPONSE_TOO_LARGE', `${p}: ${x.text}`);
    }
  });

  it('a Python function writing 300 MB around the protocol is cut off without the server buffering it', async () => {
    const r = await measure(h, '/mem/py-raw-pipe');
    assert.equal(r.status, 500, r.text);
    assert.equal(r.code, 'FUNCTION_RESPONSE_TOO_LARGE', r.text);
    assert.ok(r.growthMb < 150, `the server grew by ${r.growthMb} MiB`);
  });

  it('responses under the cap still answer in every runtime', async () => {
    for (const p of ['/mem/js-big?mb=9', '/mem/lua-big-table?mb=9', '/mem/py-big-dict?mb=9']) {
      const res = await h.get(p);
      assert.equal(res.status, 200, p);
      const body = await res.text();
      assert.ok(body.length >= 9 * MIB && body.length < 10 * MIB, `${p}: ${body.length}`);
    }
  });

  it('--max-response / ZV_MAX_RESPONSE set the cap, parsed like --max-body', () => {
    assert.equal(resolveServeConfig({}, {}, {}).maxResponseBytes, 10 * MIB);
    assert.equal(resolveServeConfig({ 'max-response': '1MiB' }, {}, {}).maxResponseBytes, MIB);
    assert.equal(resolveServeConfig({}, { 'max-response': '2048' }, {}).maxResponseBytes, 2048);
    assert.throws(() => resolveServeConfig({ 'max-response': 'lots' }, {}, {}), /max-response/);
  });
});

describe('a smaller --max-response', () => {
  let h: Harness;
  let repo: TestRepo;
  before(async () => {
    h = await startHarness({ maxResponseBytes: MIB });
    repo = await TestRepo.create({ 'zerverless.yaml': MANIFEST });
    assert.equal((await h.register('mem', 'mem', repo.url)).status, 'synced');
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('applies to every runtime', async () => {
    for (const p of ['/mem/js-big?mb=2', '/mem/lua-big-table?mb=2', '/mem/py-big-dict?mb=2']) {
      const res = await h.get(p);
      assert.equal(res.status, 500, p);
      assert.equal(await errorCode(res), 'FUNCTION_RESPONSE_TOO_LARGE', p);
    }
    const ok = await h.get('/mem/js-big?mb=0.5');
    assert.equal(ok.status, 200);
    assert.equal((await ok.text()).length, MIB / 2);
  });
});

describe('the gateway as the backstop of --max-response', () => {
  let server: RunningServer;
  let dataDir: string;
  let repo: TestRepo;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'zv-data-'));
    const config = { ...resolveServeConfig({ port: 0, 'allow-file-repos': true, 'data-dir': dataDir, 'poll-interval': '1h' }, {}, {}), maxResponseBytes: MIB };
    // a runtime made without the server's cap (as an embedder could): only the gateway checks
    server = await startServer(config, { logger: silentLogger, runtimes: new Map([['lua', new LuaRuntime({ maxResponseBytes: 64 * MIB })]]) });
    repo = await TestRepo.create({
      'zerverless.yaml': `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: back
  namespace: back
spec:
  functions:
    - path: /big
      runtime: lua
      code: |
        function handle(req) return string.rep('x', tonumber(req.query.kb) * 1024) end
`,
    });
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const res = await fetch(`${server.url}/api/gitops/applications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'back', namespace: 'back', source: { repoURL: repo.url, branch: 'main' } }),
    });
    assert.equal(res.status, 201, await res.text());
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (await fetch(`${server.url}/back/big?kb=1`)).status !== 200) await new Promise((r) => setTimeout(r, 50));
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    await repo.remove();
  });

  it('refuses what a runtime let through', async () => {
    const ok = await fetch(`${server.url}/back/big?kb=512`);
    assert.equal(ok.status, 200);
    assert.equal((await ok.text()).length, 512 * 1024);
    const big = await fetch(`${server.url}/back/big?kb=2048`);
    assert.equal(big.status, 500);
    assert.equal(await errorCode(big), 'FUNCTION_RESPONSE_TOO_LARGE');
  });
});
