// What each git host sends on a push, and how it signs it. Each provider reads the request's
// headers and its parsed JSON body into one HookEvent; signatures are checked over the raw bytes.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const PROVIDERS = ['github', 'gitlab', 'gitea', 'bitbucket', 'generic'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** One branch or tag a push moved. */
export interface RefChange {
  kind: 'branch' | 'tag';
  name: string;
  /** The ref was deleted (GitHub/Gitea `deleted`, an all-zero `after`, Bitbucket `new: null`). */
  deleted: boolean;
  /** The new head, when the payload tells it. */
  after: string | null;
}

export type HookEvent =
  | { kind: 'ping' }
  | { kind: 'other'; event: string }
  | { kind: 'push'; repoUrls: string[]; changes: RefChange[] };

/** The payload is not what the provider sends: answered 400 with this message. */
export class PayloadError extends Error {}

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const ZERO = /^0+$/;

function need(o: Json | null, key: string, what: string): Json {
  const v = obj(o?.[key]);
  if (!v) throw new PayloadError(`${what}: "${key}" is missing or not an object`);
  return v;
}

/** `refs/heads/x` → branch x, `refs/tags/v1` → tag v1. */
function refChange(ref: unknown, after: unknown, deleted: boolean, what: string): RefChange {
  const r = str(ref);
  if (!r) throw new PayloadError(`${what}: "ref" is missing or not a string`);
  const a = str(after);
  const gone = deleted || (a !== null && ZERO.test(a));
  if (r.startsWith('refs/heads/')) return { kind: 'branch', name: r.slice('refs/heads/'.length), deleted: gone, after: gone ? null : a };
  if (r.startsWith('refs/tags/')) return { kind: 'tag', name: r.slice('refs/tags/'.length), deleted: gone, after: gone ? null : a };
  // A bare branch name (the generic hook, some self-hosted senders)
  return { kind: 'branch', name: r, deleted: gone, after: gone ? null : a };
}

function urls(repo: Json, keys: string[]): string[] {
  return keys.map((k) => str(repo[k])).filter((v): v is string => v !== null);
}

/** The event name a provider puts in its headers (lower case), or null. */
function eventHeader(provider: Provider, h: Headers): string | null {
  switch (provider) {
    case 'github':
      return h.get('x-github-event');
    case 'gitea':
      return h.get('x-gitea-event') ?? h.get('x-gogs-event') ?? h.get('x-github-event');
    case 'gitlab':
      return h.get('x-gitlab-event');
    case 'bitbucket':
      return h.get('x-event-key');
    case 'generic':
      return 'push';
  }
}

/** Reads the provider's payload into a HookEvent; throws PayloadError naming what is wrong. */
export function parseEvent(provider: Provider, h: Headers, body: unknown): HookEvent {
  const root = obj(body);
  if (!root) throw new PayloadError('the body must be a JSON object');
  const event = (eventHeader(provider, h) ?? '').trim().toLowerCase();
  switch (provider) {
    case 'github':
    case 'gitea': {
      if (event === 'ping') return { kind: 'ping' };
      if (event !== 'push') return { kind: 'other', event: event || '(none)' };
      const repo = need(root, 'repository', 'push payload');
      const change = refChange(root['ref'], root['after'], root['deleted'] === true, 'push payload');
      return { kind: 'push', repoUrls: urls(repo, ['clone_url', 'ssh_url', 'html_url', 'git_url', 'url']), changes: [change] };
    }
    case 'gitlab': {
      // "Push Hook", "Tag Push Hook"; the test button sends the same events. Anything else is not ours.
      if (event !== 'push hook' && event !== 'tag push hook') return { kind: 'other', event: event || '(none)' };
      const project = obj(root['project']);
      const repo = project ?? need(root, 'repository', 'push payload');
      const legacy = obj(root['repository']) ?? {};
      const found = [
        ...urls(repo, ['git_http_url', 'git_ssh_url', 'web_url', 'http_url', 'ssh_url']),
        ...urls(legacy, ['git_http_url', 'git_ssh_url', 'homepage', 'url']),
      ];
      const change = refChange(root['ref'], root['after'], false, 'push payload');
      return { kind: 'push', repoUrls: [...new Set(found)], changes: [change] };
    }
    case 'bitbucket': {
      if (event === 'diagnostics:ping') return { kind: 'ping' };
      if (event !== 'repo:push') return { kind: 'other', event: event || '(none)' };
      const repo = need(root, 'repository', 'push payload');
      const found: string[] = [];
      const html = str(obj(obj(repo['links'])?.['html'])?.['href']);
      if (html) found.push(html);
      const fullName = str(repo['full_name']);
      if (fullName) found.push(`https://bitbucket.org/${fullName}`);
      const push = need(root, 'push', 'push payload');
      const list = push['changes'];
      if (!Array.isArray(list)) throw new PayloadError('push payload: "push.changes" is missing or not a list');
      const changes: RefChange[] = [];
      for (const c of list) {
        const ch = obj(c);
        const next = obj(ch?.['new']);
        const old = obj(ch?.['old']);
        const side = next ?? old;
        const name = str(side?.['name']);
        const type = str(side?.['type']);
        if (!name || (type !== 'branch' && type !== 'tag' && type !== 'named_branch')) continue;
        const after = str(obj(next?.['target'])?.['hash']);
        changes.push({ kind: type === 'tag' ? 'tag' : 'branch', name, deleted: next === null, after: next ? after : null });
      }
      return { kind: 'push', repoUrls: found, changes };
    }
    case 'generic': {
      const repoURL = str(root['repoURL']);
      if (!repoURL) throw new PayloadError('"repoURL" is missing or not a string');
      const branch = str(root['branch']);
      if (!branch) throw new PayloadError('"branch" is missing or not a string');
      return { kind: 'push', repoUrls: [repoURL], changes: [refChange(branch, root['after'] ?? null, false, 'body')] };
    }
  }
}

