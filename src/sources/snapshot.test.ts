// resolveInSnapshot (lexical symlink resolution inside a snapshot's root) and FsSnapshot (a snapshot
// of a plain folder, with git's ids), against real temp folders and, for the ids, real git.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isZvError } from '../errors/registry.js';
import { FsSnapshot } from './fs-snapshot.js';
import { MAX_SYMLINK_HOPS, resolveInSnapshot } from './snapshot.js';
import type { SnapshotResolved } from './snapshot.js';

function tree(files: Record<string, string>, links: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'zv-snap-'));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  for (const [rel, target] of Object.entries(links)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    symlinkSync(target, join(dir, rel));
  }
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The outcome in one short string: `ok:<path>`, `escape:<target>`, `missing`, `dangling`, `loop`. */
function brief(r: SnapshotResolved): string {
  if (r.kind === 'ok') return `ok:${r.path}`;
  if (r.kind === 'escape') return `escape:${r.target}`;
  if (r.kind === 'missing') return r.dangling ? 'dangling' : 'missing';
  return 'loop';
}

test('resolveInSnapshot: plain paths, links at any position, .. after a link to a folder, chains', async () => {
  const dir = tree({ 'a/b/file.txt': 'f', 'c/d.txt': 'd', 'top.txt': 't' }, {
    'a/link-file': 'b/file.txt', // a link at the end
    'dirlink': 'a/b', // a link to a folder, used in the middle
    'a/b/up': '../../c', // climbs from inside
    'chain1': 'chain2', 'chain2': 'chain3', 'chain3': 'top.txt',
    'a/b/parent': '..', // a link to its folder's parent, then `..` from there
    'self': '.',
  });
  const snap = new FsSnapshot(dir);
  const r = async (p: string): Promise<string> => brief(await resolveInSnapshot(snap, p));
  assert.equal(await r(''), 'ok:');
  assert.equal(await r('.'), 'ok:');
  assert.equal(await r('a/b/file.txt'), 'ok:a/b/file.txt');
  assert.equal(await r('./a//b/./file.txt'), 'ok:a/b/file.txt');
  assert.equal(await r('a/link-file'), 'ok:a/b/file.txt');
  assert.equal(await r('dirlink/file.txt'), 'ok:a/b/file.txt');
  // `..` after a link climbs from the link's target (as the kernel does), not lexically.
  assert.equal(await r('dirlink/../b/file.txt'), 'ok:a/b/file.txt');
  assert.equal(await r('dirlink/..'), 'ok:a');
  assert.equal(await r('a/b/up/d.txt'), 'ok:c/d.txt');
  assert.equal(await r('chain1'), 'ok:top.txt');
  assert.equal(await r('a/b/parent/b/parent/b/file.txt'), 'ok:a/b/file.txt');
  assert.equal(await r('self/self/top.txt'), 'ok:top.txt');
  const ok = await resolveInSnapshot(snap, 'chain1');
  assert.equal(ok.kind === 'ok' && ok.entry.kind, 'file');
  const folder = await resolveInSnapshot(snap, 'dirlink');
  assert.equal(folder.kind === 'ok' && folder.entry.kind, 'dir');
});

test('resolveInSnapshot: escapes (absolute targets, .. above the root), missing, dangling, loops', async () => {
  const dir = tree({ 'a/x.txt': 'x' }, {
    'abs': '/etc/passwd',
    'a/abs-dir': '/etc',
    'a/above': '../../outside',
    'a/rootlink': '..',
    'gone': 'nowhere.txt',
    'a/gone-dir': 'missing-folder',
    'loop1': 'loop2', 'loop2': 'loop1',
    'selfloop': 'selfloop',
  });
  const snap = new FsSnapshot(dir);
  const r = async (p: string): Promise<string> => brief(await resolveInSnapshot(snap, p));
  assert.equal(await r('abs'), 'escape:/etc/passwd');
  assert.equal(await r('a/abs-dir/passwd'), 'escape:/etc');
  assert.match(await r('a/above'), /^escape:\.\./);
  assert.match(await r('..'), /^escape:\.\./);
  assert.match(await r('a/../../x'), /^escape:\.\./);
  assert.match(await r('a/rootlink/..'), /^escape:\.\./);
  assert.equal(await r('a/rootlink/a/x.txt'), 'ok:a/x.txt');
  assert.equal(await r('missing.txt'), 'missing');
  assert.equal(await r('a/x.txt/below'), 'missing'); // below a file: ENOTDIR
  assert.equal(await r('gone'), 'dangling');
  assert.equal(await r('a/gone-dir/file'), 'missing'); // the path itself is not the link
  assert.equal(await r('a/gone-dir'), 'dangling');
  assert.equal(await r('loop1'), 'loop');
  assert.equal(await r('selfloop/x'), 'loop');
});

