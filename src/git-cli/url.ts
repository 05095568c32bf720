// Input policy for the git source: which repository URLs, branch names and revisions are accepted
// before anything reaches the git binary. Pure functions, no I/O.
import { ZvError } from '../errors/registry.js';

/** Which repository URLs are accepted beyond https and ssh. */
export interface UrlPolicy {
  allowFileRepos: boolean;
}

export type RepoKind = 'https' | 'ssh' | 'file';

const MAX_URL_LENGTH = 4096;
const MAX_BRANCH_LENGTH = 255;
// `<transport>::<address>` selects a remote helper (ext::, fd::, any git-remote-<name>); git's own rule.
const HELPER_SYNTAX = /^[A-Za-z0-9][A-Za-z0-9+.-]*::/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
// scp-like `[user@]host:path`: the first ':' comes before any '/'. `[host:port]` / `[v6]` brackets allowed.
const SCP_LIKE = /^(?:([^@/:\s]+)@)?(\[[^\]\s/]+\]|[^@/:\s[\]]+):(.*)$/;
const HOSTNAME = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.~-]+)$/;

function isControl(code: number): boolean {
  return code < 0x20 || code === 0x7f;
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (isControl(s.charCodeAt(i))) return true;
  return false;
}

function showable(s: string): string {
  let out = '';
  for (const ch of s) out += isControl(ch.charCodeAt(0)) ? '?' : ch;
  return out;
}

function refuse(url: string, reason: string): never {
  throw new ZvError('INVALID_REPO_URL', `repository URL '${redactUrl(url)}' refused: ${reason}`);
}

/**
 * Throws ZvError('INVALID_REPO_URL') unless `url` is https://, ssh://, scp-like `user@host:path`, or
 * (only with `allowFileRepos`) file:///path or an absolute local path.
 */
export function validateRepoUrl(url: string, policy: UrlPolicy): void {
  classifyRepoUrl(url, policy);
}

/** Like validateRepoUrl, and says which kind of transport the URL uses. */
export function classifyRepoUrl(url: string, policy: UrlPolicy): RepoKind {
  if (typeof url !== 'string' || url.length === 0) refuse(String(url), 'the URL is empty');
  if (url.length > MAX_URL_LENGTH) refuse(url.slice(0, 80) + '…', `longer than ${MAX_URL_LENGTH} characters`);
  if (hasControl(url)) refuse(showable(url), 'it contains control characters or newlines');
  if (url.trim() !== url) refuse(url, 'it has leading or trailing whitespace');
  if (url.startsWith('-')) refuse(url, "it starts with '-' and would be read as a git option");
  if (HELPER_SYNTAX.test(url)) {
    refuse(url, "the '<transport>::' remote-helper syntax (ext::, fd::, …) is not allowed; use https://, ssh:// or git@host:path");
  }

  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined) return classifySchemeUrl(url, scheme, policy);

  if (url.startsWith('/')) {
    if (!policy.allowFileRepos) refuse(url, 'local paths need --allow-file-repos');
    return 'file';
  }
  const scp = SCP_LIKE.exec(url);
  if (scp) {
    const [, user, host = '', path = ''] = scp;
    if (/\s/.test(url)) refuse(url, 'it contains whitespace');
    if (user !== undefined && (user.startsWith('-') || user.includes('%'))) refuse(url, "the user name must not start with '-' or contain '%'");
    const bare = host.startsWith('[') ? host.slice(1, -1) : host;
    if (bare.length === 0 || bare.startsWith('-') || bare.includes('%')) refuse(url, "the host is empty, starts with '-' or contains '%'");
    if (path.length === 0) refuse(url, "the repository path after ':' is empty");
    return 'ssh';
  }
  if (url.startsWith('./') || url.startsWith('../') || !url.includes(':')) {
    refuse(url, 'relative local paths are not supported; use https://, ssh://, git@host:path (or an absolute path with --allow-file-repos)');
  }
  refuse(url, 'not a recognised repository URL; use https://, ssh:// or git@host:path');
}

