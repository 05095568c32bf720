// Containment on disk: a path from the manifest, already checked lexically by normalizeRelPath,
// is resolved with realpath and must stay inside the repository's real root, so a symlink (the
// file itself or any folder on the way) that points outside is caught. Also the problem type the
// tree reader collects before it throws or reports.
import { lstat, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Diagnostic } from '../../core/desired.js';
import type { ErrorCode } from '../../errors/registry.js';

export interface TreeProblem {
  code: ErrorCode;
  diagnostic: Diagnostic;
}

export function isInside(root: string, p: string): boolean {
  if (p === root) return true;
  const prefix = root.endsWith(sep) ? root : root + sep;
  return p.startsWith(prefix);
}

export type Resolved =
  | { kind: 'ok'; real: string; isFile: boolean; isDir: boolean; size: number; mode: number }
  | { kind: 'escape'; real: string }
  | { kind: 'missing'; dangling: boolean };

function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

/** Resolves `rel` (POSIX, relative to `base`) and checks that its real path is inside `root` (a real path). */
export async function resolveInside(root: string, base: string, rel: string): Promise<Resolved> {
  const abs = join(base, ...rel.split('/'));
  let real: string;
  try {
    real = await realpath(abs);
  } catch (e) {
    if (!isNotFound(e)) throw e;
    const dangling = await lstat(abs).then((s) => s.isSymbolicLink(), () => false);
    return { kind: 'missing', dangling };
  }
  if (!isInside(root, real)) return { kind: 'escape', real };
  const st = await stat(real);
  return { kind: 'ok', real, isFile: st.isFile(), isDir: st.isDirectory(), size: st.size, mode: st.mode };
}

/** Joins POSIX path segments, dropping `.`: `join('.', 'a')` → `a`. */
export function posixJoin(...parts: string[]): string {
  return parts.filter((p) => p !== '' && p !== '.').join('/') || '.';
}
