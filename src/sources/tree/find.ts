// Locating and loading an application's manifest in a commit's snapshot: findManifest finds
// zerverless.yaml (or .yml) under the registration's source path, loadApp parses it and reads the
// desired state in one call, which is what a sync needs.
import type { Diagnostic, Manifest } from '../../core/desired.js';
import { formatDiagnostic } from '../../core/desired.js';
import { MANIFEST_FILES, parseManifest } from '../../core/manifest/index.js';
import type { ManifestLocations } from '../../core/manifest/index.js';
import { normalizeRelPath } from '../../core/names.js';
import { ZvError } from '../../errors/registry.js';
import { posixJoin, resolveInside, snapPath } from './resolve.js';
import { readDesiredState } from './read.js';
import type { TreeReadResult } from './read.js';
import type { HashFn } from './static.js';
import type { SecretsKeyring } from '../../core/secrets.js';
import type { StaticSite } from '../../core/desired.js';
import type { Snapshot, SnapshotEntry } from '../snapshot.js';
import { readManifestEntry } from './files.js';

export interface ManifestLocation {
  /** Real path of the manifest file in the snapshot (links resolved). */
  file: string;
  /** Its entry in the snapshot. */
  entry: SnapshotEntry;
  /** Its path relative to the repository root, POSIX: `zerverless.yaml`, `apps/web/zerverless.yml`. */
  relFile: string;
  /** Real path in the snapshot of the folder holding it ('' for the root): the application's root. */
  appDir: string;
}

/**
 * Finds `zerverless.yaml` (then `zerverless.yml`) in `subpath` of the snapshot. Null when the folder
 * or the file does not exist; PATH_ESCAPE when the subpath or the manifest resolves outside it.
 */
export async function findManifest(snap: Snapshot, subpath = ''): Promise<ManifestLocation | null> {
  const trimmed = subpath.replace(/^\/+/, '');
  const sub = trimmed === '' ? { path: '.' } : normalizeRelPath(trimmed);
  if ('error' in sub) throw new ZvError('PATH_ESCAPE', `source path: ${sub.error}`);
  const appRes = await resolveInside(snap, '', sub.path);
  if (appRes.kind === 'escape') throw new ZvError('PATH_ESCAPE', `source path "${subpath}" resolves outside the repository`);
  if (appRes.kind === 'missing' || !appRes.isDir) return null;
  for (const name of MANIFEST_FILES) {
    const r = await resolveInside(snap, appRes.real, name);
    if (r.kind === 'escape') throw new ZvError('PATH_ESCAPE', `${posixJoin(sub.path, name)} resolves outside the repository`);
    if (r.kind === 'ok' && r.isFile) return { file: r.real, entry: r.entry, relFile: posixJoin(sub.path, name), appDir: snapPath(appRes.real) };
  }
  return null;
}

export interface LoadOptions {
  commit: string;
  /** The registration's source path (folder holding zerverless.yaml); default the root. */
  path?: string;
  /** When set, metadata.namespace (if given) must equal it: NAMESPACE_MISMATCH otherwise. */
  namespace?: string;
  /**
   * The registered repository and branch. The registration wins over `spec.source`; a
   * `spec.source.repoURL` or `.branch` that differs is a warning (PRODUCT.md §3).
   */
  repoURL?: string;
  branch?: string;
  hash?: HashFn;
  /** Decrypts the functions' envFrom files (see ReadOptions.secrets). */
  secrets?: SecretsKeyring;
  /** The static site as deployed: unchanged paths reuse its hashes (see ReadOptions.previousStatic). */
  previousStatic?: StaticSite | null;
}

export interface LoadedApp extends TreeReadResult {
  manifest: Manifest;
  manifestFile: string;
  locations: ManifestLocations;
}

/** Parses the manifest text or throws MANIFEST_INVALID with every diagnostic (message: one `file:line:col: …` per line). */
export function parseManifestOrThrow(text: string, file: string): { manifest: Manifest; warnings: Diagnostic[]; locations: ManifestLocations } {
  const parsed = parseManifest(text, file);
  if ('errors' in parsed) {
    throw new ZvError(parsed.code ?? 'MANIFEST_INVALID', parsed.errors.map(formatDiagnostic).join('\n'), { diagnostics: parsed.errors });
  }
  return parsed;
}

