// JS runtime: timeouts (busy loops, endless awaits, loops in timer callbacks), the isolate memory
// limit, and that a stuck function never blocks Node's event loop or other functions.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import type { FunctionSource, LoadedFunction } from '../types.js';
import { JsRuntime } from './index.js';

const REQ: FunctionRequest = { method: 'GET', path: '/', query: {}, headers: {}, body: '' };
const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));
const settle = (p: Promise<unknown>): Promise<unknown> => p.then((r) => r, (e: unknown) => e);

describe('js runtime: limits', () => {
  const rt = new JsRuntime();
  const fns: LoadedFunction[] = [];
  const load = async (code: string, extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
    const fn = await rt.load({ id: 'limits', runtime: 'js', code, filename: 'l.js', timeoutMs: 500, memoryMb: 32, env: {}, ...extra }, () => {});
    fns.push(fn);
    return fn;
  };
  after(async () => {
    for (const f of fns) await f.dispose();
    await rt.close();
  });

  it('keeps Node\'s event loop running while a function loops', async () => {
    // A timeout long enough that even a loaded machine's main thread ticks a few times meanwhile.
    const loop = await load('function handle() { for (;;) {} }', { timeoutMs: 2000 });
    let ticks = 0;
    const iv = setInterval(() => ticks++, 20);
    const err = await settle(loop.invoke(REQ));
    clearInterval(iv);
    assert.ok(isZvError(err, 'FUNCTION_TIMEOUT'), String(err));
    assert.ok(ticks >= 5, `the main thread was blocked (${ticks} ticks)`);
  });

  it('times out an await that never resolves, and answers again afterwards', async () => {
    const fn = await load(`let calls = 0;
async function handle(req) {
  calls++;
  if (req.query.hang) await new Promise(() => {});
  return 'calls=' + calls;
}`, { timeoutMs: 1000 });
    // FUNCTION_TIMEOUT is the proof the timeout was enforced: the await never resolves by itself.
    const err = await settle(fn.invoke({ ...REQ, query: { hang: '1' } }));
    assert.ok(isZvError(err, 'FUNCTION_TIMEOUT'), String(err));
    // a fresh isolate answers: the counter starts again
    assert.equal(text((await fn.invoke(REQ)).body), 'calls=1');
  });

  it('counts timer waits against the timeout', async () => {
    const fn = await load("async function handle() { await new Promise((r) => setTimeout(r, 60000)); return 'late'; }", { timeoutMs: 300 });
    assert.ok(isZvError(await settle(fn.invoke(REQ)), 'FUNCTION_TIMEOUT'));
  });

  it('stops a busy loop started by a timer after the response, and recovers', async () => {
    const fn = await load(`let n = 0;
function handle() {
  n++;
  if (n === 1) setTimeout(() => { for (;;) {} }, 0);
  return 'n=' + n;
}`, { timeoutMs: 1000 });
    assert.equal(text((await fn.invoke(REQ)).body), 'n=1');
    // the timer loops now; it is stopped within its timeout and a fresh isolate takes over
    const deadline = Date.now() + 60_000;
    let last: unknown;
    while (Date.now() < deadline) {
      last = await settle(fn.invoke(REQ));
      if (!(last instanceof Error) && text((last as { body: string }).body) === 'n=1') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(text((last as { body: string }).body), 'n=1');
  });

  it('enforces the isolate\'s own memory limit, not the host\'s', async () => {
    // ~48 MB of live arrays: fine under 128 MiB, over the limit under 16 MiB
    const code = `function handle() {
  const keep = [];
  for (let i = 0; i < 60; i++) keep.push(new Array(100000).fill(i + 0.5));
  return 'kept ' + keep.length;
}`;
    const big = await load(code, { memoryMb: 128, timeoutMs: 10000 });
    assert.equal(text((await big.invoke(REQ)).body), 'kept 60');
    const small = await load(code, { memoryMb: 16, timeoutMs: 10000 });
    const hostBefore = process.memoryUsage().heapUsed;
    const err = await settle(small.invoke(REQ));
    assert.ok(isZvError(err, 'FUNCTION_MEMORY_LIMIT'), String(err));
    // the allocation happened in the isolate's heap, not in Node's
    assert.ok(process.memoryUsage().heapUsed - hostBefore < 32 * 1024 * 1024, 'the host heap grew');
    // and the function is recreated for the next call (which fails the same way, cleanly)
    assert.ok(isZvError(await settle(small.invoke(REQ)), 'FUNCTION_MEMORY_LIMIT'));
    assert.equal(text((await big.invoke(REQ)).body), 'kept 60');
  });

  it('rejects every call in flight on an isolate that is killed', async () => {
    const fn = await load(`async function handle(req) {
  if (req.query.loop) { await null; for (;;) {} }
  await new Promise((r) => setTimeout(r, 50));
  return 'ok';
}`, { timeoutMs: 2000 });
    const results = await Promise.all([settle(fn.invoke(REQ)), settle(fn.invoke({ ...REQ, query: { loop: '1' } })), settle(fn.invoke(REQ))]);
    assert.ok(results.some((r) => isZvError(r, 'FUNCTION_TIMEOUT')));
    for (const r of results) assert.ok(isZvError(r, 'FUNCTION_TIMEOUT') || text((r as { body: string }).body) === 'ok');
    assert.equal(text((await fn.invoke(REQ)).body), 'ok');
  });

  it('refuses code whose top level loops forever', async () => {
    await assert.rejects(load('for (;;) {}\nfunction handle() {}', { timeoutMs: 300 }), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /did not finish/.test(e.message));
  });
});
