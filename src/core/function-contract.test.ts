// normalizeResult: the return-value rules of PRODUCT.md §4 shared by every in-process runtime
// (each runtime is also held to them by the contract suite, src/runtimes/contract.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeResult } from './function-contract.js';

const ok = (v: unknown) => {
  const r = normalizeResult(v);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.response;
};
const refused = (v: unknown): string => {
  const r = normalizeResult(v);
  assert.ok(!r.ok, 'expected a refusal');
  return r.reason;
};

describe('normalizeResult', () => {
  it('sends a map without status, headers and body as a JSON 200', () => {
    assert.deepEqual(ok({ ok: true, n: 3 }), { status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true,"n":3}' });
    assert.deepEqual(ok({}), { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.deepEqual(ok([1, 'a']), { status: 200, headers: { 'content-type': 'application/json' }, body: '[1,"a"]' });
    // an array is data even when it has nothing else
    assert.equal(ok([]).body, '[]');
  });

  it('keeps the meaning of a response object', () => {
    assert.deepEqual(ok({ status: 404 }), { status: 404, headers: {}, body: '' });
    assert.deepEqual(ok({ body: null }), { status: 200, headers: {}, body: '' });
    assert.deepEqual(ok({ headers: { 'X-A': 'b' } }), { status: 200, headers: { 'x-a': 'b' }, body: '' });
    assert.deepEqual(ok({ status: 201, body: { a: 1 } }), { status: 201, headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    // keys whose value is undefined do not count (they have no JSON)
    assert.deepEqual(ok({ status: 204, extra: undefined }), { status: 204, headers: {}, body: '' });
  });

  it('refuses a response object with other keys, naming them', () => {
    const reason = refused({ status: 200, data: [1] });
    assert.match(reason, /"data"/);
    assert.match(reason, /put the data in body/);
    assert.match(refused({ statusCode: 404, body: 'x' }), /"statusCode"/);
    // a null response key still makes it a response
    assert.match(refused({ status: null, error: 'x' }), /"error"/);
    const many = refused({ body: '', a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1 });
    assert.match(many, /"a", "b", "c", "d", "e", …/);
    assert.doesNotMatch(many, /"f"/);
  });

  it('sends bytes as application/octet-stream', () => {
    const r = ok(new Uint8Array([0xff, 0]));
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.deepEqual(r.body, new Uint8Array([0xff, 0]));
  });

  it('keeps strings, numbers and null as before', () => {
    assert.deepEqual(ok('hi'), { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'hi' });
    assert.deepEqual(ok(5), { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '5' });
    assert.deepEqual(ok(null), { status: 200, headers: {}, body: '' });
    assert.match(refused({ status: 'teapot' }), /status must be an integer/);
  });
});
