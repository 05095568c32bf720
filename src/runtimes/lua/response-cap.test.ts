// Lua runtime: the response cap is checked inside WebAssembly memory, before anything is copied out
// of the worker; huge error messages are cut in the worker.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import type { FunctionSource, LoadedFunction } from '../types.js';
import { LuaRuntime } from './index.js';

const MIB = 1024 * 1024;
const REQ: FunctionRequest = { method: 'GET', path: '/', query: {}, headers: {}, body: '' };
const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));
const settle = (p: Promise<unknown>): Promise<unknown> => p.then((r) => r, (e: unknown) => e);

describe('lua runtime: response cap', () => {
  const rt = new LuaRuntime({ workers: 2, maxResponseBytes: MIB });
  const fns: LoadedFunction[] = [];
  const load = async (code: string, extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
    const fn = await rt.load({ id: 'lua/cap', runtime: 'lua', code, filename: 'cap.lua', timeoutMs: 10000, memoryMb: 256, env: {}, ...extra }, () => {});
    fns.push(fn);
    return fn;
  };
  after(async () => {
    for (const f of fns) await f.dispose();
    await rt.close();
  });

  it('refuses a string, a table body and headers over the cap, and answers under it', async () => {
    const fn = await load(`function handle(req)
  local n = tonumber(req.query.n)
  if req.query.kind == 'raw' then return string.rep('x', n) end
  if req.query.kind == 'table' then return {status=200, body={data=string.rep('x', n)}} end
  if req.query.kind == 'binary' then return {status=200, body=string.rep('\\255', n)} end
  return {status=200, headers={['x-big']=string.rep('h', n)}, body='ok'}
end`);
    for (const kind of ['raw', 'table', 'binary', 'headers']) {
      const err = await settle(fn.invoke({ ...REQ, query: { kind, n: String(MIB + 1) } }));
      assert.ok(isZvError(err, 'FUNCTION_RESPONSE_TOO_LARGE'), `${kind}: ${String(err)}`);
      const ok = await fn.invoke({ ...REQ, query: { kind, n: '1000' } });
      assert.equal(ok.status, 200, kind);
    }
    const raw = await fn.invoke({ ...REQ, query: { kind: 'raw', n: String(MIB - 100) } });
    assert.equal(text(raw.body).length, MIB - 100);
  });

  it('refuses 100 MiB without the main thread receiving it', async () => {
    const fn = await load("function handle(req) return string.rep('x', 100 * 1024 * 1024) end");
    const before = process.memoryUsage();
    const err = await settle(fn.invoke(REQ));
    const after = process.memoryUsage();
    assert.ok(isZvError(err, 'FUNCTION_RESPONSE_TOO_LARGE'), String(err));
    assert.match((err as Error).message, /100 MiB/);
    // the worker's WebAssembly memory grows (inside `memory`); the main thread's heap does not
    const mainGrowth = after.heapUsed + after.external - before.heapUsed - before.external;
    assert.ok(mainGrowth < 20 * MIB, `the main thread grew by ${Math.round(mainGrowth / MIB)} MiB`);
  });

  it('cuts a huge error message in the worker', async () => {
    const fn = await load("function handle(req) error(string.rep('e', 20 * 1024 * 1024), 0) end");
    const err = await settle(fn.invoke(REQ));
    assert.ok(isZvError(err, 'FUNCTION_ERROR'), String(err));
    assert.ok(err.message.length <= 16 * 1024, `${err.message.length} characters`);
  });
});
