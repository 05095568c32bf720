// API tokens (PRODUCT.md §9): made here, stored only as a SHA-256 hash, checked on every /api call.
// A token is `zv_` + 43 characters of base64url (32 random bytes): guessing one is hopeless, so a
// plain hash (no salt, no slow KDF) is the right store and lets a lookup go by the hash's index.
// (The lookup compares hashes, never the token itself: see TokenService.check.)
import { createHash, randomBytes } from 'node:crypto';
import { ZvError } from '../errors/registry.js';
import type { Principal, Role } from '../core/access.js';
import type { Store, TokenRecord } from '../store/types.js';

export const TOKEN_PREFIX = 'zv_';
/** Bounds a presented token before it is hashed: nothing longer is ever issued or accepted. */
const MAX_TOKEN_LENGTH = 512;
/** The id of the bootstrap admin token (first start, ZV_ADMIN_TOKEN, --admin-token-file). */
export const BOOTSTRAP_TOKEN_ID = 'admin';

export function newTokenSecret(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Why a presented token was not accepted; also the label of the auth-failure metric. */
export type AuthFailure = 'missing' | 'malformed' | 'unknown' | 'expired';

export interface TokenCheck {
  principal?: Principal;
  failure?: AuthFailure;
}

export function principalOfToken(t: TokenRecord): Principal {
  return { tokenId: t.id, name: t.name, role: t.role, namespaces: t.namespaces, services: t.services };
}

/** The bearer token of an Authorization header value, or a failure. */
export function bearerToken(header: string | null | undefined): { token?: string; failure?: AuthFailure } {
  if (header === null || header === undefined || header === '') return { failure: 'missing' };
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!m?.[1] || m[1].length > MAX_TOKEN_LENGTH) return { failure: 'malformed' };
  return { token: m[1] };
}

export class TokenService {
  constructor(private readonly store: Store, private readonly now: () => Date = () => new Date()) {}

  /**
   * Looks the token up by its SHA-256. No byte of the presented token is ever compared with a
   * stored secret: an attacker who times the lookup learns about hashes of guesses, which does not
   * bring a guess closer (the constant-time property that matters). Refuses expired tokens.
   */
  async check(token: string): Promise<TokenCheck> {
    const hash = hashToken(token);
    const t = await this.store.findTokenByHash(hash);
    if (!t) return { failure: 'unknown' };
    if (t.expiresAt !== null && Date.parse(t.expiresAt) <= this.now().getTime()) return { failure: 'expired' };
    return { principal: principalOfToken(t) };
  }

  async create(input: { name: string; role: Role; namespaces: string[] | null; services: boolean; expiresInMs: number | null; createdBy: string | null }): Promise<{ token: string; record: TokenRecord }> {
    const token = newTokenSecret();
    const now = this.now();
    const record: TokenRecord = {
      id: randomBytes(8).toString('hex'),
      name: input.name,
      role: input.role,
      namespaces: input.namespaces,
      services: input.role === 'admin' ? true : input.services,
      createdAt: now.toISOString(),
      expiresAt: input.expiresInMs === null ? null : new Date(now.getTime() + input.expiresInMs).toISOString(),
      createdBy: input.createdBy,
    };
    await this.store.putToken(record, hashToken(token));
    return { token, record };
  }

  /** Stores `token` as the bootstrap admin token (replacing an earlier one). */
  async putBootstrap(token: string): Promise<void> {
    checkPresentable(token);
    await this.store.putToken({
      id: BOOTSTRAP_TOKEN_ID, name: 'admin', role: 'admin', namespaces: null, services: true,
      createdAt: this.now().toISOString(), expiresAt: null, createdBy: null,
    }, hashToken(token));
  }

  async hasAdmin(): Promise<boolean> {
    return (await this.store.listTokens()).some((t) => t.role === 'admin' && (t.expiresAt === null || Date.parse(t.expiresAt) > this.now().getTime()));
  }
}

/** A token given by the operator (ZV_ADMIN_TOKEN, --admin-token-file) must be long and printable. */
export function checkPresentable(token: string): void {
  if (token.length < 32 || token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
    throw new ZvError('CONFIG_INVALID', 'the admin token must be 32 to 512 printable characters without spaces (e.g. zv_ + 43 base64url characters)');
  }
}
