// The monorepo check: the glob matcher, the limits of a `paths` list, and the two-tree comparison
// (folder ids without globs; a walk into changed folders only, with globs).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appChanged } from './monorepo.js';
import { checkPathGlobs, compileGlob, MAX_PATH_GLOBS } from '../core/globs.js';
import type { Snapshot, SnapshotEntry } from '../sources/snapshot.js';

/** An in-memory snapshot of `files` whose folder ids hash their contents (as git's tree ids do). */
function snap(files: Record<string, string>, reads: string[] = []): Snapshot {
  const id = (s: string): string => createHash('sha1').update(s).digest('hex');
  const dirIds = new Map<string, string>();
  const children = new Map<string, Set<string>>();
  for (const path of Object.keys(files)) {
    const parts = path.split('/');
    for (let i = 0; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!children.has(parent)) children.set(parent, new Set());
      children.get(parent)?.add(parts[i] as string);
    }
  }
  const entry = (path: string): SnapshotEntry | null => {
    const name = path.split('/').pop() ?? '';
    if (path in files) return { path, name, kind: 'file', id: id(`f${files[path]}`) };
    if (!children.has(path)) return null;
    let d = dirIds.get(path);
    if (!d) {
      d = id([...(children.get(path) ?? [])].sort().map((n) => `${n}:${entry(path ? `${path}/${n}` : n)?.id}`).join('\n'));
      dirIds.set(path, d);
    }
    return { path, name, kind: 'dir', id: d };
  };
  return {
    commit: 'c',
    lstat: async (p) => entry(p),
    readdir: async (p) => {
      reads.push(p);
      return [...(children.get(p) ?? [])].sort().map((n) => entry(p ? `${p}/${n}` : n) as SnapshotEntry);
    },
    read: async () => Buffer.alloc(0),
  };
}

describe('monorepo globs', () => {
  it('matches *, ?, ** and classes over whole paths', () => {
    const t = (g: string, p: string): boolean => compileGlob(g)(p);
    assert.ok(t('a/*.js', 'a/x.js'));
    assert.ok(!t('a/*.js', 'a/b/x.js'));
    assert.ok(t('a/**', 'a/b/c/x.js'));
    assert.ok(t('a/**/x.js', 'a/x.js'));
    assert.ok(t('a/**/x.js', 'a/b/c/x.js'));
    assert.ok(!t('a/**/x.js', 'b/x.js'));
    assert.ok(t('**/*.md', 'README.md'));
    assert.ok(t('**/*.md', 'docs/a/b.md'));
    assert.ok(t('f?.txt', 'f1.txt'));
    assert.ok(!t('f?.txt', 'f/.txt'));
    assert.ok(t('v[0-9].txt', 'v3.txt'));
    assert.ok(!t('v[!0-9].txt', 'v3.txt'));
    assert.ok(t('a.b+c(d)', 'a.b+c(d)'));
    assert.ok(!t('a.b', 'axb'));
    assert.ok(t('./lib/**', 'lib/x'));
  });

  it('bounds and checks a paths list', () => {
    assert.equal(checkPathGlobs(['lib/**', 'a/*.ts']), null);
    assert.match(checkPathGlobs(Array.from({ length: MAX_PATH_GLOBS + 1 }, () => 'x')) ?? '', /at most 20/);
    assert.match(checkPathGlobs(['x'.repeat(201)]) ?? '', /paths\.0/);
    assert.match(checkPathGlobs(['../x']) ?? '', /inside the repository/);
    assert.match(checkPathGlobs(['/abs']) ?? '', /inside the repository/);
    assert.match(checkPathGlobs(['']) ?? '', /paths\.0/);
  });
});

describe('monorepo change check', () => {
  const base = { 'a/zerverless.yaml': 'a', 'a/fn/x.lua': 'x', 'b/zerverless.yaml': 'b', 'lib/util.lua': 'u', 'docs/readme.md': 'r' };

  it('compares the folder ids without globs', async () => {
    const from = snap(base);
    assert.equal(await appChanged(from, snap({ ...base, 'b/zerverless.yaml': 'b2' }), 'a', undefined), false);
    assert.equal(await appChanged(from, snap({ ...base, 'a/fn/x.lua': 'x2' }), 'a', undefined), true);
    assert.equal(await appChanged(from, snap({ ...base, 'b/zerverless.yaml': 'b2' }), '', undefined), true, 'the root covers everything');
    const { 'a/zerverless.yaml': _a, 'a/fn/x.lua': _x, ...noA } = base;
    assert.equal(await appChanged(from, snap(noA), 'a', undefined), true, 'a folder that went is a change');
  });

  it('walks only changed folders and matches changed files against the globs', async () => {
    const from = snap(base);
    const reads: string[] = [];
    assert.equal(await appChanged(from, snap({ ...base, 'lib/util.lua': 'u2' }, reads), 'a', ['lib/**']), true);
    assert.equal(await appChanged(from, snap({ ...base, 'docs/readme.md': 'r2' }), 'a', ['lib/**']), false);
    // Files of its folder outside the globs do not count …
    assert.equal(await appChanged(from, snap({ ...base, 'a/fn/x.lua': 'x2' }), 'a', ['lib/**']), false);
    // … but its zerverless.yaml and apps/ always do.
    assert.equal(await appChanged(from, snap({ ...base, 'a/zerverless.yaml': 'a2' }), 'a', ['lib/**']), true);
    assert.equal(await appChanged(from, snap({ ...base, 'a/apps/svc.yaml': 's' }), 'a', ['lib/**']), true);
    // A file that went matches as well as one that came.
    const { 'lib/util.lua': _u, ...noLib } = base;
    assert.equal(await appChanged(from, snap(noLib), 'a', ['lib/*.lua']), true);
    // Unchanged folders are not listed.
    const seen: string[] = [];
    await appChanged(from, snap({ ...base, 'docs/readme.md': 'r2' }, seen), 'a', ['lib/**']);
    assert.deepEqual(seen.sort(), ['', 'docs']);
  });
});
