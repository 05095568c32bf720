// JS runtime: synchronous calls (a fast function's calls run on the event loop's thread after a
// probe, see function.ts). The limits hold there too: the timeout, the response cap, awaits on
// timers; and a function that timed out there never blocks the event loop again.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import type { FunctionSource, LoadedFunction } from '../types.js';
import { JsRuntime } from './index.js';

const req = (query: Record<string, string> = {}): FunctionRequest => ({ method: 'GET', path: '/', query, headers: {}, body: '' });
const settle = (p: Promise<unknown>): Promise<unknown> => p.then((r) => r, (e: unknown) => e);
const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));

const CODE = `let calls = 0;
export async function handle(req) {
  calls++;
  if (req.query.loop) for (;;) {}
  if (req.query.big) return 'x'.repeat(4096);
  if (req.query.wait) await new Promise((r) => setTimeout(r, 20));
  if (req.query.later) return new Promise((r) => Promise.resolve().then(() => r('later ' + calls)));
  return 'calls=' + calls;
}`;

describe('js runtime: synchronous calls', () => {
  const rt = new JsRuntime({ maxResponseBytes: 1024 });
  const fns: LoadedFunction[] = [];
  const load = async (extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
    const fn = await rt.load({ id: 'sync', runtime: 'js', code: CODE, filename: 's.js', timeoutMs: 1500, memoryMb: 32, env: {}, ...extra }, () => {});
    fns.push(fn);
    return fn;
  };
  after(async () => {
    for (const f of fns) await f.dispose();
    await rt.close();
  });

  it('answers the same before and after its calls turn synchronous, and keeps every limit', async () => {
    const fn = await load();
    // well past the probe: these calls are synchronous at the end
    for (let i = 1; i <= 100; i++) assert.equal(text((await fn.invoke(req())).body), `calls=${i}`);
    const answers = await Promise.all(Array.from({ length: 50 }, () => fn.invoke(req())));
    assert.equal(new Set(answers.map((a) => text(a.body))).size, 50);
    assert.equal(text((await fn.invoke(req({ later: '1' }))).body), 'later 151');
    assert.equal(text((await fn.invoke(req({ wait: '1' }))).body), 'calls=152');
    assert.ok(isZvError(await settle(fn.invoke(req({ big: '1' }))), 'FUNCTION_RESPONSE_TOO_LARGE'));

    // a loop runs into the timeout; the next one runs on the isolate's thread, the event loop ticks
    assert.ok(isZvError(await settle(fn.invoke(req({ loop: '1' }))), 'FUNCTION_TIMEOUT'));
    let ticks = 0;
    const iv = setInterval(() => ticks++, 20);
    const err = await settle(fn.invoke(req({ loop: '1' })));
    clearInterval(iv);
    assert.ok(isZvError(err, 'FUNCTION_TIMEOUT'), String(err));
    assert.ok(ticks >= 5, `the main thread was blocked (${ticks} ticks)`);
    assert.match(text((await fn.invoke(req())).body), /^calls=\d+$/);
  });
});
