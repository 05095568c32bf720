// Globs of repository paths (monorepos, PRODUCT.md §11: an application's `paths`): a small matcher
// and the limits a registration is checked against. Pure; reconciler/monorepo.ts uses it.

/** Globs per application, and characters per glob (validated at registration). */
export const MAX_PATH_GLOBS = 20;
export const MAX_GLOB_LENGTH = 200;
/**
 * A small glob matcher over POSIX paths: `*` any characters but `/`, `?` one character but `/`,
 * `**` as a whole segment any number of segments (also none), `[abc]` / `[a-z]` / `[!a]` a class;
 * anything else literal. A glob ending in `/` (or naming a folder) matches nothing by itself: write
 * `dir/**`. Returns a compiled tester.
 */
export function compileGlob(glob: string): (path: string) => boolean {
  let re = '';
  const segs = glob.replace(/^\.?\//, '').split('/');
  segs.forEach((seg, i) => {
    const last = i === segs.length - 1;
    if (seg === '**') {
      // Any number of whole segments: `a/**/b` matches a/b, a/x/b; a trailing `**` anything below.
      re += last ? '.*' : '(?:[^/]+/)*';
      return;
    }
    for (let j = 0; j < seg.length; j++) {
      const ch = seg[j] as string;
      if (ch === '*') re += '[^/]*';
      else if (ch === '?') re += '[^/]';
      else if (ch === '[') {
        const end = seg.indexOf(']', j + 2);
        if (end < 0) {
          re += '\\[';
          continue;
        }
        let body = seg.slice(j + 1, end);
        const negate = body.startsWith('!') || body.startsWith('^');
        if (negate) body = body.slice(1);
        re += `[${negate ? '^/' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
        j = end;
      } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
    }
    if (!last) re += '/';
  });
  const rx = new RegExp(`^${re}$`);
  return (path) => rx.test(path);
}

/** A problem with a `paths` list, or null when it is fine. */
export function checkPathGlobs(globs: readonly string[]): string | null {
  if (globs.length > MAX_PATH_GLOBS) return `paths: at most ${MAX_PATH_GLOBS} globs`;
  for (const [i, g] of globs.entries()) {
    if (g.length === 0 || g.length > MAX_GLOB_LENGTH) return `paths.${i}: 1 to ${MAX_GLOB_LENGTH} characters`;
    if (g.startsWith('/') || g.includes('\\') || g.includes('\0') || g.split('/').includes('..')) return `paths.${i}: '${g}' must be a glob of paths inside the repository (from its root, no '..')`;
  }
  return null;
}
