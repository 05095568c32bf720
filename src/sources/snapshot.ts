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
