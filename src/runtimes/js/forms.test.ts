// JS runtime: the code forms of PRODUCT.md §4 (handle, export default { fetch }, …), returned
// Responses, compile errors, and what the sandbox's global object does and does not offer.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import type { FunctionSource, LoadedFunction, LogStream } from '../types.js';
import { JsRuntime } from './index.js';

const REQ: FunctionRequest = {
  method: 'POST',
  path: '/api/x/y z',
  query: { a: '1', b: 'two words' },
  headers: { 'x-h': 'v', 'content-type': 'text/plain' },
  body: 'hi there',
};

const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));

describe('js runtime: code forms', () => {
  const rt = new JsRuntime();
  const logs: { stream: LogStream; line: string }[] = [];
  const fns: LoadedFunction[] = [];
  const load = async (code: string, extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
    const fn = await rt.load(
      { id: 'forms', runtime: 'js', language: 'javascript', code, filename: 'handlers/f.js', timeoutMs: 2000, memoryMb: 32, env: {}, ...extra },
      (stream, line) => logs.push({ stream, line }),
    );
    fns.push(fn);
    return fn;
  };
  after(async () => {
    for (const f of fns) await f.dispose();
    await rt.close();
  });

  it('serves export default { fetch } with a Web Request, env and Response.json', async () => {
    const fn = await load(`export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return Response.json(
      { url: request.url, method: request.method, path: url.pathname, b: url.searchParams.get('b'),
        h: request.headers.get('X-H'), body: await request.text(), greeting: env.GREETING },
      { status: 202, headers: { 'X-Extra': '1' } },
    );
  },
};`, { env: { GREETING: 'hey' } });
    const res = await fn.invoke(REQ);
    assert.equal(res.status, 202);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.headers['x-extra'], '1');
    assert.deepEqual(JSON.parse(text(res.body)), {
      url: 'http://localhost/api/x/y%20z?a=1&b=two+words',
      method: 'POST', path: '/api/x/y%20z', b: 'two words', h: 'v', body: 'hi there', greeting: 'hey',
    });
  });

  it('gives fetch a GET request without a body', async () => {
    const fn = await load(`export default { async fetch(r) { return new Response(r.method + ':' + (await r.text()) + ':' + r.headers.has('content-type')); } };`);
    const res = await fn.invoke({ method: 'GET', path: '/', query: {}, headers: {}, body: '' });
    assert.equal(text(res.body), 'GET::false');
  });

  it('awaits an async handle through several awaits and timers', async () => {
    const fn = await load(`const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function step(n) { await sleep(5); return n * 2; }
async function handle(req) {
  let total = 0;
  for (let i = 1; i <= 3; i++) total += await step(i);
  await Promise.all([sleep(5), sleep(10)]);
  await new Promise((r) => queueMicrotask(r));
  return { body: { total, path: req.path } };
}`);
    const res = await fn.invoke(REQ);
    assert.deepEqual(JSON.parse(text(res.body)), { total: 12, path: REQ.path });
  });

  it('sends a Response returned by handle as it is (status 418)', async () => {
    const fn = await load(`function handle() {
  return new Response("I'm a teapot", { status: 418, headers: new Headers([['X-Pot', 'short']]) });
}`);
    const res = await fn.invoke(REQ);
    assert.equal(res.status, 418);
    assert.equal(res.headers['x-pot'], 'short');
    assert.equal(res.headers['content-type'], 'text/plain;charset=UTF-8');
    assert.equal(text(res.body), "I'm a teapot");
  });

  it('gives fetch the URL that WHATWG URL makes of the path and query', async () => {
    const fn = await load(`export default { fetch(r) { return r.url + ' ' + (new URL(r.url).href === r.url); } };`);
    const cases: [string, Record<string, string>][] = [
      ['/', {}], ['/a/b', {}], ["/a/!$&'()*+,;=:@~_-.x", {}], ['/a//b/', {}], ['/a/./b', {}], ['/a/../b', {}], ['/.hidden', {}],
      ['/a b', {}], ['/%41', {}], ['/x', { a: '1', 'b c': "d'e", é: '&=?#' }],
    ];
    for (const [path, query] of cases) {
      const qs = new URLSearchParams(query).toString();
      const want = new URL(`http://localhost${path}${qs ? `?${qs}` : ''}`).href;
      const res = await fn.invoke({ method: 'GET', path, query, headers: {}, body: '' });
      assert.equal(text(res.body), `${want} true`, path);
    }
  });

  it('sends a binary Response body as bytes', async () => {
    const fn = await load(`export default { fetch() { return new Response(new Uint8Array([0, 1, 255])); } };`);
    const res = await fn.invoke(REQ);
    assert.ok(res.body instanceof Uint8Array);
    assert.deepEqual([...res.body], [0, 1, 255]);
  });

  it('accepts export function handle, export default { handle }, export default function and module.exports', async () => {
    const forms = [
      `export function handle(req) { return 'a' + req.method; }`,
      `export default { prefix: 'a', handle(req) { return this.prefix + req.method; } };`,
      `export default async function (req) { return 'a' + req.method; }`,
      `module.exports = { handle: (req) => 'a' + req.method };`,
      `module.exports = (req) => 'a' + req.method;`,
      `const handle = (req) => 'a' + req.method;`,
    ];
    for (const code of forms) {
      const res = await (await load(code)).invoke(REQ);
      assert.equal(text(res.body), 'aPOST', code);
    }
  });

  it('compiles TypeScript', async () => {
    const fn = await load(`interface Out { status: number; body: { n: number } }
export const handle = async (req: { query: Record<string, string> }): Promise<Out> => ({ status: 200, body: { n: Number(req.query.a) satisfies number } });`, { language: 'typescript', filename: 'handlers/f.ts' });
    assert.deepEqual(JSON.parse(text((await fn.invoke(REQ)).body)), { n: 1 });
  });

  it('reports esbuild errors as file:line:col: message, shifted by lineOffset', async () => {
    const bad = `function handle() {\n  return 1;\n}\nconst = 2;\n`;
    await assert.rejects(load(bad), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /^handlers\/f\.js:4:7: Expected identifier but found "="$/.test(e.message));
    await assert.rejects(load(bad, { lineOffset: 10 }), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && e.message.startsWith('handlers/f.js:13:7: '));
    // TypeScript syntax is an error in a .js function
    await assert.rejects(load('function handle(x: number) { return x; }'), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /^handlers\/f\.js:1:18: /.test(e.message));
  });

  it('refuses code without an entry point, or whose top level throws or imports', async () => {
    await assert.rejects(load('const x = 1;'), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /defines neither/.test(e.message));
    await assert.rejects(load('export default { nothing: 1 };'), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR'));
    await assert.rejects(load('function handle() {}\n\nthrow new TypeError("nope");'), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /^handlers\/f\.js:3:\d+: .*TypeError: nope/.test(e.message));
    await assert.rejects(load("import fs from 'fs';\nexport function handle() { return fs.readFileSync('/etc/passwd', 'utf8'); }"), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /^handlers\/f\.js:1:\d+: .*cannot import/.test(e.message));
  });

  it('maps runtime error stacks in the log to the source lines', async () => {
    const fn = await load(`interface A { a: number }
function helper(a: A): number {
  throw new RangeError('deep ' + a.a);
}
export function handle(): number { return helper({ a: 1 }); }`, { language: 'typescript', filename: 'handlers/stack.ts', lineOffset: 20 });
    await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && e.message === 'RangeError: deep 1');
    assert.ok(logs.some((l) => l.stream === 'stderr' && l.line.includes('handlers/stack.ts:22:')), JSON.stringify(logs));
  });

  it('offers no process, require, fetch or host callbacks on the global object', async () => {
    const fn = await load(`function handle() {
  const names = ['process', 'require', 'fetch', 'Buffer', 'global', '__zv_log', '__zv_timer', 'WebAssembly.instantiateStreaming'];
  const out = {};
  for (const n of names) out[n] = typeof globalThis[n];
  out.requireIdent = typeof require;
  out.processIdent = typeof process;
  out.own = Object.keys(globalThis);
  return { body: out };
}`);
    const got = JSON.parse(text((await fn.invoke(REQ)).body));
    for (const n of ['process', 'require', 'fetch', 'Buffer', 'global', '__zv_log', '__zv_timer', 'requireIdent', 'processIdent']) {
      assert.equal(got[n], 'undefined', n);
    }
    assert.deepEqual(got.own, []);
  });

  it('keeps one function\'s globalThis and prototypes invisible to another', async () => {
    const a = await load(`function handle() {
  globalThis.shared = 'from a';
  Object.prototype.polluted = 'yes';
  Response.prototype.extra = 1;
  return 'ok';
}`);
    const b = await load(`function handle() {
  return { body: { shared: typeof shared, polluted: ({}).polluted ?? null, extra: new Response('').extra ?? null } };
}`);
    assert.equal(text((await a.invoke(REQ)).body), 'ok');
    assert.deepEqual(JSON.parse(text((await b.invoke(REQ)).body)), { shared: 'undefined', polluted: null, extra: null });
  });

  it('sends console.log to stdout and console.error to stderr, one entry per line', async () => {
    const fn = await load(`function handle() { console.log('out', 1, { a: [1] }); console.error('err\\nsecond'); return 'ok'; }`);
    assert.equal(text((await fn.invoke(REQ)).body), 'ok');
    const deadline = Date.now() + 60_000;
    while (!logs.some((l) => l.line === 'second') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(logs.some((l) => l.stream === 'stdout' && l.line === 'out 1 {"a":[1]}'));
    assert.ok(logs.some((l) => l.stream === 'stderr' && l.line === 'err'));
    assert.ok(logs.some((l) => l.stream === 'stderr' && l.line === 'second'));
  });

  it('rejects unusable return values with FUNCTION_BAD_RESPONSE', async () => {
    for (const code of [
      'function handle() { return () => 1; }',
      "function handle() { return { status: 'abc' }; }",
      'function handle() { const o = {}; o.o = o; return { body: o }; }',
      'function handle() { return { body: 10n }; }',
    ]) {
      await assert.rejects((await load(code)).invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE'), code);
    }
  });

  it('turns thrown non-Error values and rejected promises into FUNCTION_ERROR', async () => {
    await assert.rejects((await load("function handle() { throw 'plain boom'; }")).invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && e.message === 'plain boom');
    await assert.rejects((await load("async function handle() { await null; return Promise.reject(new Error('async boom')); }")).invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && e.message === 'async boom');
  });
});

describe('js runtime: lifecycle', () => {
  let rt: JsRuntime;
  before(() => { rt = new JsRuntime(); });

  it('is available and close() unloads every function', async () => {
    assert.deepEqual(await rt.available(), { ok: true });
    const fn = await rt.load({ id: 'x', runtime: 'js', code: "function handle() { return 'x'; }", filename: 'x.js', timeoutMs: 1000, memoryMb: 16, env: {} }, () => {});
    assert.equal(text((await fn.invoke(REQ)).body), 'x');
    await rt.close();
    await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_UNAVAILABLE'));
    await assert.rejects(rt.load({ id: 'y', runtime: 'js', code: "function handle() { return 'x'; }", filename: 'x.js', timeoutMs: 1000, memoryMb: 16, env: {} }, () => {}));
  });
});
