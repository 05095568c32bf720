// The management API under /api: one Hono app with a sub-app per resource. The gateway mounts it
// behind the guard (CORS, bearer tokens, JSON bodies); each route checks what its caller may do.
import { Hono } from 'hono';
import { applicationsApi, type ApiDeps } from './applications.js';
import { tokensApi, whoamiApi } from './tokens.js';
import type { TokenService } from '../auth/tokens.js';
import { ZvError } from '../errors/registry.js';
import { errorResponse } from '../errors/respond.js';
import { openApiDocument } from './openapi.js';

export interface ManagementApiDeps extends ApiDeps {
  tokens: TokenService;
  /** More resources by mount path (e.g. '/credentials', '/secrets'). */
  extra?: Record<string, Hono>;
  /** Where the gateway mounts this app (default '/api'): the 405 answer matches paths under it. */
  mountPath?: string;
}

/** A route pattern of Hono (`/a/:name/b`, `*`) as an anchored expression over request paths. */
function patternOf(mount: string, path: string): RegExp {
  const body = (mount + path).replace(/\/+$/, '').split('/').map((seg) => {
    if (seg === '*') return '.*';
    if (seg.startsWith(':')) return '[^/]+';
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }).join('/');
  return new RegExp(`^${body}/?$`);
}

/**
 * The last route: a path that some route serves, asked with a method none of them serves, is 405
 * METHOD_NOT_ALLOWED with `Allow`; anything else falls through to the gateway's 404. Computed from
 * the routes registered when the first such request comes, so every resource is covered.
 */
function methodNotAllowed(api: Hono, mount: string): (path: string) => string[] {
  let table: { re: RegExp; method: string }[] | undefined;
  return (path) => {
    table ??= api.routes
      .filter((r) => r.path !== '/*' && r.path !== '*' && r.method !== 'ALL')
      .map((r) => ({ re: patternOf(mount, r.path), method: r.method }));
    const allowed = new Set(table.filter((r) => r.re.test(path)).map((r) => r.method));
    if (allowed.has('GET')) allowed.add('HEAD');
    return [...allowed].sort();
  };
}

export function managementApi(deps: ManagementApiDeps): Hono {
  const api = new Hono({ strict: false });
  api.route('/gitops/applications', applicationsApi(deps));
  api.route('/tokens', tokensApi({ store: deps.store, tokens: deps.tokens }));
  api.route('/whoami', whoamiApi());
  // The OpenAPI document of every route (openapi.ts); any valid token may read it.
  api.get('/openapi.json', (c) => c.json(openApiDocument()));
  for (const [path, sub] of Object.entries(deps.extra ?? {})) api.route(path, sub);
  const allowedFor = methodNotAllowed(api, deps.mountPath ?? '/api');
  api.all('*', (c) => {
    const allow = allowedFor(c.req.path);
    if (allow.length === 0 || allow.includes(c.req.method)) return c.notFound();
    return errorResponse(new ZvError('METHOD_NOT_ALLOWED', `${c.req.method} is not served at ${c.req.path}; allowed: ${allow.join(', ')}`),
      { allow: allow.join(', ') });
  });
  return api;
}
