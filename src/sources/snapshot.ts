// A Snapshot is one commit's tree, read without checking it out: the port between where a commit
// comes from (git objects: sources/git; a plain folder: FsSnapshot, for tests and local reads) and
// the tree reader (sources/tree), which turns it into a desired state.
//
// Paths are POSIX, relative to the snapshot root, without a leading slash; '' is the root. Nothing
// here follows symlinks on its own: `lstat` and `readdir` describe entries as stored, and callers
// resolve links with the shared, lexical `resolveInSnapshot` (below), which keeps every resolved
// path inside the root — the same containment the on-disk reader got from realpath.

export type SnapshotKind = 'file' | 'exec' | 'symlink' | 'dir' | 'submodule';

export interface SnapshotEntry {
  /** Path from the root ('' for the root itself). */
  path: string;
  /** Last path segment ('' for the root). */
  name: string;
  kind: SnapshotKind;
  /**
   * Content id. For a git snapshot this is git's object id: a file's or symlink's blob id, a
   * folder's tree id, a submodule's commit id. Equal ids mean equal contents (for a folder: the
   * whole subtree), so a reader can skip what did not change between two commits.
   */
  id: string;
  /** Size in bytes of a file, or of a symlink's target text; absent for folders and submodules. */
  size?: number;
}

export interface Snapshot {
  /** The commit (full SHA) this snapshot is the tree of. */
  readonly commit: string;
  /** The entry at `path`, not following a symlink at its end; null when absent. Links on the way are not followed either. */
  lstat(path: string): Promise<SnapshotEntry | null>;
  /** The entries of the folder at `path` (not through symlinks), sorted by name; rejects if it is not a folder. */
  readdir(path: string): Promise<SnapshotEntry[]>;
  /**
   * The bytes of a file entry (or a symlink's target text). Rejects with a ZvError when the entry
   * is larger than `maxBytes` (checked before reading).
   */
  read(entry: SnapshotEntry, opts?: { maxBytes?: number }): Promise<Buffer>;
}

/** How many symlinks one resolution may follow before it is a loop (Linux's MAXSYMLINKS). */
export const MAX_SYMLINK_HOPS = 40;

/** A symlink's target text longer than this is not a path any tree needs (PATH_MAX). */
const MAX_LINK_BYTES = 4096;

export type SnapshotResolved =
  /** `path` is the real path (no link left in it, '' for the root); `entry` the entry there. */
  | { kind: 'ok'; path: string; entry: SnapshotEntry }
  /** A link leads out of the root: `target` is the absolute target, or the path that climbed above the root. */
  | { kind: 'escape'; target: string }
  /** Nothing there; `dangling` when the path itself (links on the way followed) is a link to nothing. */
  | { kind: 'missing'; dangling: boolean }
  /** More than MAX_SYMLINK_HOPS links followed. */
  | { kind: 'loop' };

interface Segment {
  name: string;
  /** The last segment of the path asked for (not of a link's target). */
  last: boolean;
}

/**
 * Resolves `path` inside the snapshot the way the kernel resolves a path on disk (what realpath
 * did for the on-disk reader), but lexically over the snapshot's entries, so it can never leave the
 * root: links are followed at any position (a link's target replaces it, and a `..` after it climbs
 * from the target's folder), an absolute target or a `..` above the root is an escape, and more than
 * MAX_SYMLINK_HOPS links is a loop. `path` is POSIX, relative to the root.
 */
export async function resolveInSnapshot(snap: Snapshot, path: string): Promise<SnapshotResolved> {
  const split = (p: string, last: boolean): Segment[] => {
    const names = p.split('/').filter((s) => s !== '' && s !== '.');
    return names.map((name, i) => ({ name, last: last && i === names.length - 1 }));
  };
  const queue: Segment[] = split(path, true);
  const real: string[] = [];
  let entry: SnapshotEntry | null = null;
  let hops = 0;
  // Whether the path's own last segment turned out to be a link (for `dangling`).
  let finalIsLink = false;
  for (let seg = queue.shift(); seg !== undefined; seg = queue.shift()) {
    if (seg.name === '..') {
      if (real.length === 0) return { kind: 'escape', target: ['..', ...queue.map((s) => s.name)].join('/') };
      real.pop();
      entry = null;
      continue;
    }
    const at = [...real, seg.name].join('/');
    const e = await snap.lstat(at);
    if (!e) return { kind: 'missing', dangling: finalIsLink };
    if (e.kind === 'symlink') {
      if (seg.last) finalIsLink = true;
      if (++hops > MAX_SYMLINK_HOPS) return { kind: 'loop' };
      const target = (await snap.read(e, { maxBytes: MAX_LINK_BYTES })).toString('utf8');
      if (target.startsWith('/')) return { kind: 'escape', target };
      // The target replaces the link (`link -> .` replaces it with nothing: the folder it is in).
      queue.unshift(...split(target, seg.last));
      entry = null;
      continue;
    }
    // Anything but a folder before the end: like ENOTDIR.
    if (queue.length > 0 && e.kind !== 'dir') return { kind: 'missing', dangling: false };
    real.push(seg.name);
    entry = e;
  }
  const p = real.join('/');
  entry ??= await snap.lstat(p);
  if (!entry) return { kind: 'missing', dangling: false };
  return { kind: 'ok', path: p, entry };
}
