// Fetching a service's source into a fresh work folder: `git` (clone, then check out a branch, tag or
// commit), `release` (a .tgz over http(s), sha256 verified before anything is unpacked) and `npm`
// (`npm pack name@version` from the configured or the host's registry). Tarballs are unpacked with
// the system tar, and a single top-level folder (npm's `package/`) is stripped.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError } from '../../errors/registry.js';
import { classifyRepoUrl, redactUrl } from '../../git-cli/url.js';
import { runGit } from '../../git-cli/exec.js';
import type { ServiceSpec } from '../../core/services/types.js';
import { serviceError } from './errors.js';
import { runCommand } from './exec.js';
import type { LogBuffer } from './log.js';

export interface FetchOptions {
  allowFileRepos: boolean;
  npmRegistry: string | undefined;
  gitTimeoutMs: number;
  downloadTimeoutMs: number;
  maxDownloadBytes: number;
  log: LogBuffer;
  /** Environment of npm (see toolEnv). */
  env: NodeJS.ProcessEnv;
}

/** The version folder's name: `<version>-<12 hex of the source's hash>`. */
export function versionFolder(spec: ServiceSpec): string {
  const s = spec.source;
  const key = JSON.stringify([s.type, 'url' in s ? s.url : null, 'ref' in s ? s.ref : null,
    'sha256' in s ? s.sha256.toLowerCase() : null, s.type === 'npm' ? (s.package ?? spec.name) : null, spec.version]);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
  const version = spec.version.replace(/[^A-Za-z0-9._+-]/g, '_').replace(/^\.+/, '_').slice(0, 64) || '_';
  return `${version}-${hash}`;
}

/** Fetches the spec's source into `work` (an empty folder); resolves with the app's root folder. */
export async function fetchSource(spec: ServiceSpec, work: string, o: FetchOptions): Promise<string> {
  const s = spec.source;
  switch (s.type) {
    case 'git':
      return fetchGit(s.url, s.ref, work, o);
    case 'release':
      return fetchRelease(s.url, s.sha256, work, o);
    case 'npm':
      return fetchNpm(s.package ?? spec.name, spec.version, work, o);
    default:
      throw serviceError('invalid-spec', `source type '${(s as { type: string }).type}' is not supported by the Node runtime`);
  }
}

async function fetchGit(url: string, ref: string, work: string, o: FetchOptions): Promise<string> {
  classifyRepoUrl(url, { allowFileRepos: o.allowFileRepos });
  if (!ref || ref.startsWith('-') || /\s/.test(ref) || [...ref].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw serviceError('invalid-spec', `git ref '${ref}' is not a valid branch, tag or commit`);
  }
  const dir = join(work, 'git');
  const base = { git: 'git', timeoutMs: o.gitTimeoutMs, allowFile: o.allowFileRepos };
  o.log.add('system', `fetching ${redactUrl(url)} at ${ref}`);
  await runGit({ ...base, args: ['clone', '--quiet', '--no-checkout', '--', url, dir], cwd: work, mode: 'remote', what: `git clone ${url}` });
  let sha = '';
  // A branch as the remote has it first, then a tag, then anything git resolves (a full or short commit).
  for (const cand of [`refs/remotes/origin/${ref}`, `refs/tags/${ref}`, ref]) {
    const r = await runGit({ ...base, args: ['rev-parse', '--verify', '--quiet', `${cand}^{commit}`], cwd: dir, mode: 'local', okCodes: [0, 1, 128] });
    sha = r.code === 0 ? r.stdout.trim() : '';
    if (sha) break;
  }
  if (!sha) throw new ZvError('GIT_REF_NOT_FOUND', `'${ref}' is neither a branch, a tag nor a commit of ${redactUrl(url)}`, { reason: 'fetch' });
  await runGit({ ...base, args: ['checkout', '--quiet', '--detach', sha], cwd: dir, mode: 'local' });
  await rm(join(dir, '.git'), { recursive: true, force: true });
  o.log.add('system', `checked out ${ref} at ${sha}`);
  return dir;
}

