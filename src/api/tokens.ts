// /api/tokens (PRODUCT.md §9), admin only: make a token (shown once), list them (never the secret),
// revoke one. GET /api/whoami tells any valid token what it is.
import { Hono } from 'hono';
import { Ajv } from 'ajv';
import { ZvError } from '../errors/registry.js';
import { parseDuration, validateNamespace } from '../core/names.js';
import type { Role } from '../core/access.js';
import type { TokenService } from '../auth/tokens.js';
import type { Store, TokenRecord } from '../store/types.js';
import { errorResponse } from '../errors/respond.js';
import { readJsonBody } from './body.js';
import { principalOf, requireAccess } from './auth-context.js';

const MAX_NAMESPACES = 1000;
const MAX_EXPIRY_MS = 10 * 365 * 86_400_000;

const createBody = {
  type: 'object',
  required: ['name', 'role'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$' },
    role: { enum: ['admin', 'deployer', 'reader'] },
    namespaces: { type: 'array', maxItems: MAX_NAMESPACES, uniqueItems: true, items: { type: 'string', maxLength: 63 } },
    services: { type: 'boolean' },
    expiresIn: { anyOf: [{ type: 'string', maxLength: 32 }, { type: 'integer', minimum: 1 }] },
  },
} as const;

interface CreateBody {
  name: string;
  role: Role;
  namespaces?: string[];
  services?: boolean;
  expiresIn?: string | number;
}

const validateCreate = new Ajv({ allErrors: true }).compile<CreateBody>(createBody);

/** The public view of a token: everything but its hash. */
export function tokenView(t: TokenRecord): Record<string, unknown> {
  return { id: t.id, name: t.name, role: t.role, namespaces: t.namespaces, services: t.services, createdAt: t.createdAt, expiresAt: t.expiresAt, createdBy: t.createdBy };
}

function checkCreate(b: CreateBody): { namespaces: string[] | null; services: boolean; expiresInMs: number | null } {
  if (b.role === 'admin' && b.namespaces !== undefined) throw new ZvError('VALIDATION_FAILED', 'namespaces: an admin token covers every namespace; leave namespaces out');
  if (b.role === 'deployer' && (b.namespaces === undefined || b.namespaces.length === 0)) {
    throw new ZvError('VALIDATION_FAILED', 'namespaces: a deployer token needs the list of namespaces it may deploy to');
  }
  if (b.services !== undefined && b.role !== 'deployer') throw new ZvError('VALIDATION_FAILED', `services: only deployer tokens take it (an admin may always deploy services; a reader never)`);
  for (const [i, ns] of (b.namespaces ?? []).entries()) {
    const err = validateNamespace(ns);
    if (err) throw new ZvError('VALIDATION_FAILED', `namespaces[${i}]: ${err}`);
  }
  let expiresInMs: number | null = null;
  if (b.expiresIn !== undefined) {
    // A number is seconds; a string is a duration such as 30m, 12h, 90d.
    const ms = typeof b.expiresIn === 'number' ? b.expiresIn * 1000 : parseDuration(b.expiresIn);
    if (ms === null || ms < 1000 || ms > MAX_EXPIRY_MS) {
      throw new ZvError('VALIDATION_FAILED', `expiresIn: '${String(b.expiresIn)}' is not a duration between 1s and 3650d (e.g. 30m, 12h, 90d, or seconds)`);
    }
    expiresInMs = ms;
  }
  return { namespaces: b.namespaces ?? null, services: b.services ?? false, expiresInMs };
}

export function tokensApi(deps: { store: Store; tokens: TokenService }): Hono {
  const api = new Hono({ strict: false });
  api.onError((err) => errorResponse(err));

  api.post('/', async (c) => {
    const p = requireAccess(c, 'admin');
    const body = await readJsonBody(c, validateCreate);
    const checked = checkCreate(body);
    const { token, record } = await deps.tokens.create({ name: body.name, role: body.role, ...checked, createdBy: p.name });
    return c.json({ ...tokenView(record), token }, 201);
  });

  api.get('/', async (c) => {
    requireAccess(c, 'admin');
    return c.json({ tokens: (await deps.store.listTokens()).map(tokenView) });
  });

  api.delete('/:id', async (c) => {
    requireAccess(c, 'admin');
    const id = c.req.param('id');
    if (!(await deps.store.deleteToken(id))) throw new ZvError('TOKEN_NOT_FOUND', `no token with id '${id.slice(0, 100)}'`);
    return c.body(null, 204);
  });

  return api;
}

/** GET /api/whoami: what the presented token is (for `zerverless login`). */
export function whoamiApi(): Hono {
  const api = new Hono({ strict: false });
  api.get('/', (c) => {
    const p = principalOf(c);
    return c.json({ id: p.tokenId, name: p.name, role: p.role, namespaces: p.namespaces, services: p.services });
  });
  return api;
}