/** The delivery id the provider puts on each delivery (redeliveries of one event keep it), or null. */
export function deliveryId(provider: Provider, h: Headers): string | null {
  const names: Record<Provider, string[]> = {
    github: ['x-github-delivery'],
    gitea: ['x-gitea-delivery', 'x-gogs-delivery', 'x-github-delivery'],
    gitlab: ['x-gitlab-event-uuid', 'x-gitlab-webhook-uuid'],
    bitbucket: ['x-request-uuid', 'x-hook-uuid'],
    generic: ['x-delivery-id'],
  };
  for (const n of names[provider]) {
    const v = h.get(n)?.trim();
    // Printable ASCII, bounded: the id is echoed in answers and kept in the sync's history.
    if (v && v.length <= 128 && /^[\x21-\x7e]+$/.test(v)) return v;
  }
  return null;
}

const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

/** Equal in constant time (over digests, so lengths leak nothing either). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

function hmacHex(secret: string, raw: Buffer): string {
  return createHmac('sha256', secret).update(raw).digest('hex');
}

/** A hex HMAC-SHA256 signature header (with or without `sha256=`) against the raw body. */
function hmacMatches(header: string | null, secret: string, raw: Buffer, prefix: 'sha256=' | ''): boolean {
  if (!header) return false;
  let sig = header.trim();
  if (prefix) {
    if (!sig.toLowerCase().startsWith(prefix)) return false;
    sig = sig.slice(prefix.length);
  }
  return sameSecret(sig.toLowerCase(), hmacHex(secret, raw));
}

/** Whether the delivery carries proof of `secret` in the provider's scheme. */
export function verifies(provider: Provider, h: Headers, raw: Buffer, secret: string): boolean {
  switch (provider) {
    case 'github':
      return hmacMatches(h.get('x-hub-signature-256'), secret, raw, 'sha256=');
    case 'gitea':
      return hmacMatches(h.get('x-gitea-signature') ?? h.get('x-gogs-signature'), secret, raw, '')
        || hmacMatches(h.get('x-hub-signature-256'), secret, raw, 'sha256=');
    case 'gitlab': {
      const token = h.get('x-gitlab-token');
      return token !== null && sameSecret(token, secret);
    }
    case 'bitbucket':
      return hmacMatches(h.get('x-hub-signature'), secret, raw, 'sha256=');
    case 'generic': {
      if (h.get('x-hub-signature-256') !== null) return hmacMatches(h.get('x-hub-signature-256'), secret, raw, 'sha256=');
      const auth = /^Bearer\s+(.+)$/i.exec(h.get('authorization') ?? '');
      return auth !== null && sameSecret((auth[1] as string).trim(), secret);
    }
  }
}

/** Whether the delivery carries any signature or token header at all (for the 401's message). */
export function hasProof(provider: Provider, h: Headers): boolean {
  const names: Record<Provider, string[]> = {
    github: ['x-hub-signature-256'],
    gitea: ['x-gitea-signature', 'x-gogs-signature', 'x-hub-signature-256'],
    gitlab: ['x-gitlab-token'],
    bitbucket: ['x-hub-signature'],
    generic: ['x-hub-signature-256', 'authorization'],
  };
  return names[provider].some((n) => h.get(n) !== null);
}
