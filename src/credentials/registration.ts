// Credentials given with an application registration, for clients of the original Zerverless: an
// inline `auth` ({username, token} or {sshPrivateKey, knownHosts?}) or a `user:password@` in an https
// repoURL. Either becomes a credential named after the application, in its namespace, whose prefix
// is the exact repoURL (without the userinfo, which is how the URL is then stored and shown).
import { ZvError } from '../errors/registry.js';
import type { AppRecord, NewCredential, Store } from '../store/types.js';
import type { CredentialInput, CredentialService } from './service.js';
import { splitUserinfo } from './urls.js';

export interface InlineAuth {
  username?: string;
  token?: string;
  /** Same as token. */
  password?: string;
  sshPrivateKey?: string;
  knownHosts?: string;
  caCert?: string;
}

/** The JSON schema of `auth` in a registration body (ajv). */
export const inlineAuthSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    username: { type: 'string', maxLength: 256 },
    token: { type: 'string', minLength: 1, maxLength: 4096 },
    password: { type: 'string', minLength: 1, maxLength: 4096 },
    sshPrivateKey: { type: 'string', minLength: 1, maxLength: 16384 },
    knownHosts: { type: 'string', maxLength: 65536 },
    caCert: { type: 'string', maxLength: 65536 },
  },
} as const;

export interface Registration {
  name: string;
  namespace: string;
  repoURL: string;
  auth?: InlineAuth;
  /** The token name recorded as the credential's creator. */
  createdBy: string | null;
}

function inputOf(r: Registration, repoURL: string): CredentialInput | null {
  const fromUrl = splitUserinfo(r.repoURL);
  const a = r.auth;
  if (fromUrl.password !== undefined) {
    if (a !== undefined) throw new ZvError('VALIDATION_FAILED', 'source.repoURL carries a password and auth is given too; send one of them');
    return { name: r.name, namespace: r.namespace, urlPrefix: repoURL, username: fromUrl.username, password: fromUrl.password };
  }
  if (a === undefined) return null;
  if (a.token !== undefined && a.password !== undefined && a.token !== a.password) {
    throw new ZvError('VALIDATION_FAILED', 'auth: token and password differ; send one of them');
  }
  const input: CredentialInput = { name: r.name, namespace: r.namespace, urlPrefix: repoURL };
  for (const k of ['username', 'sshPrivateKey', 'knownHosts', 'caCert'] as const) if (a[k] !== undefined) input[k] = a[k];
  const password = a.token ?? a.password;
  if (password !== undefined) input.password = password;
  if (input.sshPrivateKey === undefined && input.password === undefined) {
    throw new ZvError('VALIDATION_FAILED', 'auth: give {username, token} or {sshPrivateKey, knownHosts}');
  }
  return input;
}

/** The repoURL as it is stored and shown: without `user:password@`. */
export function publicRepoUrl(repoURL: string): string {
  return splitUserinfo(repoURL).url;
}

/**
 * Registers the application through `register` with the URL stripped of its userinfo, after storing
 * the credential the registration carries (replacing a credential of the same name made for the same
 * URL). If registering fails, the credential store is left as it was.
 */
export async function registerWithCredential(
  deps: { store: Store; credentials: CredentialService },
  r: Registration,
  register: (repoURL: string) => Promise<AppRecord>,
): Promise<AppRecord> {
  const repoURL = publicRepoUrl(r.repoURL);
  const input = inputOf(r, repoURL);
  if (!input) return register(repoURL);
  const fresh = await deps.credentials.build(input, r.createdBy);
  const old = await deps.store.getCredential(r.namespace, r.name);
  if (old && old.urlPrefix !== repoURL) {
    throw new ZvError('CREDENTIAL_EXISTS',
      `credential '${r.name}' already exists in namespace '${r.namespace}' for ${old.urlPrefix}; delete it first (DELETE /api/credentials/${r.name}?namespace=${r.namespace})`);
  }
  if (await deps.store.getApp(r.namespace, r.name)) {
    throw new ZvError('APP_EXISTS', `application '${r.name}' already exists in namespace '${r.namespace}'`);
  }
  if (old) await deps.store.deleteCredential(old.id);
  const made = await deps.store.createCredential(fresh);
  try {
    return await register(repoURL);
  } catch (e) {
    await deps.store.deleteCredential(made.id);
    if (old) {
      const { id: _id, createdAt: _at, ...again } = old;
      await deps.store.createCredential(again satisfies NewCredential).catch(() => undefined);
    }
    throw e;
  }
}
