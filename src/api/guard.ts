// The guard in front of every /api/ route: cross-origin policy (CORS), bearer-token authentication
// and JSON-only bodies. Routes then check what the principal may do (auth-context.ts).
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { ZvError } from '../errors/registry.js';
import { bearerToken, type AuthFailure, type TokenService } from '../auth/tokens.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Logger } from '../telemetry/log.js';
import { errorResponse } from '../errors/respond.js';
import type { Principal } from '../core/access.js';

export interface GuardDeps {
  tokens: TokenService;
  metrics?: Metrics;
  logger: Logger;
  /** Origins (scheme://host[:port]) allowed to call the API from a browser (--cors-origin). */
  corsOrigins: string[];
  /**
   * Redeems a ticket of `POST /api/events/ticket` (single use, short-lived): accepted instead of a
   * bearer token only as `?ticket=` of `GET /api/events`, for browsers' EventSource.
   */
  redeemTicket?: (ticket: string) => Principal | null;
}

const AUTH_MESSAGES: Record<AuthFailure, string> = {
  missing: 'this call needs an API token: Authorization: Bearer <token> (zerverless login, ZV_TOKEN or --token)',
  malformed: "the Authorization header must be 'Bearer <token>'",
  unknown: 'the token is not valid (unknown or revoked)',
  expired: 'the token has expired',
};

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function sameOrigin(c: Context, origin: string): boolean {
  try {
    return new URL(origin).host === (c.req.header('host') ?? '');
  } catch {
    return false;
  }
}

function clientAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}

/** A body is JSON when it says so; a call without a body (content-length 0, no type) is fine. */
function bodyIsAcceptable(c: Context): boolean {
  if (!WITH_BODY.has(c.req.method)) return true;
  const type = c.req.header('content-type');
  if (type === undefined || type === '') {
    const length = c.req.header('content-length');
    const chunked = /chunked/i.test(c.req.header('transfer-encoding') ?? '');
    return !chunked && (length === undefined || length === '0');
  }
  const media = type.split(';')[0]?.trim().toLowerCase() ?? '';
  return media === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(media);
}

export function apiGuard(deps: GuardDeps): MiddlewareHandler {
  const allowed = new Set(deps.corsOrigins);
  const corsHeaders = cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    allowMethods: ['GET', 'POST', 'DELETE', 'PUT', 'PATCH'],
    allowHeaders: ['Authorization', 'Content-Type'],
    maxAge: 600,
  });
  const log = deps.logger.child({ component: 'auth' });
  const refuse = (c: Context, reason: AuthFailure | 'forbidden-origin', err: ZvError): Response => {
    deps.metrics?.authFailures.inc({ reason });
    // Never the token: only why, from where and for what.
    log.warn({ reason, method: c.req.method, path: new URL(c.req.url).pathname, remote: clientAddress(c) }, `API call refused: ${reason}`);
    return errorResponse(err, err.code === 'UNAUTHENTICATED' ? { 'www-authenticate': 'Bearer realm="zerverless"' } : {});
  };

  return async (c, next) => {
    const origin = c.req.header('origin');
    if (origin !== undefined && !allowed.has(origin) && !sameOrigin(c, origin)) {
      // A page of another site (or a sandboxed one: Origin "null") cannot call the API, not even
      // with a simple text/plain POST that needs no preflight.
      return refuse(c, 'forbidden-origin', new ZvError('FORBIDDEN', `requests from origin '${origin.slice(0, 200)}' are not allowed (the server's --cors-origin names the allowed ones)`));
    }
    if (origin !== undefined && allowed.has(origin)) {
      // Preflights end here (answered by the CORS middleware); other calls get the CORS headers.
      return corsHeaders(c, async () => {
        const refused = await authenticate(c, next);
        if (refused) c.res = refused;
      });
    }
    if (c.req.method === 'OPTIONS') return c.body(null, 204);
    return authenticate(c, next);
  };

  async function authenticate(c: Context, next: () => Promise<void>): Promise<Response | undefined> {
    const bearer = bearerToken(c.req.header('authorization'));
    const ticket = c.req.method === 'GET' && deps.redeemTicket && bearer.failure === 'missing' && /^\/api\/events\/?$/.test(new URL(c.req.url).pathname)
      ? c.req.query('ticket') : undefined;
    if (ticket !== undefined && deps.redeemTicket) {
      // Never logged: refused like an unknown token.
      const principal = deps.redeemTicket(ticket);
      if (!principal) return refuse(c, 'unknown', new ZvError('UNAUTHENTICATED', 'the event ticket is not valid (unknown, used or expired): POST /api/events/ticket makes a new one'));
      c.set('principal', principal);
      await next();
      return undefined;
    }
    if (bearer.failure || bearer.token === undefined) {
      const failure = bearer.failure ?? 'missing';
      return refuse(c, failure, new ZvError('UNAUTHENTICATED', AUTH_MESSAGES[failure]));
    }
    const checked = await deps.tokens.check(bearer.token);
    if (!checked.principal) {
      const failure = checked.failure ?? 'unknown';
      return refuse(c, failure, new ZvError('UNAUTHENTICATED', AUTH_MESSAGES[failure]));
    }
    if (!bodyIsAcceptable(c)) {
      return errorResponse(new ZvError('UNSUPPORTED_MEDIA_TYPE', `the body of ${c.req.method} ${new URL(c.req.url).pathname} must be JSON with content-type: application/json`));
    }
    c.set('principal', checked.principal);
    await next();
    if (c.res.status === 403) {
      // A valid token asking for what it may not do: counted and logged like the other refusals.
      deps.metrics?.authFailures.inc({ reason: 'forbidden' });
      log.warn({ reason: 'forbidden', token: checked.principal.name, method: c.req.method, path: new URL(c.req.url).pathname, remote: clientAddress(c) }, 'API call refused: forbidden');
    }
    return undefined;
  }
}