async function fetchRelease(url: string, sha256: string, work: string, o: FetchOptions): Promise<string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw serviceError('invalid-spec', `release url '${url}' is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw serviceError('invalid-spec', `release url '${redactUrl(url)}' must be http(s)`);
  const expected = sha256.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) throw serviceError('invalid-spec', `release sha256 '${sha256}' is not 64 hex digits`);
  const file = join(work, 'release.tgz');
  o.log.add('system', `downloading ${redactUrl(url)}`);
  const actual = await download(url, file, o);
  if (actual !== expected) {
    await rm(file, { force: true });
    throw serviceError('checksum', `sha256 mismatch for ${redactUrl(url)}: expected ${expected}, got ${actual}; nothing was unpacked`, { expected, actual });
  }
  return unpack(file, work, o);
}

/** Streams `url` into `file`; resolves with the hex sha256 of what was written. */
async function download(url: string, file: string, o: FetchOptions): Promise<string> {
  const what = redactUrl(url);
  // One time limit for the whole download, held by our own timer: fetch() follows its signal only
  // through weak references (nodejs/undici#4068), so an AbortSignal.timeout() nothing else holds
  // may be collected and never fire.
  const limit = new AbortController();
  const tooSlow = (): ZvError => serviceError('fetch', `cannot download ${what}: no complete answer within ${o.downloadTimeoutMs} ms`);
  const timer = setTimeout(() => limit.abort(), o.downloadTimeoutMs);
  try {
    return await downloadWithin(url, file, o, what, limit.signal, tooSlow);
  } finally {
    clearTimeout(timer);
  }
}

async function downloadWithin(url: string, file: string, o: FetchOptions, what: string, signal: AbortSignal, tooSlow: () => ZvError): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal });
  } catch (e) {
    if (signal.aborted) throw tooSlow();
    throw serviceError('fetch', `cannot download ${what}: ${e instanceof Error ? e.message : String(e)}`, {}, e);
  }
  if (!res.ok || !res.body) throw serviceError('fetch', `cannot download ${what}: HTTP ${res.status}`, { status: res.status });
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  // A write still under way when the download fails errors on the destroyed stream: kept here,
  // never an uncaught 'error' event (that would take the whole server down).
  let writeError: Error | null = null;
  out.on('error', (e) => {
    writeError ??= e;
  });
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      if (bytes > o.maxDownloadBytes) throw serviceError('fetch', `${what} is larger than ${o.maxDownloadBytes} bytes`);
      hash.update(chunk);
      if (writeError) throw writeError;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
  } catch (e) {
    out.destroy();
    if (e instanceof ZvError) throw e;
    if (signal.aborted) throw tooSlow();
    throw serviceError('fetch', `cannot download ${what}: ${e instanceof Error ? e.message : String(e)}`, {}, e);
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return hash.digest('hex');
}

const NPM_NAME = /^(?:@[a-z0-9~-][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*$/;

async function fetchNpm(pkg: string, version: string, work: string, o: FetchOptions): Promise<string> {
  if (!NPM_NAME.test(pkg) || pkg.length > 214) throw serviceError('invalid-spec', `'${pkg}' is not a valid npm package name`);
  if (!version || version.startsWith('-') || /\s/.test(version)) throw serviceError('invalid-spec', `'${version}' is not a valid npm version`);
  const args = ['pack', `${pkg}@${version}`, '--json', '--pack-destination', work, '--ignore-scripts'];
  if (o.npmRegistry) args.push('--registry', o.npmRegistry);
  o.log.add('system', `npm pack ${pkg}@${version}${o.npmRegistry ? ` from ${o.npmRegistry}` : ''}`);
  const r = await runCommand({ cmd: 'npm', args, cwd: work, env: o.env, timeoutMs: o.downloadTimeoutMs, log: o.log, what: 'npm pack' });
  if (r.timedOut) throw serviceError('fetch', `npm pack ${pkg}@${version} took longer than ${o.downloadTimeoutMs} ms`);
  if (r.code !== 0) throw serviceError('fetch', `npm pack ${pkg}@${version} failed: ${r.tail || `exit code ${r.code}`}`);
  let filename: string | undefined;
  try {
    const parsed = JSON.parse(r.stdout) as { filename?: string }[];
    filename = parsed[0]?.filename;
  } catch { /* below */ }
  if (!filename) throw serviceError('fetch', `npm pack ${pkg}@${version} did not say which file it wrote`);
  // npm names scoped tarballs `scope-name-1.0.0.tgz` in the destination.
  const file = join(work, filename.replace(/^@/, '').replace(/\//g, '-'));
  return unpack(file, work, o);
}

/** Unpacks a .tgz into `<work>/x`; a single top-level folder becomes the root. */
export async function unpack(file: string, work: string, o: FetchOptions): Promise<string> {
  const dest = join(work, 'x');
  await mkdir(dest, { recursive: true });
  const r = await runCommand({
    cmd: 'tar', args: ['-xzf', file, '-C', dest, '--no-same-owner'], cwd: work, env: o.env, timeoutMs: o.downloadTimeoutMs, what: 'tar',
  });
  await rm(file, { force: true });
  if (r.code !== 0) throw serviceError('fetch', `cannot unpack the tarball: ${r.tail || (r.timedOut ? 'time limit' : `exit code ${r.code}`)}`);
  const entries = await readdir(dest);
  if (entries.length === 1) {
    const only = join(dest, entries[0] as string);
    if ((await lstat(only)).isDirectory()) return only;
  }
  return dest;
}
