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
/** Calls `fn` while counting 10 ms ticks of the event loop. */
async function ticking<T>(fn: () => Promise<T>): Promise<{ value: T; ticks: number }> {
  let ticks = 0;
  const iv = setInterval(() => ticks++, 10);
  try {
    return { value: await fn(), ticks };
  } finally {
    clearInterval(iv);
  }
}

const CODE = `let calls = 0;
export async function handle(req) {
  calls++;
  if (req.query.loop) for (;;) {}
  if (req.query.busy) { const end = Date.now() + Number(req.query.busy); while (Date.now() < end) {} return 'busy ' + calls; }
  if (req.query.big) return 'x'.repeat(4096);
  if (req.query.wait) await new Promise((r) => setTimeout(r, 20));
  if (req.query.later) return new Promise((r) => Promise.resolve().then(() => r('later ' + calls)));
  return 'calls=' + calls;
}`;

describe('js runtime: synchronous calls', () => {
  const rt = new JsRuntime({ maxResponseBytes: 1024 });
  const fns: LoadedFunction[] = [];
  const logs: string[] = [];
  const load = async (extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
    const fn = await rt.load({ id: 'sync', runtime: 'js', code: CODE, filename: 's.js', timeoutMs: 1500, memoryMb: 32, env: {}, ...extra }, (_s, line) => logs.push(line));
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

  it('answers every kind of result the same on the isolate\'s thread and on the event loop\'s thread', async () => {
    // what each form gives, as the runtime answers it or the error it fails with
    const FORMS = `const bytes = (s) => new TextEncoder().encode(s);
const forms = {
  text: () => 'plain text', empty: () => '', nul: () => '\\0starts with NUL', unicode: () => 'é ☃ \\u{1F600} \\u2028',
  none: () => undefined, nil: () => null, num: () => 42, nan: () => NaN, bool: () => false,
  bytes: () => bytes('raw'), ab: () => bytes('ab').buffer, dv: () => new DataView(bytes('dv').buffer),
  subAb: () => { class B extends ArrayBuffer {} const b = new B(2); new Uint8Array(b).set([104, 105]); return b; },
  fakeAb: () => Object.create(ArrayBuffer.prototype), array: () => [1, 'two', { three: 3 }], data: () => ({ ok: true, n: 1.5 }),
  response: () => ({ status: 201, headers: { 'X-A': 'b', 'x-n': 7 }, body: 'made' }),
  jsonBody: () => ({ status: 202, body: { nested: [1, 2] } }), bytesBody: () => ({ body: bytes('raw body') }),
  nanStatus: () => ({ status: NaN, body: 'x' }), strStatus: () => ({ status: '200', body: 'x' }),
  extra: () => ({ status: 200, body: 'x', statusCode: 200 }), headersArray: () => ({ headers: [], body: 'x' }),
  web: () => new Response('web', { status: 203, headers: { 'x-w': '1' } }), webBytes: () => new Response(bytes('web bytes')),
  webJson: () => Response.json({ a: [1] }), later: () => Promise.resolve('resolved'), throws: () => { throw new TypeError('nope'); },
  rejects: () => Promise.reject(new Error('rejected')), symbol: () => Symbol('s'),
};
Object.prototype.toJSON = () => 'patched'; String.prototype.toJSON = () => 'patched';
export function handle(req) { return forms[req.query.form](); }
export const names = Object.keys(forms);`;
    const names = ['text', 'empty', 'nul', 'unicode', 'none', 'nil', 'num', 'nan', 'bool', 'bytes', 'ab', 'dv', 'subAb', 'fakeAb', 'array', 'data', 'response', 'jsonBody',
      'bytesBody', 'nanStatus', 'strStatus', 'extra', 'headersArray', 'web', 'webBytes', 'webJson', 'later', 'throws', 'rejects', 'symbol'];
    const fn = await load({ code: FORMS });
    const answer = async (form: string): Promise<unknown> => {
      const out = await settle(fn.invoke(req({ form })));
      if (out instanceof Error) return { error: isZvError(out) ? out.code : 'not a ZvError', message: out.message };
      const r = out as { status: number; headers: Record<string, string>; body: string | Uint8Array };
      return { status: r.status, headers: r.headers, body: typeof r.body === 'string' ? r.body : { bytes: text(r.body) } };
    };
    // the first calls run on the isolate's thread (the probe), calls past it on the event loop's
    const before: unknown[] = [];
    for (const form of names) before.push(await answer(form));
    for (let i = 0; i < 100; i++) await fn.invoke(req({ form: 'text' }));
    const afterProbe: unknown[] = [];
    for (const form of names) afterProbe.push(await answer(form));
    assert.deepEqual(afterProbe, before);
    const byName = Object.fromEntries(names.map((n, i) => [n, before[i]]));
    assert.deepEqual(byName.nul, { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '\0starts with NUL' });
    assert.deepEqual(byName.response, { status: 201, headers: { 'x-a': 'b', 'x-n': '7', 'content-type': 'text/plain; charset=utf-8' }, body: 'made' });
    assert.deepEqual(byName.bytesBody, { status: 200, headers: {}, body: { bytes: 'raw body' } });
    assert.equal((byName.extra as { error: string }).error, 'FUNCTION_BAD_RESPONSE');
    const octets = (s: string): unknown => ({ status: 200, headers: { 'content-type': 'application/octet-stream' }, body: { bytes: s } });
    assert.deepEqual([byName.ab, byName.dv, byName.subAb], [octets('ab'), octets('dv'), octets('hi')]);
    // not an ArrayBuffer: data, sent as its JSON (which the patched toJSON makes)
    assert.deepEqual(byName.fakeAb, { status: 200, headers: { 'content-type': 'application/json' }, body: '"patched"' });
  });

  describe('calls that come in the same turn of the event loop run as one batch', () => {
    const BATCH = `export function handle(req) {
  const id = req.query.id;
  console.log('run ' + id);
  if (req.query.loop) for (;;) {}
  if (req.query.oom) { const a = []; for (;;) a.push(new Array(100000).fill(a.length)); }
  if (req.query.wait) return new Promise((r) => setTimeout(() => r('waited ' + id), 20));
  if (req.query.later) return Promise.resolve('later ' + id);
  return 'ok ' + id;
}`;
    const runs = (id: number): number => logs.filter((l) => l === `run ${id}`).length;
    /** Loads BATCH, past its probe (its calls are synchronous then), and calls ids 1..n at once. */
    const batch = async (n: number, extra: Record<number, Record<string, string>>, source: Partial<FunctionSource> = {}): Promise<unknown[]> => {
      const fn = await load({ code: BATCH, ...source });
      for (let i = 0; i < 100; i++) await fn.invoke(req({ id: '0' }));
      logs.length = 0;
      // the calls of this turn run together at its end
      const calls = Array.from({ length: n }, (_, i) => fn.invoke(req({ id: String(i + 1), ...extra[i + 1] })));
      return (await Promise.all(calls.map(settle))).map((r) => (r instanceof Error ? r : text((r as { body: string }).body)));
    };

    it('answers each call, promises too', async () => {
      const out = await batch(6, { 3: { wait: '1' }, 4: { later: '1' } });
      assert.deepEqual(out, ['ok 1', 'ok 2', 'waited 3', 'later 4', 'ok 5', 'ok 6']);
      // the calls after 3 (whose promise waits on a timer) run on the function's thread, whose log
      // lines may reach the host after the answers
      for (let tries = 0; tries < 500 && [1, 2, 3, 4, 5, 6].some((id) => runs(id) === 0); tries++) await new Promise((r) => setTimeout(r, 10));
      for (let id = 1; id <= 6; id++) assert.equal(runs(id), 1, `call ${id} ran ${runs(id)} times`);
    });

    it('keeps the answers of the calls that finished when a later one runs past the bound, and runs the rest on the function\'s thread', async () => {
      const out = await batch(6, { 3: { loop: '1' } });
      assert.deepEqual(out.map((r) => (r instanceof Error ? (isZvError(r) ? r.code : r.message) : r)), ['ok 1', 'ok 2', 'FUNCTION_TIMEOUT', 'ok 4', 'ok 5', 'ok 6']);
      // 1 and 2 had answered: not run again; 3 was run again from the start; 4 to 6 ran once
      assert.deepEqual([1, 2, 3, 4, 5, 6].map(runs), [1, 1, 2, 1, 1, 1]);
      assert.equal(logs.filter((l) => /ran past 50 ms on the server's event loop/.test(l)).length, 1, logs.join('\n'));
    });

    it('runs an async handler\'s microtasks before the next call of the batch starts, as when each call ran alone', async () => {
      // Module state kept across an await of a settled promise: each call used to run with its
      // microtasks before the next call began, so it read back its own value (a review found
      // batches handing most calls another request's id under load).
      const fn = await load({ code: 'let current;\nexport async function handle(req) {\n  current = req.query.id;\n  await null;\n  await null;\n  return \'id=\' + current;\n}' });
      for (let i = 0; i < 100; i++) await fn.invoke(req({ id: '0' }));
      const out = await Promise.all(Array.from({ length: 8 }, (_, i) => fn.invoke(req({ id: String(i + 1) }))));
      assert.deepEqual(out.map((r) => text(r.body)), Array.from({ length: 8 }, (_, i) => `id=${i + 1}`));
    });

    it('does not send a function to its thread for good when its batch, not one call, ran past the bound', async () => {
      // a fast call, then 63 calls of 1-2 ms each (within the 2 ms budget) in the same turn: their
      // batch, sized by the fast calls' average (up to 64), runs past 50 ms in all although no call
      // came near it; a batch starts no call after its slice of time, so none is stopped.
      // A loaded machine can still stop one call by preempting the event loop's thread in the middle
      // of it for 50 ms (1 round in 4 to 7 with both cores busy): such a round is done again with a
      // new function, and a batch stopped by its total (every round) still fails the test.
      const code = BATCH.replace("if (req.query.loop) for (;;) {}", "if (req.query.ms) { const end = Date.now() + Number(req.query.ms); while (Date.now() < end) {} }");
      for (let round = 1; ; round++) {
        const fn = await load({ code });
        for (let i = 0; i < 300; i++) await fn.invoke(req({ id: '0' }));
        logs.length = 0;
        await Promise.all(Array.from({ length: 64 }, (_, i) => fn.invoke(req({ id: String(i + 1), ...(i > 0 ? { ms: '2' } : {}) }))));
        const stops = logs.filter((l) => /ran past 50 ms/.test(l));
        if (stops.length === 0) break;
        assert.ok(round < 5, `a call was stopped at the bound in each of ${round} rounds:\n${stops.join('\n')}`);
      }
    });

    it('fails only the call that ran out of memory', async () => {
      const out = await batch(5, { 3: { oom: '1' } }, { memoryMb: 16 });
      assert.deepEqual(out.map((r) => (r instanceof Error ? (isZvError(r) ? r.code : r.message) : r)), ['ok 1', 'ok 2', 'FUNCTION_MEMORY_LIMIT', 'ok 4', 'ok 5']);
      // 4 and 5 had not started when 3 ran out of memory (1 and 2 are run again when their answers
      // died with the isolate, 3 when the bound stopped it first: which, depends on how fast it allocates)
      assert.deepEqual([4, 5].map(runs), [1, 1]);
      assert.ok([1, 2].every((id) => runs(id) <= 2), `calls 1 and 2 ran ${runs(1)} and ${runs(2)} times`);
    });
  });

  it('hands a batch the requests as they are: NULs, a __proto__ header, any characters', async () => {
    // a batch encodes requests without JSON (encodeRequest in instance.ts); the handler must see
    // what JSON would have given it
    const fn = await load({ code: 'export function handle(req) { return JSON.stringify([req, Object.keys(req.headers), Object.getPrototypeOf(req.headers) === Object.prototype]); }' });
    for (let i = 0; i < 100; i++) await fn.invoke(req());
    const proto: Record<string, string> = { host: 'h' };
    Object.defineProperty(proto, '__proto__', { value: 'x', enumerable: true, writable: true, configurable: true });
    const reqs: FunctionRequest[] = [
      { method: 'POST', path: '/a/b', query: { q: 'x\0y', 'é': '€ 😀' }, headers: { 'content-type': 'text/plain', 'x-n': '1' }, body: 'body\0with NUL\n and 😀' },
      { method: 'GET', path: '/', query: {}, headers: proto, body: '' },
      { method: 'GET', path: '/%00', query: {}, headers: { 'x-a': 'a\0b' }, body: '' },
      { method: '{GET', path: '/p', query: {}, headers: {}, body: '{"json":true}' },
      { method: 'PUT', path: '/', query: {}, headers: {}, body: '' },
    ];
    const out = await Promise.all(reqs.map((r) => fn.invoke(r)));
    assert.deepEqual(out.map((r) => text(r.body)), reqs.map((r) => JSON.stringify([r, Object.keys(r.headers), true])));
  });

  it('a function whose stopped call runs fast on its own thread only backs off', async () => {
    // slow in the isolate that has served many calls, fast in the new one it is run again in: the
    // stop says nothing about the call (as when a busy machine preempts the event loop's thread)
    const fn = await load({ code: `let calls = 0;
export function handle(req) {
  calls++;
  if (req.query.slow && calls > 50) { const end = Date.now() + 300; while (Date.now() < end) {} }
  return 'calls=' + calls;
}` });
    for (let i = 0; i < 100; i++) await fn.invoke(req());
    logs.length = 0;
    assert.equal(text((await fn.invoke(req({ slow: '1' }))).body), 'calls=1');
    assert.ok(logs.some((l) => /ran past 50 ms on the server's event loop/.test(l)), logs.join('\n'));
    assert.ok(logs.some((l) => /the stop was not its doing/.test(l)), logs.join('\n'));
  });

  it('a synchronous call that runs long is stopped within the synchronous limit and answered from the function\'s thread', async () => {
    const fn = await load();
    for (let i = 1; i <= 100; i++) await fn.invoke(req());
    logs.length = 0;
    // 600 ms of work: far past the synchronous limit (50 ms), well within the timeout (1500 ms)
    const { value, ticks } = await ticking(() => fn.invoke(req({ busy: '600' })));
    // run again from the start on a new isolate (module state is gone, as after a timeout)
    assert.equal(text(value.body), 'busy 1');
    assert.ok(ticks >= 5, `the event loop was blocked for the whole call (${ticks} ticks)`);
    assert.ok(logs.some((l) => /ran past 50 ms on the server's event loop/.test(l)), logs.join('\n'));
    assert.ok(!logs.some((l) => /the stop was not its doing/.test(l)), logs.join('\n'));
    // from now on its calls run on its thread: a long call never blocks the event loop again
    for (let i = 0; i < 100; i++) await fn.invoke(req());
    const again = await ticking(() => fn.invoke(req({ busy: '300' })));
    assert.match(text(again.value.body), /^busy \d+$/);
    assert.ok(again.ticks >= 5, `blocked again (${again.ticks} ticks)`);
  });
});
