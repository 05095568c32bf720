// JS runtime: what counts against a function's memory (no WebAssembly, array buffers, big strings)
// and the response cap when the function's code patches the intrinsics the check relies on.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import type { FunctionSource, LoadedFunction } from '../types.js';
import { JsRuntime } from './index.js';

const MIB = 1024 * 1024;
const REQ: FunctionRequest = { method: 'GET', path: '/', query: {}, headers: {}, body: '' };
const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));
const settle = (p: Promise<unknown>): Promise<unknown> => p.then((r) => r, (e: unknown) => e);
/** 300 MiB of 'x' as a rope: a few KB on the isolate's heap until something flattens it. */
const ROPE = "'x'.repeat(300 * 1024 * 1024)";

describe('js runtime: memory and the response cap', () => {
  const rt = new JsRuntime({ maxResponseBytes: MIB });
  const fns: LoadedFunction[] = [];
  const load = async (code: string, extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
    const fn = await rt.load({ id: 'cap', runtime: 'js', code, filename: 'c.js', timeoutMs: 10000, memoryMb: 64, env: {}, ...extra }, () => {});
    fns.push(fn);
    return fn;
  };
  /** Invokes and returns the result and how much this process's RSS grew meanwhile (MiB). */
  const run = async (fn: LoadedFunction): Promise<{ out: unknown; grewMb: number }> => {
    const before = process.memoryUsage().rss;
    const out = await settle(fn.invoke(REQ));
    return { out, grewMb: Math.round((process.memoryUsage().rss - before) / MIB) };
  };
  after(async () => {
    for (const f of fns) await f.dispose();
    await rt.close();
  });

  it('offers no WebAssembly, and says why when code uses it', async () => {
    const probe = await load("function handle() { return typeof WebAssembly + ' ' + ('WebAssembly' in globalThis); }");
    assert.equal(text(((await probe.invoke(REQ)) as { body: string }).body), 'undefined false');
    const fn = await load('function handle() { return String(new WebAssembly.Memory({ initial: 16384 }).buffer.byteLength); }');
    const err = await settle(fn.invoke(REQ));
    assert.ok(isZvError(err, 'FUNCTION_ERROR') && /WebAssembly is not defined.*memory limit/.test(err.message), String(err));
  });

  for (const [what, code] of [
    ['an ArrayBuffer', 'new Uint8Array(new ArrayBuffer(1e9)).fill(1)'],
    ['a SharedArrayBuffer', 'new Uint8Array(new SharedArrayBuffer(1e9)).fill(1)'],
  ] as const) {
    it(`counts ${what} against memory`, async () => {
      const fn = await load(`function handle() { const a = ${code}; return String(a.length); }`);
      const { out, grewMb } = await run(fn);
      assert.ok(isZvError(out, 'FUNCTION_MEMORY_LIMIT'), String(out));
      assert.ok(grewMb < 200, `grew ${grewMb} MiB`);
    });
  }

  it('refuses a rope string over the cap without flattening it', async () => {
    const fn = await load(`function handle() { return ${ROPE}; }`);
    const { out, grewMb } = await run(fn);
    assert.ok(isZvError(out, 'FUNCTION_RESPONSE_TOO_LARGE'), String(out));
    assert.match((out as Error).message, /at least 300 MiB.*1 MiB/);
    assert.ok(grewMb < 100, `grew ${grewMb} MiB`);
  });

  const sneaky: [string, string][] = [
    ['JSON.stringify / JSON.parse replaced', `JSON.stringify = () => '{}'; JSON.parse = () => ({ data: ${ROPE} });
      function handle() { return { status: 200, body: { a: 1 } }; }`],
    ['a setter on Object.prototype', `Object.defineProperty(Object.prototype, 'status', { configurable: true,
        set(v) { Object.defineProperty(this, 'zz', { value: ${ROPE}, enumerable: true }); } });
      function handle() { return { status: 200, body: 'ok' }; }`],
    ['String replaced', `String = () => ${ROPE};
      function handle() { return { status: 200, headers: { a: 1 }, body: 'ok' }; }`],
    ['instanceof spoofed', `Object.defineProperty(ArrayBuffer, Symbol.hasInstance, { value: () => true });
      Object.defineProperty(Uint8Array, Symbol.hasInstance, { value: () => true });
      function handle() { return { status: 200, body: ${ROPE} }; }`],
    ['the Response body slot replaced', `function handle() {
        const r = new Response('ok');
        for (const s of Object.getOwnPropertySymbols(r)) r[s] = ${ROPE};
        return r;
      }`],
    ['the same string repeated in an array', `function handle() {
        const s = 'x'.repeat(1024 * 1024);
        return { status: 200, body: new Array(300).fill(s) };
      }`],
  ];
  for (const [what, code] of sneaky) {
    it(`keeps the cap when the function's code has ${what}`, async () => {
      const fn = await load(code, { memoryMb: 128 });
      const { out, grewMb } = await run(fn);
      if (out instanceof Error) assert.ok(isZvError(out, 'FUNCTION_RESPONSE_TOO_LARGE') || isZvError(out, 'FUNCTION_BAD_RESPONSE') || isZvError(out, 'FUNCTION_MEMORY_LIMIT'), String(out));
      else assert.ok(text((out as { body: string | Uint8Array }).body).length <= MIB, 'a body over the cap came through');
      assert.ok(grewMb < 100, `grew ${grewMb} MiB`);
    });
  }

  it('refuses top-level code that leaves the isolate over its memory', async () => {
    const before = process.memoryUsage().rss;
    await assert.rejects(
      load(`const keep = ${ROPE}; keep.charCodeAt(1);\nfunction handle() { return String(keep.length); }`),
      (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /memory limit of 64 MiB/.test(e.message),
    );
    // the isolate is disposed: its heap goes back (in the background, hence the deadline)
    const deadline = Date.now() + 60_000;
    while (process.memoryUsage().rss - before > 100 * MIB && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(process.memoryUsage().rss - before <= 100 * MIB, 'the isolate\'s memory was not given back');
  });

  it('cuts a huge error message inside the isolate', async () => {
    const fn = await load(`function handle() { throw new Error('m'.repeat(5 * 1024 * 1024)); }`, { memoryMb: 128 });
    const err = await settle(fn.invoke(REQ));
    assert.ok(isZvError(err, 'FUNCTION_ERROR'), String(err));
    assert.ok(err.message.length < 20_000, `${err.message.length} characters`);
    const mid = await load(`function handle() { throw new Error('m'.repeat(100000)); }`);
    const e2 = await settle(mid.invoke(REQ));
    assert.ok(isZvError(e2, 'FUNCTION_ERROR') && /^m{16384} …\[\d+ more characters\]$/.test(e2.message), String(e2).slice(0, 200));
  });

  it('answers responses under the cap, bytes included', async () => {
    const fn = await load(`function handle(req) {
  if (req.query.bytes) return new Response(new Uint8Array(512 * 1024).fill(65));
  return { status: 200, headers: { 'x-a': 'b' }, body: { data: 'y'.repeat(1000) } };
}`);
    const json = await fn.invoke(REQ);
    assert.equal(JSON.parse(text(json.body)).data.length, 1000);
    const bytes = await fn.invoke({ ...REQ, query: { bytes: '1' } });
    assert.equal(text(bytes.body), 'A'.repeat(512 * 1024));
  });
});
