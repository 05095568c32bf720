// Globs of repository paths (monorepos, PRODUCT.md §11: an application's `paths`): a small matcher
// and the limits a registration is checked against. Pure; reconciler/monorepo.ts uses it.

/** Globs per application, and characters per glob (validated at registration). */
export const MAX_PATH_GLOBS = 20;
export const MAX_GLOB_LENGTH = 200;
/** One character test of a segment pattern, or a `*`. */
type Tok = { star: true } | { star: false; one: (ch: string) => boolean };

/** Compiles one path segment's pattern (no `/`): literal characters, `*`, `?` and classes. */
function segmentTokens(seg: string): Tok[] {
  const toks: Tok[] = [];
  for (let j = 0; j < seg.length; j++) {
    const ch = seg[j] as string;
    if (ch === '*') toks.push({ star: true });
    else if (ch === '?') toks.push({ star: false, one: () => true });
    else if (ch === '[' && seg.indexOf(']', j + 2) >= 0) {
      const end = seg.indexOf(']', j + 2);
      let body = seg.slice(j + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      // A class tests one character: a regular expression of one bracket expression cannot backtrack.
      const rx = new RegExp(`^[${negate ? '^/' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]$`);
      toks.push({ star: false, one: (c) => rx.test(c) });
      j = end;
    } else toks.push({ star: false, one: (c) => c === ch });
  }
  return toks;
}

/**
 * Wildcard matching of `items` against `toks` (a star takes any run of items, also none) without
 * backtracking beyond the last star: O(tokens × items) tests at worst.
 */
function wildcard<T>(toks: readonly Tok[], items: readonly T[], test: (tok: Tok & { star: false }, item: T) => boolean): boolean {
  let t = 0;
  let i = 0;
  let starT = -1;
  let starI = 0;
  while (i < items.length) {
    const tok = toks[t];
    if (tok !== undefined && !tok.star && test(tok, items[i] as T)) {
      t++;
      i++;
    } else if (tok !== undefined && tok.star) {
      starT = t++;
      starI = i;
    } else if (starT >= 0) {
      t = starT + 1;
      i = ++starI;
    } else return false;
  }
  while (toks[t]?.star) t++;
  return t === toks.length;
}

/**
 * A small glob matcher over POSIX paths: `*` any characters but `/`, `?` one character but `/`,
 * `**` as a whole segment any number of segments (also none; at the end, at least one: anything
 * below), `[abc]` / `[a-z]` / `[!a]` a class; anything else literal. A glob ending in `/` (or naming
 * a folder) matches nothing by itself: write `dir/**`. Returns a compiled tester. It never
 * backtracks more than one star (globs come from users and run on the event loop: a regular
 * expression of nested `[^/]*` took minutes on one path for a 17-character glob).
 */
export function compileGlob(glob: string): (path: string) => boolean {
  const segs = glob.replace(/^\.?\//, '').split('/');
  // Path level: a `**` is a star over segments; any other segment one item matched by its pattern.
  const toks: Tok[] = [];
  const patterns = new Map<Tok, Tok[]>();
  segs.forEach((seg, i) => {
    if (seg === '**') {
      // A trailing `**` is `.*` after the `/` before it: at least one segment.
      if (i === segs.length - 1) toks.push({ star: false, one: () => true });
      toks.push({ star: true });
      return;
    }
    const tok: Tok = { star: false, one: () => false };
    patterns.set(tok, segmentTokens(seg));
    toks.push(tok);
  });
  return (path) => wildcard(toks, path.split('/'), (tok, seg) => {
    const pattern = patterns.get(tok);
    return pattern === undefined ? true : wildcard(pattern, [...seg], (c, ch) => c.one(ch));
  });
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
