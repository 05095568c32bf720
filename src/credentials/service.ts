// Git credentials (PRODUCT.md §10): checked and sealed on the way in, shown without their secret,
// and resolved for a repository URL and namespace into the GitAuth a git run uses.
import { X509Certificate } from 'node:crypto';
import { ZvError } from '../errors/registry.js';
import { validateAppName, validateNamespace } from '../core/names.js';
import type { MasterKey } from '../secrets/master-key.js';
import type { GitAuth } from '../sources/git/auth.js';
import type { CredentialRecord, NewCredential, Store } from '../store/types.js';
import { pickCredential, validateUrlPrefix } from './urls.js';
import { checkKnownHosts, publicKeyOf } from './ssh-key.js';

export interface CredentialInput {
  name: string;
  namespace: string;
  urlPrefix: string;
  username?: string;
  password?: string;
  sshPrivateKey?: string;
  knownHosts?: string;
  caCert?: string;
}

/** What the API shows of a credential: never the secret. */
export interface CredentialView {
  name: string;
  namespace: string;
  urlPrefix: string;
  type: 'ssh' | 'https';
  username: string | null;
  fingerprint: string;
  knownHosts: string | null;
  caCert: string | null;
  createdAt: string;
  createdBy: string | null;
}

interface Secret {
  password?: string;
  privateKey?: string;
}

// eslint-disable-next-line no-control-regex
const LINE_BREAK_OR_NUL = /[\r\n\u0000]/;

/** The additional data a credential's secret is sealed with: a row copied to another credential does not open. */
function aad(namespace: string, name: string): string {
  return `zerverless credential v1\u0000${namespace}\u0000${name}`;
}

export function credentialView(c: CredentialRecord): CredentialView {
  return {
    name: c.name, namespace: c.namespace, urlPrefix: c.urlPrefix, type: c.type, username: c.username, fingerprint: c.fingerprint,
    knownHosts: c.knownHosts, caCert: c.caCert, createdAt: c.createdAt, createdBy: c.createdBy,
  };
}

function checkCaCert(pem: string): string {
  const text = pem.trim();
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new ZvError('VALIDATION_FAILED', 'caCert: expected a PEM certificate (-----BEGIN CERTIFICATE-----)');
  try {
    new X509Certificate(text);
  } catch {
    throw new ZvError('VALIDATION_FAILED', 'caCert: the PEM certificate cannot be read');
  }
  return text;
}

export interface CredentialServiceDeps {
  store: Store;
  key: MasterKey;
  /** A private folder for ssh-keygen's temp files (e.g. <data>/git/tmp). */
  tmpDir: string;
}

export class CredentialService {
  constructor(private readonly deps: CredentialServiceDeps) {}

  /** Checks the input and seals the secret; nothing is stored. Throws VALIDATION_FAILED / INVALID_NAMESPACE. */
  async build(input: CredentialInput, createdBy: string | null): Promise<NewCredential> {
    const nameErr = validateAppName(input.name);
    if (nameErr) throw new ZvError('VALIDATION_FAILED', nameErr);
    if (input.namespace !== '*') {
      const nsErr = validateNamespace(input.namespace);
      if (nsErr) throw new ZvError('INVALID_NAMESPACE', nsErr);
    }
    const base = { name: input.name, namespace: input.namespace, urlPrefix: input.urlPrefix, createdBy };
    if (input.sshPrivateKey !== undefined) {
      for (const f of ['username', 'password', 'caCert'] as const) {
        if (input[f] !== undefined) throw new ZvError('VALIDATION_FAILED', `${f}: not used with sshPrivateKey (an ssh credential)`);
      }
      validateUrlPrefix(input.urlPrefix, 'ssh');
      const { fingerprint } = await publicKeyOf(input.sshPrivateKey, this.deps.tmpDir);
      const knownHosts = input.knownHosts === undefined ? null : checkKnownHosts(input.knownHosts);
      const secret: Secret = { privateKey: `${input.sshPrivateKey.trim()}\n` };
      return {
        ...base, type: 'ssh', username: null, fingerprint, knownHosts, caCert: null,
        secret: this.deps.key.seal(JSON.stringify(secret), aad(input.namespace, input.name)),
      };
    }
    if (input.password === undefined) throw new ZvError('VALIDATION_FAILED', 'give either sshPrivateKey (ssh) or username and password (https)');
    if (input.knownHosts !== undefined) throw new ZvError('VALIDATION_FAILED', 'knownHosts: only for ssh credentials');
    if (input.username === undefined) throw new ZvError('VALIDATION_FAILED', 'username: is required with password');
    if (LINE_BREAK_OR_NUL.test(input.username)) throw new ZvError('VALIDATION_FAILED', 'username: must be one line');
    if (input.password === '' || LINE_BREAK_OR_NUL.test(input.password)) throw new ZvError('VALIDATION_FAILED', 'password: must be one non-empty line');
    validateUrlPrefix(input.urlPrefix, 'https');
    const caCert = input.caCert === undefined ? null : checkCaCert(input.caCert);
    const secret: Secret = { password: input.password };
    return {
      ...base, type: 'https', username: input.username, fingerprint: this.deps.key.fingerprint(input.password), knownHosts: null, caCert,
      secret: this.deps.key.seal(JSON.stringify(secret), aad(input.namespace, input.name)),
    };
  }

  /** Checks, seals and stores; CREDENTIAL_EXISTS when the name is taken in the namespace. */
  async create(input: CredentialInput, createdBy: string | null): Promise<CredentialRecord> {
    return this.deps.store.createCredential(await this.build(input, createdBy));
  }

  /** The credential an application of `namespace` uses for `repoURL` (longest prefix; own namespace before '*'), secret opened. */
  async resolve(ref: { repoURL: string; namespace: string }): Promise<GitAuth | null> {
    const { store, key } = this.deps;
    const rec = pickCredential(await store.listCredentials([ref.namespace]), ref.namespace, ref.repoURL);
    if (!rec) return null;
    let secret: Secret;
    try {
      secret = JSON.parse(key.open(rec.secret, aad(rec.namespace, rec.name))) as Secret;
    } catch (e) {
      throw new ZvError('GIT_AUTH_FAILED', `credential '${rec.name}' (namespace '${rec.namespace}') cannot be decrypted with this server's master key: ${(e as Error).message}`);
    }
    return {
      id: `credential-${rec.id}`, name: rec.name, namespace: rec.namespace, type: rec.type, username: rec.username,
      password: secret.password, privateKey: secret.privateKey, knownHosts: rec.knownHosts, caCert: rec.caCert,
      // Trust on first use: the first host key seen is kept, unless the credential got one meanwhile.
      pin: async (knownHosts) => {
        const now = await store.getCredential(rec.namespace, rec.name);
        if (now && now.id === rec.id && !now.knownHosts) await store.setCredentialKnownHosts(rec.id, knownHosts);
      },
    };
  }
}