test(`resolveInSnapshot: at most ${MAX_SYMLINK_HOPS} links`, async () => {
  const links: Record<string, string> = {};
  for (let i = 0; i < 41; i++) links[`l${i}`] = i === 40 ? 'end.txt' : `l${i + 1}`;
  const snap = new FsSnapshot(tree({ 'end.txt': 'e' }, links));
  assert.equal(brief(await resolveInSnapshot(snap, 'l1')), 'ok:end.txt'); // 40 links
  assert.equal(brief(await resolveInSnapshot(snap, 'l0')), 'loop'); // 41
});

test('FsSnapshot: entries as stored, git ids, exec bit, no .git, links not followed, maxBytes', async () => {
  const dir = tree({ 'a/b.txt': 'hello\n', 'run.sh': '#!/bin/sh\n', '.git/HEAD': 'x', 'e/.keep': '' }, { 'a/l': 'b.txt', 'dl': 'a' });
  chmodSync(join(dir, 'run.sh'), 0o755);
  const snap = new FsSnapshot(dir, 'c'.repeat(40));
  assert.equal(snap.commit, 'c'.repeat(40));
  const root = await snap.readdir('');
  assert.deepEqual(root.map((e) => [e.name, e.kind]), [['a', 'dir'], ['dl', 'symlink'], ['e', 'dir'], ['run.sh', 'exec']]);
  const b = await snap.lstat('a/b.txt');
  assert.deepEqual(b && { path: b.path, name: b.name, kind: b.kind, size: b.size }, { path: 'a/b.txt', name: 'b.txt', kind: 'file', size: 6 });
  const l = await snap.lstat('a/l');
  assert.equal(l?.kind, 'symlink');
  assert.equal((await snap.read(l!)).toString(), 'b.txt');
  assert.equal(await snap.lstat('dl/b.txt'), null); // not through a link
  assert.equal(await snap.lstat('.git/HEAD'), null);
  assert.equal(await snap.lstat('a/../run.sh'), null);
  await assert.rejects(snap.read(b!, { maxBytes: 5 }), (e: unknown) => isZvError(e, 'FILE_TOO_LARGE'));
  assert.equal((await snap.read(b!, { maxBytes: 6 })).toString(), 'hello\n');

  // The ids are git's: the same as `git hash-object` and `git write-tree` give for the same tree.
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_CEILING_DIRECTORIES: dirname(dir) } }).trim();
  rmSync(join(dir, '.git'), { recursive: true });
  git('init', '-q');
  git('add', '-A');
  const fresh = new FsSnapshot(dir, undefined, { gitIds: true });
  assert.equal((await fresh.lstat('a/b.txt'))?.id, git('hash-object', 'a/b.txt'));
  assert.equal((await fresh.lstat(''))?.id, git('write-tree'));
  assert.equal((await fresh.lstat('a'))?.id, git('rev-parse', `${git('write-tree')}:a`));

  // Equal contents, equal ids; a change moves the file's id and its folders', not the others'.
  const before = new Map((await fresh.readdir('')).map((e) => [e.name, e.id]));
  writeFileSync(join(dir, 'a/b.txt'), 'changed\n');
  const after = new Map((await new FsSnapshot(dir, undefined, { gitIds: true }).readdir('')).map((e) => [e.name, e.id]));
  assert.notEqual(after.get('a'), before.get('a'));
  assert.equal(after.get('e'), before.get('e'));
  assert.equal(after.get('run.sh'), before.get('run.sh'));
  // Without gitIds a folder's id is this snapshot's own: never skipped by a reader of another one.
  const [p, q] = [new FsSnapshot(dir), new FsSnapshot(dir)];
  assert.notEqual((await p.lstat('e'))?.id, (await q.lstat('e'))?.id);
  assert.equal((await p.lstat('e'))?.id, (await p.lstat('e'))?.id);
  assert.equal((await p.lstat('run.sh'))?.id, (await q.lstat('run.sh'))?.id);
});
