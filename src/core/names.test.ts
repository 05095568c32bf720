// Tests for the name, path and duration validators.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeRelPath, parseDuration, validateAppName, validateFunctionPath, validateNamespace } from './names.js';

test('validateNamespace: DNS labels, not reserved', () => {
  for (const ok of ['myuser', 'a', 'a-b', '0abc', 'x'.repeat(63)]) assert.equal(validateNamespace(ok), null, ok);
  for (const bad of ['', 'A', '-a', 'a-', 'a_b', 'a.b', 'x'.repeat(64), 'api', 'static', 'healthz', 'readyz', 'metrics', 'ui', 'hooks']) {
    assert.match(validateNamespace(bad) ?? '', /./, bad);
  }
  assert.match(validateNamespace('api') ?? '', /reserved/);
  assert.match(validateNamespace(3) ?? '', /string/);
});

test('validateAppName', () => {
  assert.equal(validateAppName('my-app'), null);
  assert.equal(validateAppName('api'), null);
  assert.match(validateAppName('My_App') ?? '', /DNS label/);
  assert.match(validateAppName('a'.repeat(64)) ?? '', /63/);
});

test('validateFunctionPath', () => {
  for (const ok of ['/', '/api/hello', '/a-b/c_d.e', '/x/', "/v1/items:batch", '/~user/(x)']) assert.equal(validateFunctionPath(ok), null, ok);
  const bad: [string, RegExp][] = [
    ['api', /start with \//], ['', /start with \//], ['/a/../b', /\.\./], ['/..', /\.\./], ['/a//b', /\/\//],
    ['/a?x=1', /query/], ['/a#f', /fragment/], ['/a\\b', /backslash/], ['/a\nb', /control/], ['/a\u0000', /control/],
    ['/a b', /a space/], ['/%2e%2e/x', /'%' \(write the path decoded/], ['/café', /'é'/], ['/a"b', /'"'/],
  ];
  for (const [p, re] of bad) assert.match(validateFunctionPath(p) ?? '', re, JSON.stringify(p));
});

test('parseDuration', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('250'), 250);
  assert.equal(parseDuration(' 250 '), 250);
  assert.equal(parseDuration(1000), 1000);
  assert.equal(parseDuration('30d'), 30 * 86_400_000);
  for (const bad of ['', 'abc', '5 m', '-1s', '1w', '1.s', 's']) assert.equal(parseDuration(bad), null, bad);
  assert.equal(parseDuration(-5), null);
  assert.equal(parseDuration(Number.NaN), null);
});

test('normalizeRelPath: lexical containment', () => {
  assert.deepEqual(normalizeRelPath('handlers/a.py'), { path: 'handlers/a.py' });
  assert.deepEqual(normalizeRelPath('./static/'), { path: 'static' });
  assert.deepEqual(normalizeRelPath('a/../b'), { path: 'b' });
  assert.deepEqual(normalizeRelPath('.'), { path: '.' });
  assert.deepEqual(normalizeRelPath('a/./b//c'), { path: 'a/b/c' });
  for (const [p, re] of [
    ['../x', /leaves/], ['../../etc/passwd', /leaves/], ['a/../../b', /leaves/], ['/etc/passwd', /absolute/],
    ['C:/x', /absolute/], ['a\\b', /separator/], ['a\0b', /NUL/], ['', /empty/],
  ] as const) {
    const r = normalizeRelPath(p);
    assert.ok('error' in r, p);
    assert.match(r.error, re, p);
  }
});
