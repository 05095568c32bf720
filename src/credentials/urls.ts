// Pure URL rules of credentials: which prefixes are acceptable, whether a prefix covers a repository
// URL (only at a boundary, so `https://git.example.com` never covers `https://git.example.com.evil.io/…`),
// which credential an application uses, and taking a `user:password@` out of an https URL.
import { ZvError } from '../errors/registry.js';

export type CredentialKind = 'ssh' | 'https';

const MAX_PREFIX = 4096;
// eslint-disable-next-line no-control-regex
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u009f]/;
const SSH_SCHEMES = ['ssh://', 'git+ssh://', 'ssh+git://'];
// scp-like `[user@]host:path` (no scheme); the host part must be non-empty.
const SCP_LIKE = /^(?:[^@/:\s]+@)?(?:\[[^\]\s/]+\]|[^@/:\s[\]]+)(?::|$)/;

/** Throws VALIDATION_FAILED unless `prefix` names at least a host, in the form the credential's type uses. */
export function validateUrlPrefix(prefix: string, kind: CredentialKind): void {
  const bad = (why: string): never => {
    throw new ZvError('VALIDATION_FAILED', `urlPrefix: ${why}`);
  };
  if (prefix.length === 0) bad('must not be empty');
  if (prefix.length > MAX_PREFIX) bad(`must be at most ${MAX_PREFIX} characters`);
  if (CONTROL_OR_SPACE.test(prefix)) bad('must not contain spaces or control characters');
  if (prefix.startsWith('-')) bad("must not start with '-'");
  if (/^[A-Za-z0-9][A-Za-z0-9+.-]*::/.test(prefix)) bad("the '<transport>::' remote-helper syntax is not a repository URL");
  if (kind === 'https') {
    if (!prefix.startsWith('https://')) bad('an https credential needs a prefix starting with https:// (plain http:// is not allowed)');
    let u: URL;
    try {
      u = new URL(prefix);
    } catch {
      return bad('is not a valid URL prefix');
    }
    if (!u.hostname) bad('must name the host (https://host/…)');
    if (u.username || u.password) bad('must not carry a user name or password; give them as username and password');
    return;
  }
  const scheme = SSH_SCHEMES.find((s) => prefix.startsWith(s));
  if (scheme) {
    const rest = prefix.slice(scheme.length);
    const host = rest.split('/')[0]?.replace(/^[^@]*@/, '') ?? '';
    if (!host) bad(`must name the host (${scheme}[user@]host/…)`);
    if (/^[^@/]*:[^@/]*@/.test(rest)) bad('must not carry a password');
    return;
  }
  if (prefix.includes('://')) bad('an ssh credential needs a prefix starting with ssh:// or the form user@host:path');
  if (!SCP_LIKE.test(prefix)) bad('an ssh credential needs a prefix starting with ssh:// or the form user@host:path');
}

/**
 * Whether `prefix` covers `url`: the URL starts with it and the match ends at a boundary (the end,
 * a '/' or ':' after it, or a prefix that itself ends with '/' or ':'), or only '.git' follows.
 */
export function prefixMatches(prefix: string, url: string): boolean {
  if (!url.startsWith(prefix)) return false;
  const rest = url.slice(prefix.length);
  if (rest === '' || prefix.endsWith('/') || prefix.endsWith(':')) return true;
  return rest.startsWith('/') || rest.startsWith(':') || /^\.git\/?$/.test(rest);
}

/**
 * The credential an application of `namespace` uses for `url`: the longest matching prefix among
 * the namespace's credentials, else among those of namespace '*'.
 */
export function pickCredential<T extends { namespace: string; urlPrefix: string }>(candidates: T[], namespace: string, url: string): T | null {
  for (const ns of [namespace, '*']) {
    let best: T | null = null;
    for (const c of candidates) {
      if (c.namespace !== ns || !prefixMatches(c.urlPrefix, url)) continue;
      if (!best || c.urlPrefix.length > best.urlPrefix.length) best = c;
    }
    if (best) return best;
  }
  return null;
}

/**
 * Takes `user:password@` out of an https URL: the URL without it (otherwise exactly as given) and
 * the decoded user name and password. A URL without a password is returned as it is.
 */
export function splitUserinfo(url: string): { url: string; username?: string; password?: string } {
  const m = /^(https:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return { url };
  const [, scheme = '', authority = '', rest = ''] = m;
  const at = authority.lastIndexOf('@');
  if (at === -1) return { url };
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon === -1 || colon === userinfo.length - 1) return { url };
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return {
    url: `${scheme}${authority.slice(at + 1)}${rest}`,
    username: decode(userinfo.slice(0, colon)),
    password: decode(userinfo.slice(colon + 1)),
  };
}
