// callFunction's own logic: the backstop that answers FUNCTION_TIMEOUT when a runtime does not
// enforce a function's timeout, the response cap, and the invocation counts. The runtimes' real
// behaviour is covered by their contract suites and the e2e tests; here a LoadedFunction under our
// control stands for a runtime that misbehaves on purpose.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { callFunction } from './function-path.js';
import { DrainingFunction } from '../serving/drain.js';
import type { ServedFunction } from '../serving/table.js';
import type { LoadedFunction } from '../runtimes/types.js';
import type { FunctionRequest, FunctionResponse } from '../core/function-contract.js';
import { Metrics } from '../telemetry/metrics.js';
import { ZvError } from '../errors/registry.js';

const REQ: FunctionRequest = { method: 'GET', path: '/f', query: {}, headers: {}, body: '' };

function served(invoke: (req: FunctionRequest) => Promise<FunctionResponse>, timeoutMs = 20): ServedFunction {
  const fn: LoadedFunction = { invoke, dispose: async () => {} } as unknown as LoadedFunction;
  return { appKey: 'ns/app', path: '/f', runtime: 'lua', handle: new DrainingFunction(fn), timeoutMs };
}

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    assert.ok(e instanceof ZvError, String(e));
    return e.code;
  }
};

describe('callFunction', () => {
  it('answers FUNCTION_TIMEOUT when the runtime never answers (the backstop), and ignores a late answer', async () => {
    const metrics = new Metrics();
    let answer: ((r: FunctionResponse) => void) | null = null;
    const fn = served(() => new Promise((resolve) => { answer = resolve; }));
    // the sweeper's timer is unref'd (a server's socket keeps the process up): keep this one up
    const keep = setInterval(() => {}, 1000);
    try {
      assert.equal(await codeOf(callFunction(fn, REQ, metrics, 1024, 10)), 'FUNCTION_TIMEOUT');
    } finally {
      clearInterval(keep);
    }
    assert.equal(metrics.invocations.value({ runtime: 'lua', result: 'FUNCTION_TIMEOUT' }), 1);
    // the runtime answers after all: nothing else is counted, nothing throws
    (answer as unknown as (r: FunctionResponse) => void)({ status: 200, headers: {}, body: 'late' });
    await new Promise((r) => setImmediate(r));
    assert.equal(metrics.invocations.value({ runtime: 'lua', result: 'ok' }), 0);
    assert.equal(fn.handle.inFlight, 0);
  });

  it('passes an answer through, counts it, and refuses one over the response cap', async () => {
    const metrics = new Metrics();
    const ok = await callFunction(served(async () => ({ status: 201, headers: {}, body: 'made' })), REQ, metrics, 1024);
    assert.deepEqual(ok, { status: 201, headers: {}, body: 'made' });
    assert.equal(metrics.invocations.value({ runtime: 'lua', result: 'ok' }), 1);
    const big = served(async () => ({ status: 200, headers: {}, body: 'x'.repeat(2048) }));
    assert.equal(await codeOf(callFunction(big, REQ, metrics, 1024)), 'FUNCTION_RESPONSE_TOO_LARGE');
    assert.equal(metrics.invocations.value({ runtime: 'lua', result: 'FUNCTION_RESPONSE_TOO_LARGE' }), 1);
  });

  it('turns a runtime that throws (synchronously or not) into a ZvError, counted', async () => {
    const metrics = new Metrics();
    const sync = served(() => {
      throw new Error('boom');
    });
    assert.equal(await codeOf(callFunction(sync, REQ, metrics, 1024)), 'FUNCTION_ERROR');
    const coded = served(async () => {
      throw new ZvError('FUNCTION_MEMORY_LIMIT', 'too much');
    });
    assert.equal(await codeOf(callFunction(coded, REQ, metrics, 1024)), 'FUNCTION_MEMORY_LIMIT');
    assert.equal(metrics.invocations.value({ runtime: 'lua', result: 'FUNCTION_ERROR' }), 1);
    assert.equal(metrics.invocations.value({ runtime: 'lua', result: 'FUNCTION_MEMORY_LIMIT' }), 1);
  });
});
