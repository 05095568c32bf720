// Tests for the depends_on graph: deploy order (dependencies first, ties by name), removal order
// (dependents first), cycles named, missing dependencies as warnings naming both services.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic } from '../../desired.js';
import type { ServiceSpec } from '../types.js';
import { checkServiceGraph, orderServices, removalOrder } from './graph.js';

function spec(name: string, dependsOn: string[] = []): ServiceSpec {
  return {
    name, version: '1', source: { type: 'npm' }, env: {}, health: null, dependsOn, route: null, port: null,
    file: `apps/${name}/app.config`,
  };
}

function order(specs: ServiceSpec[]): string[] {
  const r = orderServices(specs);
  if ('errors' in r) return assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  return r.order;
}

function errors(specs: ServiceSpec[]): string[] {
  const r = orderServices(specs, { locate: (s, field) => (field === 'depends_on' ? { line: 7, col: 5 } : field.startsWith(`depends_on[`) ? { line: 7, col: 20 + Number(field.slice(11, -1)) * 4 } : undefined) });
  if (!('errors' in r)) return assert.fail(`expected errors, got ${r.order.join(', ')}`);
  return r.errors.map(formatDiagnostic);
}

test('deploy order: dependencies first, ties by name', () => {
  assert.deepEqual(order([]), []);
  assert.deepEqual(order([spec('web', ['api', 'cache']), spec('api', ['db']), spec('db'), spec('cache'), spec('admin')]),
    ['admin', 'cache', 'db', 'api', 'web']);
  assert.deepEqual(order([spec('c'), spec('b'), spec('a')]), ['a', 'b', 'c']);
  // A name that becomes ready later still goes before a larger name that was ready earlier.
  assert.deepEqual(order([spec('z'), spec('b', ['z']), spec('y')]), ['y', 'z', 'b']);
});

test('a cycle is an error naming it, reported once, from its smallest name', () => {
  assert.deepEqual(errors([spec('a', ['b']), spec('b', ['a'])]), ['apps/a/app.config:7:20: depends_on: cycle a → b → a']);
  assert.deepEqual(errors([spec('web', ['db']), spec('db', ['cache']), spec('cache', ['web']), spec('ok')]),
    ['apps/cache/app.config:7:20: depends_on: cycle cache → web → db → cache']);
  assert.deepEqual(errors([spec('solo', ['x', 'solo']), spec('x')]), ['apps/solo/app.config:7:24: depends_on: cycle solo → solo']);
  // Two separate cycles, and a service that only depends on one (not a cycle of its own).
  assert.deepEqual(errors([spec('a', ['b']), spec('b', ['a']), spec('c', ['d']), spec('d', ['c']), spec('e', ['a'])]), [
    'apps/a/app.config:7:20: depends_on: cycle a → b → a',
    'apps/c/app.config:7:20: depends_on: cycle c → d → c',
  ]);
});

test('a dependency on a name no spec declares is a warning naming both, and is left out of the order', () => {
  const locate = (_s: ServiceSpec, field: string) => (field.startsWith('depends_on[') ? { line: 7, col: 20 + Number(field.slice(11, -1)) * 4 } : undefined);
  const r = orderServices([spec('web', ['api', 'db']), spec('api', ['gone']), spec('cache', ['web'])], { locate });
  if ('errors' in r) return assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  assert.deepEqual(r.order, ['api', 'web', 'cache']);
  assert.deepEqual(r.warnings.map(formatDiagnostic), [
    'apps/web/app.config:7:24: depends_on: web depends on "db", which no service spec declares (ignored)',
    'apps/api/app.config:7:20: depends_on: api depends on "gone", which no service spec declares (ignored)',
  ]);
  const c = checkServiceGraph([spec('web', ['db'])]);
  assert.deepEqual(c.missing.map(formatDiagnostic), ['apps/web/app.config:1:1: depends_on: web depends on "db", which no service spec declares (ignored)']);
  assert.deepEqual(c.order, ['web']);
  // A cycle is still an error, unknown names beside it or not.
  assert.deepEqual(errors([spec('a', ['nope', 'b']), spec('b', ['a'])]), ['apps/a/app.config:7:24: depends_on: cycle a → b → a']);
});

test('removal order: dependents first, ties by name; only removed dependents are waited for', () => {
  const specs = [spec('web', ['api', 'cache']), spec('api', ['db']), spec('db'), spec('cache'), spec('admin')];
  assert.deepEqual(removalOrder(['db', 'api', 'web', 'cache', 'admin'], specs), ['admin', 'web', 'api', 'cache', 'db']);
  assert.deepEqual(removalOrder(['db', 'cache'], specs), ['cache', 'db']);
  assert.deepEqual(removalOrder(['db', 'web'], specs), ['db', 'web']);
  assert.deepEqual(removalOrder(['gone', 'db', 'api'], specs), ['api', 'db', 'gone']);
  assert.deepEqual(removalOrder(['b', 'a', 'c'], [spec('a', ['b']), spec('b', ['a']), spec('c', ['a'])]), ['c', 'a', 'b']);
  assert.deepEqual(removalOrder([], specs), []);
});
