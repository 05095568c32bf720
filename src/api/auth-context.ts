// The principal of an API call, as the auth middleware leaves it in the Hono context, and the
// route-level checks built on the pure decisions of core/access.
import type { Context } from 'hono';
import { ZvError } from '../errors/registry.js';
import { allows, type Action, type Principal } from '../core/access.js';

declare module 'hono' {
  interface ContextVariableMap {
    principal: Principal;
  }
}

export function principalOf(c: Context): Principal {
  const p = c.get('principal') as Principal | undefined;
  if (!p) throw new ZvError('UNAUTHENTICATED', 'a valid API token is required (Authorization: Bearer <token>)');
  return p;
}

/** Throws FORBIDDEN unless the caller may do `action` (in `namespace`). Returns the principal. */
export function requireAccess(c: Context, action: Action, namespace?: string): Principal {
  const p = principalOf(c);
  if (!allows(p, action, namespace)) throw forbidden(p, action, namespace);
  return p;
}

export function forbidden(p: Principal, action: Action, namespace?: string): ZvError {
  const what = action === 'admin' ? 'needs an admin token' : action === 'write' ? 'needs a deployer or admin token' : 'needs a token that may read';
  const where = namespace === undefined ? '' : ` of namespace '${namespace}'`;
  const scope = p.namespaces === null ? '' : ` (it covers ${p.namespaces.length ? p.namespaces.map((n) => `'${n}'`).join(', ') : 'no namespace'})`;
  return new ZvError('FORBIDDEN', `this ${what}${where}; the token '${p.name}' is a ${p.role}${scope}`);
}
