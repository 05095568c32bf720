// /api/secrets (PRODUCT.md §10): GET /recipient tells any authenticated caller the server's age
// public key, the recipient `envFrom` files are encrypted to. Nothing here reveals or accepts a
// secret: files are encrypted on the user's side (`zerverless secrets encrypt`, age, sops).
import { Hono } from 'hono';
import type { SecretsKeyring } from '../core/secrets.js';
import { errorResponse } from '../errors/respond.js';
import { principalOf } from './auth-context.js';

export interface SecretsApiDeps {
  keyring: Pick<SecretsKeyring, 'recipient'>;
}

export function secretsApi(deps: SecretsApiDeps): Hono {
  const api = new Hono({ strict: false });
  api.onError((err) => errorResponse(err));

  api.get('/recipient', (c) => {
    principalOf(c); // any valid token
    return c.json({ recipient: deps.keyring.recipient });
  });

  return api;
}
