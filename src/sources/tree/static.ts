// Walks a static site folder of a snapshot: every file with its POSIX path, size, sha256 and content
// id, ready to be stored as blobs. Symlinks are followed (resolveInSnapshot) but must resolve inside
// the repository (else PATH_ESCAPE naming the file); dangling links and link loops are skipped with
// a warning.
//
// Only what changed costs anything. Given the site as deployed (`previous`), a file whose content id
// is one the previous site had reuses that entry's sha256 and size without reading a byte, and a
// folder whose id equals the one it had is not listed at all: its previous entries are kept. Only
// files with a new id are read through the snapshot and hashed (they come back in `files`: the
// blobs to store). Folder skipping needs the previous walk's folder ids (`dirs`), which a walk
// returns only when the site has no symlink: a link inside an unchanged folder may point at a file
// that changed elsewhere (and a link elsewhere into it changes nothing of its id), so a site with
// links is always walked in full (file ids still spare the reads).
//
// Decision: `.git` and every other dotfile or dot-folder are skipped, except `.well-known` (served
// for ACME, security.txt, …), so `.env`, `.htpasswd` and editor folders never get published.
import type { StaticFileEntry } from '../../core/desired.js';
import { resolveInSnapshot } from '../snapshot.js';
import type { Snapshot, SnapshotEntry } from '../snapshot.js';

export type HashFn = (data: string | Uint8Array) => string;

export interface StaticFileSource {
  entry: StaticFileEntry;
  /** The snapshot entry holding the bytes (for a symlinked file: the file it resolves to). */
  source: SnapshotEntry;
  /** The file's bytes, through the snapshot. */
  read(): Promise<Buffer>;
}

export interface StaticWalkResult {
  /** Every published file, sorted by path. The previous site's own array when nothing changed. */
  entries: StaticFileEntry[];
  /** The files this walk read and hashed (content ids the previous site did not have): the blobs to store. */
  files: StaticFileSource[];
  /** Folder ids by path inside the static dir ('' is the dir itself); absent when the site has symlinks. */
  dirs?: Record<string, string>;
  /** Files whose symlink leaves the repository: relative paths inside the static dir. */
  escapes: { path: string; target: string }[];
  warnings: string[];
}

/** What a walk may reuse: the static site as deployed. */
export interface PreviousStatic {
  files: readonly StaticFileEntry[];
  dirs?: Readonly<Record<string, string>> | undefined;
}

export function isPublished(name: string): boolean {
  return name === '.well-known' || !name.startsWith('.');
}

/** Files read at once (a git snapshot pipelines them through one cat-file process). */
const READ_CONCURRENCY = 16;
/** Bytes of the files read by a walk kept for the blob store (read again beyond this). */
const KEEP_BYTES = 32 * 1024 * 1024;
const KEEP_FILE_BYTES = 256 * 1024;

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
const parentOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');

