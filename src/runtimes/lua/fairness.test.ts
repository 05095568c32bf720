// Fair turns in the Lua pool (pool.ts schedule): one function whose calls each run to their timeout
// does not hold other functions' calls for the sum of those timeouts. Found in review (session 15):
// a batch took every queued call of its first function and the other functions' calls after them.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { FunctionRequest } from '../../core/function-contract.js';
import { LuaRuntime } from './index.js';

const REQ: FunctionRequest = { method: 'GET', path: '/t', query: {}, headers: {}, body: '' };

it('answers other functions\' calls queued behind a looping function\'s calls without waiting for all of them', async () => {
  const rt = new LuaRuntime({ workers: 2, graceMs: 200 });
  try {
    const load = (id: string, timeoutMs: number, code: string) => rt.load({ id, runtime: 'lua', filename: `${id}.lua`, timeoutMs, memoryMb: 64, env: {}, code }, () => {});
    const hog = await load('hog', 300, 'function handle(req)\n  while true do end\nend');
    const busy = await load('busy', 10000, 'function handle(req)\n  local t = os.clock()\n  while os.clock() - t < 1.0 do end\n  return "busy"\nend');
    const other = await load('other', 10000, 'function handle(req)\n  return "other " .. req.query.n\nend');
    // what settled in which order
    const order: string[] = [];
    const track = (label: string, p: Promise<unknown>): Promise<void> => p.then(
      () => { order.push(label); },
      () => { order.push(label); },
    );
    // both workers busy: one with the hog's first call (stopped at its 300 ms timeout), one for 1 s
    const first = [track('hog 1', hog.invoke(REQ)), track('busy', busy.invoke(REQ))];
    await new Promise((r) => setImmediate(r));
    // queued meanwhile: two more looping calls, then three calls of another function
    const others = [1, 2, 3].map((n) => other.invoke({ ...REQ, query: { n: String(n) } }));
    const queued = [
      track('hog 2', hog.invoke(REQ)),
      track('hog 3', hog.invoke(REQ)),
      ...others.map((p, i) => track(`other ${i + 1}`, p)),
    ];
    await Promise.all([...first, ...queued]);
    // every call of the other function answered, and no looping call but the first ran before them
    assert.deepEqual((await Promise.all(others)).map((r) => String(r.body)), ['other 1', 'other 2', 'other 3']);
    const lastOther = Math.max(...[1, 2, 3].map((n) => order.indexOf(`other ${n}`)));
    const ranBefore = order.slice(0, lastOther).filter((l) => /^hog [23]$/.test(l));
    assert.deepEqual(ranBefore, [], `the other function's calls waited for looping calls: ${order.join(', ')}`);
  } finally {
    await rt.close();
  }
});