/**
 * find → parse → read for one application. Null when there is no zerverless.yaml (the caller
 * decides whether an apps folder makes that fine). Parse warnings join the state's warnings.
 */
export async function loadApp(snap: Snapshot, opts: LoadOptions): Promise<LoadedApp | null> {
  const found = await findManifest(snap, opts.path ?? '');
  if (!found) return null;
  // Bounded: over the byte limit it is not read; it is parsed in a worker under a time limit.
  const parsed = await readManifestEntry(snap, found.entry, found.relFile);
  if ('errors' in parsed) {
    throw new ZvError(parsed.code ?? 'MANIFEST_INVALID', parsed.errors.map(formatDiagnostic).join('\n'), { diagnostics: parsed.errors });
  }
  const { manifest, warnings, locations } = parsed;
  const ns = manifest.metadata.namespace;
  if (opts.namespace !== undefined && ns !== undefined && ns !== opts.namespace) {
    const pos = locations['metadata.namespace'] ?? { line: 1, col: 1 };
    const d: Diagnostic = {
      file: found.relFile, ...pos, field: 'metadata.namespace',
      message: `is "${ns}" but the application is registered in namespace "${opts.namespace}"`,
    };
    throw new ZvError('NAMESPACE_MISMATCH', formatDiagnostic(d), { diagnostics: [d] });
  }
  const readOpts = {
    commit: opts.commit, manifestFile: found.relFile, locations,
    ...(opts.hash ? { hash: opts.hash } : {}), ...(opts.secrets ? { secrets: opts.secrets } : {}),
    ...(opts.previousStatic ? { previousStatic: opts.previousStatic } : {}),
  };
  const result = await readDesiredState(snap, found.appDir, manifest, readOpts);
  result.state.warnings.unshift(...warnings.map(formatDiagnostic), ...sourceWarnings(manifest, locations, found.relFile, opts).map(formatDiagnostic));
  return { ...result, manifest, manifestFile: found.relFile, locations };
}

/** `user:secret@` and a query say nothing about which repository it is, and must not be shown. */
function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return url.replace(/^[^@/]+@(?=[^:/]+:)/, ''); // scp form user@host:path: the host and path only
  }
}

/**
 * The repository a URL names, for comparing two spellings of it: host (lower case, without user or
 * default port) and path (without a trailing `/` or `.git`). `https://h/u/r`, `https://h/u/r.git`,
 * `ssh://git@h/u/r` and `git@h:u/r.git` are the same repository; the scheme is not compared.
 */
export function repoIdentity(url: string): string {
  const trim = (p: string): string => p.replace(/\/+$/, '').replace(/\.git$/i, '').replace(/\/+$/, '').replace(/^\/+/, '');
  try {
    const u = new URL(url);
    if (u.protocol === 'file:') return `file:${trim(u.pathname)}`;
    return `${u.hostname.toLowerCase()}/${trim(decodeURIComponent(u.pathname))}`;
  } catch {
    const scp = /^(?:[^@/]+@)?([^:/]+):(.*)$/.exec(url);
    if (scp) return `${(scp[1] as string).toLowerCase()}/${trim(scp[2] as string)}`;
    return `file:${trim(url)}`;
  }
}

/** Warnings for a `spec.source` that differs from the registered repository or branch. */
function sourceWarnings(manifest: Manifest, locations: ManifestLocations, file: string, opts: LoadOptions): Diagnostic[] {
  const src = manifest.spec.source;
  if (!src) return [];
  const out: Diagnostic[] = [];
  const at = (field: string): Diagnostic => ({ file, ...(locations[field] ?? locations['spec.source'] ?? { line: 1, col: 1 }), field, message: '' });
  if (src.repoURL !== undefined && opts.repoURL !== undefined && repoIdentity(src.repoURL) !== repoIdentity(opts.repoURL)) {
    out.push({ ...at('spec.source.repoURL'), message: `is "${shownUrl(src.repoURL)}" but the application is registered with "${shownUrl(opts.repoURL)}": the registered source is used` });
  }
  const branch = (b: string): string => b.replace(/^refs\/heads\//, '');
  if (src.branch !== undefined && opts.branch !== undefined && branch(src.branch) !== branch(opts.branch)) {
    out.push({ ...at('spec.source.branch'), message: `is "${src.branch}" but the application is registered with branch "${opts.branch}": the registered branch is used` });
  }
  return out;
}