export async function walkStatic(snap: Snapshot, staticPath: string, hash: HashFn, previous?: PreviousStatic | null): Promise<StaticWalkResult> {
  const out: StaticWalkResult = { entries: [], files: [], escapes: [], warnings: [] };
  const dirs: Record<string, string> = {};
  let sawLink = false;
  let kept = 0;

  // Previous entries by content id (any path: a moved or copied file is not read either).
  const byOid = new Map<string, StaticFileEntry>();
  for (const f of previous?.files ?? []) if (f.oid) byOid.set(f.oid, f);
  const prevDirs = previous?.dirs;
  // For skipping folders: the previous files by folder, the previous folders by parent.
  let filesIn: Map<string, StaticFileEntry[]> | undefined;
  let dirsIn: Map<string, string[]> | undefined;
  const keepPrevious = (prefix: string): void => {
    if (!prevDirs) return;
    if (!filesIn || !dirsIn) {
      filesIn = new Map();
      dirsIn = new Map();
      for (const f of previous?.files ?? []) {
        const p = parentOf(f.path);
        const l = filesIn.get(p);
        if (l) l.push(f);
        else filesIn.set(p, [f]);
      }
      for (const d of Object.keys(prevDirs)) {
        if (d === '') continue;
        const p = parentOf(d);
        const l = dirsIn.get(p);
        if (l) l.push(d);
        else dirsIn.set(p, [d]);
      }
    }
    const stack = [prefix];
    for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
      dirs[d] = prevDirs[d] as string;
      for (const f of filesIn.get(d) ?? []) out.entries.push(f);
      stack.push(...(dirsIn.get(d) ?? []));
    }
  };

  const pending: { source: SnapshotEntry; rel: string }[] = [];
  const addFile = (source: SnapshotEntry, rel: string): void => {
    const prev = byOid.get(source.id);
    if (prev) out.entries.push(prev.path === rel ? prev : { path: rel, hash: prev.hash, size: prev.size, oid: source.id });
    else pending.push({ source, rel });
  };

  async function walk(dirPath: string, prefix: string, ancestors: Set<string>, id: string): Promise<void> {
    if (prevDirs !== undefined && prevDirs[prefix] === id) {
      keepPrevious(prefix);
      return;
    }
    dirs[prefix] = id;
    for (const e of await snap.readdir(dirPath)) {
      if (!isPublished(e.name)) continue;
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.kind === 'symlink') {
        sawLink = true;
        const r = await resolveInSnapshot(snap, e.path);
        if (r.kind === 'missing' || r.kind === 'loop') {
          out.warnings.push(`static file "${rel}" is a dangling symlink; skipped`);
        } else if (r.kind === 'escape') {
          out.escapes.push({ path: rel, target: r.target });
        } else if (r.entry.kind === 'dir') {
          if (ancestors.has(r.path)) out.warnings.push(`static folder "${rel}" is a symlink loop; skipped`);
          else await walk(r.path, rel, new Set([...ancestors, r.path]), r.entry.id);
        } else if (r.entry.kind === 'file' || r.entry.kind === 'exec') {
          addFile(r.entry, rel);
        }
      } else if (e.kind === 'dir') {
        await walk(e.path, rel, new Set([...ancestors, e.path]), e.id);
      } else if (e.kind === 'file' || e.kind === 'exec') {
        addFile(e, rel);
      }
      // Submodules are never published (a checkout had an empty folder there).
    }
  }

  const root = await snap.lstat(staticPath);
  if (!root || root.kind !== 'dir') return out;
  // Nothing changed: the previous site's own array (later steps compare it by identity).
  if (prevDirs !== undefined && prevDirs[''] === root.id && previous) {
    return { entries: previous.files as StaticFileEntry[], files: [], dirs: { ...prevDirs }, escapes: [], warnings: [] };
  }
  await walk(staticPath, '', new Set([staticPath]), root.id);

  // New content ids: read and hashed (the same id at two paths is read once).
  const read = new Map<string, Promise<StaticFileEntry & { oid: string }>>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pending.length) {
      const { source, rel } = pending[next++] as (typeof pending)[number];
      let got = read.get(source.id);
      if (!got) {
        got = snap.read(source).then((data) => {
          const entry = { path: rel, hash: hash(data), size: data.byteLength, oid: source.id };
          const keep = data.byteLength <= KEEP_FILE_BYTES && kept + data.byteLength <= KEEP_BYTES;
          if (keep) kept += data.byteLength;
          out.files.push({ entry, source, read: keep ? () => Promise.resolve(data) : () => snap.read(source) });
          return entry;
        });
        read.set(source.id, got);
        const first = await got;
        out.entries.push(first);
      } else {
        const first = await got;
        out.entries.push({ path: rel, hash: first.hash, size: first.size, oid: source.id });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, pending.length) }, worker));

  out.entries.sort(byPath);
  out.files.sort((a, b) => byPath(a.entry, b.entry));
  if (!sawLink) out.dirs = dirs;
  return out;
}
