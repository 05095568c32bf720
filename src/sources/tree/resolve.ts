// Containment in a snapshot: a path from the manifest, already checked lexically by
// normalizeRelPath, is resolved with resolveInSnapshot (symlinks followed lexically, never out of
// the root), so a symlink (the file itself or any folder on the way) that points outside is caught.
// Also the problem type the tree reader collects before it throws or reports.
import type { Diagnostic } from '../../core/desired.js';
import type { ErrorCode } from '../../errors/registry.js';
import { resolveInSnapshot } from '../snapshot.js';
import type { Snapshot, SnapshotEntry } from '../snapshot.js';

export interface TreeProblem {
  code: ErrorCode;
  diagnostic: Diagnostic;
}

/** Whether POSIX path `p` is `root` or under it ('' is the snapshot root, which holds everything). */
export function isInside(root: string, p: string): boolean {
  if (p === root || root === '') return true;
  return p.startsWith(root.endsWith('/') ? root : `${root}/`);
}

export type Resolved =
  /** `real`: the path in the snapshot with every link resolved. */
  | { kind: 'ok'; real: string; entry: SnapshotEntry; isFile: boolean; isDir: boolean; size: number }
  | { kind: 'escape'; real: string }
  | { kind: 'missing'; dangling: boolean };

/** Resolves `rel` (POSIX, relative to the folder `base` of the snapshot); it must stay inside the snapshot. */
export async function resolveInside(snap: Snapshot, base: string, rel: string): Promise<Resolved> {
  const r = await resolveInSnapshot(snap, posixJoin(base, rel));
  // A link loop reads as a link to nothing, as realpath's ELOOP did.
  if (r.kind === 'loop') return { kind: 'missing', dangling: true };
  if (r.kind === 'missing') return r;
  if (r.kind === 'escape') return { kind: 'escape', real: r.target };
  const isFile = r.entry.kind === 'file' || r.entry.kind === 'exec';
  return { kind: 'ok', real: r.path, entry: r.entry, isFile, isDir: r.entry.kind === 'dir', size: r.entry.size ?? 0 };
}

/** Joins POSIX path segments, dropping `.`: `join('.', 'a')` → `a`. */
export function posixJoin(...parts: string[]): string {
  return parts.filter((p) => p !== '' && p !== '.').join('/') || '.';
}

/** A snapshot path ('' for the root) from a posixJoin result ('.' for the root). */
export function snapPath(p: string): string {
  return p === '.' ? '' : p;
}
