import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRoutes, matchRoute, splitNamespace } from './routing.js';

test('exact match wins over prefixes', () => {
  const t = buildRoutes([['/api', 'a'], ['/api/hello', 'h']]);
  assert.deepEqual(matchRoute(t, '/api/hello'), { route: '/api/hello', value: 'h' });
  assert.deepEqual(matchRoute(t, '/api'), { route: '/api', value: 'a' });
});

test('longest prefix on a / boundary', () => {
  const t = buildRoutes([['/api', 'a'], ['/api/hello', 'h']]);
  assert.equal(matchRoute(t, '/api/hello/x/y')?.value, 'h');
  assert.equal(matchRoute(t, '/api/helloworld')?.value, 'a');
  assert.equal(matchRoute(t, '/api/other')?.value, 'a');
  assert.equal(matchRoute(t, '/apix'), null);
  assert.equal(matchRoute(t, '/'), null);
});

test('a root route catches everything', () => {
  const t = buildRoutes([['/', 'root'], ['/x', 'x']]);
  assert.equal(matchRoute(t, '/anything')?.value, 'root');
  assert.equal(matchRoute(t, '/x/1')?.value, 'x');
});

test('splitNamespace', () => {
  assert.deepEqual(splitNamespace('/myuser/api/hello/x'), { namespace: 'myuser', path: '/api/hello/x' });
  assert.deepEqual(splitNamespace('/myuser'), { namespace: 'myuser', path: '/' });
  assert.deepEqual(splitNamespace('/myuser/'), { namespace: 'myuser', path: '/' });
  assert.equal(splitNamespace('/'), null);
});