function classifySchemeUrl(url: string, scheme: string, policy: UrlPolicy): RepoKind {
  if (scheme === 'file') {
    if (!policy.allowFileRepos) refuse(url, 'file:// repositories need --allow-file-repos');
    if (!url.startsWith('file:///')) refuse(url, 'file:// URLs must name an absolute path (file:///path/to/repo)');
    return 'file';
  }
  if (scheme === 'http') refuse(url, 'plain http:// is not allowed (no encryption or integrity); use https://');
  if (scheme === 'git') refuse(url, 'git:// is not allowed (unauthenticated and unencrypted); use https:// or ssh://');
  if (!['https', 'ssh', 'git+ssh', 'ssh+git'].includes(scheme)) {
    refuse(url, `the transport '${scheme}://' is not supported; use https://, ssh:// or git@host:path`);
  }
  if (/\s/.test(url)) refuse(url, 'it contains whitespace');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    refuse(url, 'it is not a valid URL');
  }
  const host = parsed.hostname;
  if (host.length === 0) refuse(url, 'the host is empty');
  if (host.startsWith('-') || !HOSTNAME.test(host)) refuse(url, `the host '${host}' is not a valid host name`);
  const isSsh = scheme !== 'https';
  if (isSsh && (parsed.username.startsWith('-') || parsed.username.includes('%'))) {
    refuse(url, "the user name must not start with '-' or contain '%'");
  }
  if (isSsh && parsed.password !== '') refuse(url, 'ssh:// URLs must not carry a password; use ssh keys');
  if (parsed.pathname === '' || parsed.pathname === '/') refuse(url, 'the repository path is empty');
  return isSsh ? 'ssh' : 'https';
}

/** Hides the password of `scheme://user:password@host` (tokens in https URLs) in messages. */
export function redactUrl(text: string): string {
  return text.replace(/(\/\/[^/@\s:]*):[^/@\s]*@/g, '$1:***@');
}

/**
 * Throws ZvError('VALIDATION_FAILED') unless `branch` is a valid branch name by git's
 * check-ref-format rules (also no leading '-', not 'HEAD', no '@{').
 */
export function validateBranchName(branch: string): void {
  const reason = branchProblem(branch);
  if (reason !== undefined) {
    const shown = typeof branch === 'string' ? showable(branch) : String(branch);
    throw new ZvError('VALIDATION_FAILED', `invalid branch name '${shown}': ${reason}`);
  }
}

function branchProblem(b: string): string | undefined {
  if (typeof b !== 'string' || b.length === 0) return 'it is empty';
  if (b.length > MAX_BRANCH_LENGTH) return `longer than ${MAX_BRANCH_LENGTH} characters`;
  if (b.startsWith('-')) return "it starts with '-'";
  if (b === 'HEAD' || b === '@') return `'${b}' is not a branch name`;
  if (hasControl(b) || /[ ~^:?*[\\]/.test(b)) return 'it contains a space, a control character or one of ~ ^ : ? * [ \\';
  if (b.includes('..')) return "it contains '..'";
  if (b.includes('@{')) return "it contains '@{'";
  if (b.startsWith('/') || b.endsWith('/') || b.includes('//')) return "it has an empty '/'-separated component";
  if (b.endsWith('.')) return "it ends with '.'";
  for (const part of b.split('/')) {
    if (part.startsWith('.')) return "a component starts with '.'";
    if (part.endsWith('.lock')) return "a component ends with '.lock'";
  }
  if (b.startsWith('refs/')) return "give the short branch name, without 'refs/…'";
  return undefined;
}

/** A full commit SHA (40 hex for SHA-1 repositories, 64 for SHA-256), normalised to lower case. */
export function normaliseRevision(revision: string): string | undefined {
  if (typeof revision !== 'string') return undefined;
  const r = revision.toLowerCase();
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(r) ? r : undefined;
}
