// One repository, many spellings: https://host/owner/repo(.git)(/), ssh://git@host[:port]/owner/repo.git,
// git@host:owner/repo.git, git://host/owner/repo. A webhook names its repository in some of these
// forms and an application was registered with one of them: both are reduced to `host/owner/repo`.

/** Hosts whose repository paths are case-insensitive (their payloads may spell the owner differently). */
const CASE_INSENSITIVE_HOSTS = new Set(['github.com', 'gitlab.com', 'bitbucket.org', 'codeberg.org']);

function tidyPath(path: string): string {
  let p = path.replace(/\/+/g, '/').replace(/^\/+|\/+$/g, '');
  if (p.toLowerCase().endsWith('.git')) p = p.slice(0, -4);
  return p.replace(/\/+$/, '');
}

function join(host: string, path: string): string | null {
  const h = host.toLowerCase().replace(/^www\./, '');
  const p = tidyPath(path);
  if (h === '' || p === '') return null;
  return CASE_INSENSITIVE_HOSTS.has(h) ? `${h}/${p.toLowerCase()}` : `${h}/${p}`;
}

/**
 * The comparable form of a repository URL (`host/owner/repo`; `file:/abs/path` for local
 * repositories), or null when it is not a repository URL. Credentials, ports, a trailing `.git`
 * or slash, and the host's case are not part of it.
 */
export function normalizeRepoUrl(raw: string): string | null {
  const url = raw.trim();
  if (url === '') return null;
  // scp-like: [user@]host:path (no scheme, and the part before ':' has no '/')
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(.+)$/.exec(url);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return join(scp[1] as string, scp[2] as string);
  if (url.startsWith('/')) return `file:/${tidyPath(url)}`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const scheme = u.protocol.replace(/:$/, '').toLowerCase();
  if (scheme === 'file') return `file:/${tidyPath(decodeURIComponent(u.pathname))}`;
  if (!['https', 'http', 'ssh', 'git', 'git+ssh', 'ssh+git'].includes(scheme)) return null;
  return join(u.hostname, decodeURIComponent(u.pathname));
}
