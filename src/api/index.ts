// The management API under /api: one Hono app with a sub-app per resource. The gateway mounts it
// behind the guard (CORS, bearer tokens, JSON bodies); each route checks what its caller may do.
import { Hono } from 'hono';
import { applicationsApi, type ApiDeps } from './applications.js';
import { tokensApi, whoamiApi } from './tokens.js';
import type { TokenService } from '../auth/tokens.js';

export interface ManagementApiDeps extends ApiDeps {
  tokens: TokenService;
  /** More resources by mount path (e.g. '/credentials', '/secrets'). */
  extra?: Record<string, Hono>;
}

export function managementApi(deps: ManagementApiDeps): Hono {
  const api = new Hono({ strict: false });
  api.route('/gitops/applications', applicationsApi(deps));
  api.route('/tokens', tokensApi({ store: deps.store, tokens: deps.tokens }));
  api.route('/whoami', whoamiApi());
  for (const [path, sub] of Object.entries(deps.extra ?? {})) api.route(path, sub);
  return api;
}
