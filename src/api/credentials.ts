// /api/credentials (PRODUCT.md §10): git credentials per namespace. Creating and deleting need write
// access to the namespace (namespace '*' needs an admin); lists show the readable namespaces and '*'.
// No answer ever carries a secret.
import { Hono, type Context } from 'hono';
import { Ajv } from 'ajv';
import { ZvError } from '../errors/registry.js';
import { allows, readableNamespaces, type Principal } from '../core/access.js';
import { forbidden, principalOf } from './auth-context.js';
import { readJsonBody } from './body.js';
import { errorResponse } from '../errors/respond.js';
import type { CredentialRecord, Store } from '../store/types.js';
import { credentialView, type CredentialInput, type CredentialService } from '../credentials/service.js';

const createBody = {
  type: 'object',
  required: ['name', 'namespace', 'urlPrefix'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 63 },
    namespace: { type: 'string', maxLength: 63 },
    urlPrefix: { type: 'string', minLength: 1, maxLength: 4096 },
    username: { type: 'string', maxLength: 256 },
    password: { type: 'string', minLength: 1, maxLength: 4096 },
    sshPrivateKey: { type: 'string', minLength: 1, maxLength: 16384 },
    knownHosts: { type: 'string', maxLength: 65536 },
    caCert: { type: 'string', maxLength: 65536 },
  },
} as const;

const validateCreate = new Ajv({ allErrors: true }).compile<CredentialInput>(createBody);

export interface CredentialsApiDeps {
  store: Store;
  credentials: CredentialService;
}

/** Creating or deleting a credential of `namespace`: write access there; '*' is for admins. */
function requireManage(p: Principal, namespace: string): void {
  const action = namespace === '*' ? 'admin' : 'write';
  if (!allows(p, action, namespace)) throw forbidden(p, action, namespace);
}

export function credentialsApi(deps: CredentialsApiDeps): Hono {
  const { store, credentials } = deps;
  const api = new Hono({ strict: false });
  api.onError((err) => errorResponse(err));

  /** The credential a `{name}` route means, among those the caller may read. */
  const find = async (c: Context): Promise<CredentialRecord> => {
    const p = principalOf(c);
    const name = c.req.param('name') ?? '';
    const namespace = c.req.query('namespace');
    if (namespace !== undefined) {
      if (namespace !== '*' && !allows(p, 'read', namespace)) throw forbidden(p, 'read', namespace);
      const found = await store.getCredential(namespace, name);
      if (!found) throw new ZvError('CREDENTIAL_NOT_FOUND', `credential '${name}' not found in namespace '${namespace}'`);
      return found;
    }
    const matches = (await store.listCredentials(readableNamespaces(p))).filter((x) => x.name === name);
    if (matches.length === 0) throw new ZvError('CREDENTIAL_NOT_FOUND', `credential '${name}' not found`);
    if (matches.length > 1) {
      throw new ZvError('BAD_REQUEST', `credential '${name}' exists in namespaces ${matches.map((m) => `'${m.namespace}'`).join(', ')}; pass ?namespace=`);
    }
    return matches[0] as CredentialRecord;
  };

  api.post('/', async (c) => {
    const p = principalOf(c);
    const body = await readJsonBody(c, validateCreate);
    requireManage(p, body.namespace);
    const made = await credentials.create(body, p.name);
    return c.json(credentialView(made), 201);
  });

  api.get('/', async (c) => {
    const p = principalOf(c);
    const namespace = c.req.query('namespace');
    if (namespace !== undefined && namespace !== '*' && !allows(p, 'read', namespace)) throw forbidden(p, 'read', namespace);
    let list = await store.listCredentials(namespace === undefined ? readableNamespaces(p) : [namespace]);
    if (namespace !== undefined) list = list.filter((x) => x.namespace === namespace);
    return c.json({ credentials: list.map(credentialView), total: list.length });
  });

  api.get('/:name', async (c) => c.json(credentialView(await find(c))));

  api.delete('/:name', async (c) => {
    const found = await find(c);
    requireManage(principalOf(c), found.namespace);
    await store.deleteCredential(found.id);
    return c.body(null, 204);
  });

  return api;
}
