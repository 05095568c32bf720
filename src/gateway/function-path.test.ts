// callFunction's own logic: the backstop that answers FUNCTION_TIMEOUT when a runtime does not
// enforce a function's timeout, the response cap, and the invocation counts. The runtimes' real
// behaviour is covered by their contract suites and the e2e tests; here a LoadedFunction under our
// control stands for a runtime that misbehaves on purpose.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callFunction, functionFirst } from './function-path.js';
import { kindOf, withHttpMetrics } from './http-metrics.js';
import { ServingTable } from '../serving/table.js';
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

describe('HTTP metrics of the gateway', () => {
  it('counts each answer once: the function path its own, the fallback through withHttpMetrics', async () => {
    const metrics = new Metrics();
    const serving = new ServingTable();
    const fn = served(async (req) => ({ status: 200, headers: {}, body: `hi ${req.query.n ?? ''}` }));
    serving.setApp('ns/app', { namespace: 'ns', functions: new Map([['/f', fn]]), static: null });
    const fallback = withHttpMetrics(metrics, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('fallback');
    });
    const server = createServer(functionFirst({ serving, metrics, maxBodyBytes: 1024 } as unknown as Parameters<typeof functionFirst>[0], fallback));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (let n = 0; n < 3; n++) assert.equal(await (await fetch(`${base}/ns/f?n=${n}`)).text(), `hi ${n}`);
      assert.equal(await (await fetch(`${base}/healthz`)).text(), 'fallback');
      assert.equal(await (await fetch(`${base}/ns/missing`)).text(), 'fallback');
      const until = Date.now() + 60_000;
      while (metrics.httpRequests.value({ kind: 'function', status: '200' }) < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      // three answered on the function path, one (a path no function serves) by the fallback
      assert.equal(metrics.httpRequests.value({ kind: 'function', status: '200' }), 4);
      assert.equal(metrics.httpRequests.value({ kind: 'system', status: '200' }), 1);
      assert.equal(metrics.invocations.value({ runtime: 'lua', result: 'ok' }), 3);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('kindOf', () => {
  it('labels requests by what they reach', () => {
    const cases: Array<[string, string]> = [
      ['/api/gitops/applications', 'api'], ['/static/demo/index.html', 'static'], ['/healthz', 'system'], ['/metrics?x=1', 'system'],
      ['/hooks/github', 'hooks'], ['/ui', 'console'], ['/ui/app.js', 'console'], ['/uix/f', 'function'], ['/demo/api/hello', 'function'],
    ];
    for (const [url, kind] of cases) assert.equal(kindOf(url), kind, url);
  });
});
