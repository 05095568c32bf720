// Monorepos (PRODUCT.md §11): an application syncs on a poll or webhook only when files it reads
// changed between the commit it serves and the new head. Without `paths` that is its folder
// (`source.path`), compared by git tree id: equal ids mean equal contents, so two lstat calls decide
// (an application of the whole repository, no path and no globs, syncs on every new commit: the
// reconciler does not ask). With `paths` globs (from the repository root), the two trees
// are walked together, descending only into folders whose ids differ, and the application syncs
// when a changed file matches a glob, or is its zerverless.yaml or under its apps/ folder (always
// included). The walk is bounded: past MAX_WALK entries it gives up and says "changed".
import type { Snapshot, SnapshotEntry } from '../sources/snapshot.js';
import { compileGlob } from '../core/globs.js';

/** Entries the two-tree walk may look at before it stops and counts the application as changed. */
export const MAX_WALK = 20_000;

/** The folder's entry (the root for ''), or null when absent or not a folder. */
async function folder(snap: Snapshot, path: string): Promise<SnapshotEntry | null> {
  const e = await snap.lstat(path);
  return e ?? null;
}

/**
 * Whether `to` changed anything the application reads, compared with `from` (the served commit).
 * `path`: its folder ('' = root); `globs`: its `paths` list (none: the whole folder).
 */
export async function appChanged(from: Snapshot, to: Snapshot, path: string, globs: readonly string[] | undefined): Promise<boolean> {
  if (!globs || globs.length === 0) {
    const [a, b] = await Promise.all([folder(from, path), folder(to, path)]);
    if (!a || !b) return a !== b;
    return a.id !== b.id || a.kind !== b.kind;
  }
  const base = path ? `${path}/` : '';
  const tests = [...globs.map(compileGlob), (p: string) => p === `${base}zerverless.yaml` || p.startsWith(`${base}apps/`)];
  const matches = (p: string): boolean => tests.some((t) => t(p));
  let seen = 0;
  // Folders to compare, as (path, id in from | null, id in to | null).
  const stack: { path: string; a: SnapshotEntry | null; b: SnapshotEntry | null }[] = [{ path: '', a: await from.lstat(''), b: await to.lstat('') }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { a, b } = item;
    if (a && b && a.id === b.id && a.kind === b.kind) continue;
    const aDir = a?.kind === 'dir';
    const bDir = b?.kind === 'dir';
    // A file (or link, or submodule) that differs, appeared or went.
    if ((a && !aDir) || (b && !bDir)) {
      if (matches(item.path)) return true;
    }
    if (!aDir && !bDir) continue;
    const [la, lb] = await Promise.all([aDir ? from.readdir(item.path) : [], bDir ? to.readdir(item.path) : []]);
    seen += la.length + lb.length;
    if (seen > MAX_WALK) return true;
    const byName = new Map<string, { a: SnapshotEntry | null; b: SnapshotEntry | null }>();
    for (const e of la) byName.set(e.name, { a: e, b: null });
    for (const e of lb) byName.set(e.name, { a: byName.get(e.name)?.a ?? null, b: e });
    for (const [name, pair] of byName) stack.push({ path: item.path ? `${item.path}/${name}` : name, ...pair });
  }
  return false;
}
