// The OpenAPI document (openapi.ts) against the routes the Hono apps really register, both ways: a
// route added without documenting it, or a documented route that is gone, fails here with where to
// fix it. The apps are built as the server builds them (src/server/server.ts: managementApi with its
// extra resources, the webhooks app mounted at /hooks); their handlers are never called.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Hono } from 'hono';
import { managementApi } from './index.js';
import { credentialsApi } from './credentials.js';
import { secretsApi } from './secrets.js';
import { eventsApi } from './events.js';
import { webhooksApp } from '../hooks/index.js';
import { ROUTES, openApiDocument } from './openapi.js';
import { ERRORS } from '../errors/registry.js';

const none = {} as never;

/** `METHOD /path` of every concrete route of `app` mounted at `mount` (catch-alls left out), OpenAPI style. */
function registered(app: Hono, mount: string): string[] {
  return app.routes
    .filter((r) => r.method !== 'ALL' && !r.path.endsWith('*'))
    .map((r) => `${r.method} ${(mount + r.path).replace(/\/+$/, '').replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
}

describe('OpenAPI document', () => {
  const api = managementApi({
    store: none, reconciler: none, checkRepoUrl: () => undefined, tokens: none, credentials: none,
    extra: { '/credentials': credentialsApi({ store: none, credentials: none }), '/secrets': secretsApi({ keyring: { recipient: 'age1x' } }), '/events': eventsApi({ hub: none, tickets: none }) },
  });
  const actual = new Set([...registered(api, '/api'), ...registered(webhooksApp(none), '/hooks')]);
  const documented = new Set(ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`));

  it('documents every route the apps register', () => {
    const missing = [...actual].filter((r) => !documented.has(r)).sort();
    assert.deepEqual(missing, [], `routes without an entry in the OpenAPI document: ${missing.join(', ')}. Add one to ROUTES in src/api/openapi.ts (and a row to docs/api.md)`);
  });

  it('documents no route the apps do not register', () => {
    const stale = [...documented].filter((r) => !actual.has(r)).sort();
    assert.deepEqual(stale, [], `entries of ROUTES in src/api/openapi.ts that no app registers: ${stale.join(', ')}. Remove them, or register the route (src/api/, src/hooks/)`);
  });

  it('is an OpenAPI 3.1 document whose error answers name registered codes', () => {
    const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, { content?: { 'application/json': { schema: { 'x-error-codes'?: string[] } } } }> }>> };
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(Object.values(doc.paths).reduce((n, p) => n + Object.keys(p).length, 0), ROUTES.length, 'one operation per route');
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, answer] of Object.entries(op.responses)) {
          for (const code of answer.content?.['application/json'].schema['x-error-codes'] ?? []) {
            assert.ok(code in ERRORS, `${method} ${path}: ${code} is not in src/errors/registry.ts`);
            assert.equal(String(ERRORS[code as keyof typeof ERRORS].status), status, `${method} ${path}: ${code} under ${status}`);
          }
        }
      }
    }
    const plan = doc.paths['/api/gitops/applications/{name}/plan']?.['get'];
    assert.ok(plan?.responses['200'] && plan.responses['422'], 'the plan preview documents its answer and the git errors');
  });
});
