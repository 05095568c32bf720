// JS runtime: compile(), the check a sync makes of each function (it keeps no isolate). It fails
// with the same errors as load(): syntax, top-level code that throws, loops or runs out of memory;
// and many checks at once (a sync of many functions, run a few at a time) each get their own answer.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../../errors/registry.js';
import type { FunctionSource } from '../types.js';
import { JsRuntime } from './index.js';

const source = (code: string, extra: Partial<FunctionSource> = {}): FunctionSource =>
  ({ id: 'check', runtime: 'js', code, filename: 'fns/f.js', timeoutMs: 2000, memoryMb: 32, env: {}, ...extra });
const settle = (p: Promise<unknown>): Promise<unknown> => p.then((r) => r, (e: unknown) => e);

/** Each bad function, with what its compile error must say (as load() says it). */
const BAD: [what: string, code: string, message: RegExp, extra?: Partial<FunctionSource>][] = [
  ['a syntax error', 'export function handle(req) {\n  return 1 +;\n}', /^fns\/f\.js:2:\d+: /],
  ['TypeScript in a .js file', 'function handle(x: number) { return x; }', /^fns\/f\.js:1:18: /],
  ['a TypeScript syntax error', 'function handle(x: number) { return x +; }', /^fns\/f\.ts:1:40: Unexpected ";"$/, { language: 'typescript', filename: 'fns/f.ts' }],
  ['no entry point', 'const x = 1;', /defines neither/],
  ['top-level code that throws', 'function handle() {}\n\nthrow new TypeError("nope");', /^fns\/f\.js:3:\d+: .*TypeError: nope/],
  ['top-level code that loops', 'for (;;) {}\nfunction handle() {}', /did not finish within 300 ms/, { timeoutMs: 300 }],
  ['top-level code that runs out of memory', 'const keep = [];\nfor (;;) keep.push(new Array(100000).fill(1));\nfunction handle() {}', /went over the memory limit of 16 MiB/, { memoryMb: 16 }],
];

describe('js runtime: compile (the check of a sync)', () => {
  const rt = new JsRuntime();
  after(async () => {
    await rt.close();
  });

  for (const [what, code, message, extra] of BAD) {
    it(`fails on ${what} as load() does`, async () => {
      const checked = await settle(rt.compile(source(code, extra), () => {}));
      assert.ok(isZvError(checked, 'FUNCTION_COMPILE_ERROR') && message.test(checked.message), String(checked));
      const loaded = await settle(rt.load(source(code, extra), () => {}));
      assert.ok(isZvError(loaded, 'FUNCTION_COMPILE_ERROR'), String(loaded));
      assert.equal(checked.message, loaded.message);
      assert.equal(rt.liveCount, 0);
    });
  }

  it('checks many functions at once, each with its own answer, and keeps no isolate', async () => {
    const good = (i: number): FunctionSource => source(`export function handle() { return ${JSON.stringify(`f${i}`)}; }`, { id: `f${i}`, filename: `fns/f${i}.js` });
    const sources = Array.from({ length: 60 }, (_, i) => good(i));
    // a few bad ones among them fail alone
    sources[7] = source('export function handle(req) {\n  return 1 +;\n}', { filename: 'fns/f7.js' });
    sources[31] = source('for (;;) {}\nfunction handle() {}', { filename: 'fns/f31.js', timeoutMs: 300 });
    sources[45] = source('function handle() {}\nthrow new Error("boom");', { filename: 'fns/f45.js' });
    const results = await Promise.all(sources.map((s) => settle(rt.compile(s, () => {}))));
    results.forEach((r, i) => {
      if (i === 7) assert.ok(isZvError(r, 'FUNCTION_COMPILE_ERROR') && /^fns\/f7\.js:2:/.test(r.message), String(r));
      else if (i === 31) assert.ok(isZvError(r, 'FUNCTION_COMPILE_ERROR') && /^fns\/f31\.js: .*did not finish/.test(r.message), String(r));
      else if (i === 45) assert.ok(isZvError(r, 'FUNCTION_COMPILE_ERROR') && /^fns\/f45\.js:2:\d+: .*boom/.test(r.message), String(r));
      else assert.equal(r, undefined, `f${i}: ${String(r)}`);
    });
    assert.equal(rt.liveCount, 0);
  });

  it('refuses to check once the runtime is closed', async () => {
    const closed = new JsRuntime();
    await closed.close();
    assert.ok(isZvError(await settle(closed.compile(source('function handle() {}'), () => {})), 'RUNTIME_UNAVAILABLE'));
  });
});
