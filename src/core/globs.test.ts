// The glob matcher of an application's `paths` must not backtrack: globs come from any user who may
// register an application, and the monorepo check runs them on the server's event loop against every
// changed path. Before, a 17-character glob (`*a*a*a*a*a*a*a*ab`) against one 61-character path took
// 147 s (a regular expression of nested [^/]* and (?:[^/]+/)*); these cases would take years.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob } from './globs.js';

/** The earlier regular-expression matcher, as a reference on inputs too small to blow up. */
function reference(glob: string): (path: string) => boolean {
  let re = '';
  const segs = glob.replace(/^\.?\//, '').split('/');
  segs.forEach((seg, i) => {
    const last = i === segs.length - 1;
    if (seg === '**') {
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

describe('glob matcher', () => {
  it('answers pathological globs at once (no backtracking)', () => {
    assert.equal(compileGlob(`${'*a'.repeat(60)}b`)('a'.repeat(250)), false);
    assert.equal(compileGlob(`${'*a'.repeat(60)}`)('a'.repeat(250)), true);
    assert.equal(compileGlob(`${'**/'.repeat(60)}x`)(`${'a/'.repeat(200)}y`), false);
    assert.equal(compileGlob(`${'**/'.repeat(60)}x`)(`${'a/'.repeat(200)}x`), true);
    assert.equal(compileGlob(`${'**/*a*/'.repeat(25)}b`)(`${'aaaa/'.repeat(100)}c`), false);
    assert.equal(compileGlob(`${'?*'.repeat(90)}z`)('q'.repeat(4000)), false);
  });

  it('agrees with the earlier matcher on every small case', () => {
    const globs = ['*', '**', 'a/**', '**/a', 'a/**/b', '**/*.md', 'a/*', '*/b', 'a?', '[ab]*', '[!a]/**', 'a/**/**/b', '**/**', '*a*', 'a/b', './a/*', '/a', 'a//b', '[a-', 'x[]]y', 'a.b', '**/b/**', '*/**/a?'];
    const alphabet = ['a', 'b', 'x', '.', ']', 'ab', 'ba', 'b.md', 'a.b'];
    const paths: string[] = [''];
    for (let depth = 0; depth < 3; depth++) for (const p of [...paths]) for (const s of alphabet) paths.push(p ? `${p}/${s}` : s);
    for (const g of globs) {
      const ours = compileGlob(g);
      const ref = reference(g);
      for (const p of paths) assert.equal(ours(p), ref(p), `glob ${JSON.stringify(g)} on ${JSON.stringify(p)}`);
    }
  });
});
