// GitSource snapshots and the cat-file reader (objects.ts, snapshot.ts) against real git
// repositories in temp dirs: how many git processes a sync-shaped sequence runs (counted by a git
// wrapper that logs each start), hand-made trees with names git fsck refuses, the batch process
// killed under requests, its time limit, and the pool's bound.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { rejectsWith } from '../contract.js';
import { GitSource, type GitSourceOptions } from './git-source.js';
import { BatchReader } from './objects.js';
import { badEntryName, parseCommit } from './snapshot.js';

let base = '';
let counter = 0;
before(() => { base = mkdtempSync(join(tmpdir(), 'zv-snapshot-test-')); });
after(() => { rmSync(base, { recursive: true, force: true }); });

function fresh(name: string): string {
  const dir = join(base, `${name}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function git(cwd: string, args: string[], input?: Buffer | string): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'commit.gpgsign=false', ...args], {
    cwd, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' },
  }).trim();
}

function makeRepo(files: Record<string, string>): string {
  const dir = fresh('remote');
  git(dir, ['init', '--quiet', '--initial-branch=main']);
  commit(dir, files);
  return dir;
}

function commit(dir: string, files: Record<string, string>, message = 'change'): string {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  git(dir, ['add', '-A']);
  git(dir, ['commit', '--quiet', '--allow-empty', '-m', message]);
  return git(dir, ['rev-parse', 'HEAD']);
}

/** A git that appends its subcommand to `log` before running the real one. */
function countingGit(): { git: string; runs: () => string[] } {
  const dir = fresh('bin');
  const log = join(dir, 'log');
  writeFileSync(log, '');
  const real = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  const wrapper = join(dir, 'git');
  // The subcommand is the first argument that is not an option or an option's value.
  writeFileSync(wrapper, `#!/bin/sh
sub=""; skip=0
for a in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case "$a" in -c) skip=1 ;; -*) ;; *) sub="$a"; break ;; esac
done
echo "$sub" >> '${log}'
exec '${real}' "$@"
`);
  chmodSync(wrapper, 0o755);
  return { git: wrapper, runs: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

function source(opts: Partial<GitSourceOptions> = {}): GitSource {
  return new GitSource({ dataDir: fresh('data'), allowFileRepos: true, headCacheMs: 0, ...opts });
}

test('a sync-shaped sequence runs ls-remote + fetch + one cat-file for a new commit, ls-remote alone when the head did not move', async () => {
  const repo = makeRepo({ 'zerverless.yaml': 'a: 1\n', 'fn/hello.lua': 'return 1\n' });
  const counting = countingGit();
  const src = source({ git: counting.git });
  const ref = { repoURL: `file://${repo}`, branch: 'main' };
  try {
    // First sync: the branch name is checked once, the clone is made once.
    const h1 = await src.head(ref, { maxAgeMs: 0 });
    const s1 = await src.snapshot(ref, h1);
    await s1.read((await s1.lstat('fn/hello.lua'))!);
    assert.deepEqual(counting.runs().sort(), ['cat-file', 'check-ref-format', 'fetch', 'init', 'ls-remote'].sort());

    // A new commit: ls-remote and fetch; the cat-file process is still running.
    const before = counting.runs().length;
    const sha2 = commit(repo, { 'fn/hello.lua': 'return 2\n' });
    const h2 = await src.head(ref, { maxAgeMs: 0 });
    assert.equal(h2, sha2);
    const s2 = await src.snapshot(ref, h2);
    assert.equal((await s2.read((await s2.lstat('fn/hello.lua'))!)).toString(), 'return 2\n');
    assert.deepEqual(counting.runs().slice(before), ['ls-remote', 'fetch']);

    // Head unmoved: ls-remote only; within the head cache: nothing.
    const again = counting.runs().length;
    const s3 = await src.snapshot(ref, await src.head(ref, { maxAgeMs: 0 }));
    await s3.readdir('');
    assert.deepEqual(counting.runs().slice(again), ['ls-remote']);
    await src.snapshot(ref, await src.head(ref, { maxAgeMs: 60_000 }));
    assert.deepEqual(counting.runs().slice(again), ['ls-remote']);
    assert.equal(src.stats.gc, 0, 'no gc --auto for a clone with few packs');
  } finally {
    await src.close();
  }
});

test('a commit not on the branch is GIT_ERROR naming the branch tip, with the tip read without rev-parse', async () => {
  const repo = makeRepo({ 'a.txt': 'a' });
  const tip = git(repo, ['rev-parse', 'HEAD']);
  const counting = countingGit();
  const src = source({ git: counting.git });
  try {
    const missing = 'deadbeef'.repeat(5);
    await rejectsWith(src.snapshot({ repoURL: `file://${repo}`, branch: 'main' }, missing), 'GIT_ERROR', new RegExp(`${missing}[^]*'main'[^]*${tip}`));
    assert.ok(!counting.runs().includes('rev-parse'));
  } finally {
    await src.close();
  }
});

/** Writes a tree object holding `entries` (raw, unchecked) and commits it on `main` of `repo`. */
function handMadeCommit(repo: string, entries: { mode: string; name: string; id: string }[]): string {
  const parts = entries.map((e) => Buffer.concat([Buffer.from(`${e.mode} ${e.name}\0`, 'utf8'), Buffer.from(e.id, 'hex')]));
  const tree = git(repo, ['hash-object', '-t', 'tree', '--literally', '-w', '--stdin'], Buffer.concat(parts));
  const sha = git(repo, ['commit-tree', tree, '-m', 'hand-made']);
  git(repo, ['update-ref', 'refs/heads/main', sha]);
  return sha;
}

test('tree entries whose names git fsck refuses (.., .git, a slash) are PATH_ESCAPE', async () => {
  const repo = makeRepo({ 'a.txt': 'a' });
  const blob = git(repo, ['hash-object', '-w', '--stdin'], 'evil\n');
  const src = source();
  try {
    for (const name of ['..', '.git', '.GIT', 'a/b', '.git.', 'git~1']) {
      const sha = handMadeCommit(repo, [{ mode: '100644', name: 'ok.txt', id: blob }, { mode: '100644', name, id: blob }]);
      const snap = await src.snapshot({ repoURL: `file://${repo}`, branch: 'main' }, sha);
      await rejectsWith(snap.readdir(''), 'PATH_ESCAPE', /git refuses such trees/);
    }
    // A subfolder's bad entry is found when the folder is read; the rest of the tree reads fine.
    const inner = git(repo, ['hash-object', '-t', 'tree', '--literally', '-w', '--stdin'], Buffer.concat([Buffer.from('100644 ..\0'), Buffer.from(blob, 'hex')]));
    const sha = handMadeCommit(repo, [{ mode: '100644', name: 'ok.txt', id: blob }, { mode: '40000', name: 'sub', id: inner }]);
    const snap = await src.snapshot({ repoURL: `file://${repo}`, branch: 'main' }, sha);
    assert.deepEqual((await snap.readdir('')).map((e) => e.name), ['ok.txt', 'sub']);
    await rejectsWith(snap.readdir('sub'), 'PATH_ESCAPE', /sub\/\.\./);
    await rejectsWith(snap.lstat('../x'), 'PATH_ESCAPE');
  } finally {
    await src.close();
  }
  for (const ok of ['a', '.gitignore', '.github', 'git', '..a', 'a..']) assert.equal(badEntryName(ok), null, ok);
  for (const bad of ['', '.', '..', '.git', '.Git', 'a/b', 'a\\b', '.git ', '.g\u200cit']) assert.notEqual(badEntryName(bad), null, bad);
});

test('commit info: author, times and the message without control characters, at most 2 KiB', () => {
  const body = Buffer.from([
    'tree ' + 'a'.repeat(40),
    'author Ann \u001b[31mX <ann@example.com> 1700000000 +0200',
    'committer Bob <bob@example.com> 1700000100 -0100',
    '',
    `fix: the \u0007bell\r\n\r\n${'é'.repeat(2000)}`,
  ].join('\n'));
  const { tree, info } = parseCommit(body);
  assert.equal(tree, 'a'.repeat(40));
  assert.equal(info.author, 'Ann [31mX <ann@example.com>');
  assert.equal(info.time, new Date(1700000000 * 1000).toISOString());
  assert.equal(info.committedAt, new Date(1700000100 * 1000).toISOString());
  assert.ok(info.message.startsWith('fix: the bell\n\n'));
  assert.ok(Buffer.byteLength(info.message) <= 2048);
  assert.ok(!info.message.includes('\ufffd'), 'a character is never cut in two');
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(info.message + info.author, /[\u0000-\u0009\u000b-\u001f\u007f]/);
});

test('the cat-file process: killed under pipelined requests they are retried on a new one; a stuck one is stopped at its time limit', async () => {
  const repo = makeRepo(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f/${i}.txt`, `file ${i}\n`])));
  const gitDir = join(repo, '.git');
  const ids = git(repo, ['ls-tree', '-r', '--format=%(objectname)', 'HEAD']).split('\n');
  const reader = new BatchReader({ git: 'git', repoDir: gitDir, env: {}, allowFile: false, timeoutMs: 60_000 });
  try {
    assert.equal((await reader.info(ids[0] as string))?.type, 'blob');
    const pid = reader.pid;
    assert.ok(pid);
    const all = Promise.all(ids.map((id) => reader.contents(id)));
    process.kill(pid, 'SIGKILL');
    const got = await all;
    assert.deepEqual(got.map((g) => g?.data.toString()).sort(), Array.from({ length: 50 }, (_, i) => `file ${i}\n`).sort());
    assert.equal(reader.starts, 2);
    assert.notEqual(reader.pid, pid);
    assert.equal(await reader.info('f'.repeat(40)), null, 'a missing object is null');
    await rejectsWith(reader.contents(ids[0] as string, { maxBytes: 3 }), 'FILE_TOO_LARGE', /over the limit of 3/);
  } finally {
    reader.close();
  }
  // A process that never answers (SIGSTOP) is killed at the time limit; the next request gets a new one.
  const slow = new BatchReader({ git: 'git', repoDir: gitDir, env: {}, allowFile: false, timeoutMs: 1500 });
  try {
    await slow.info(ids[0] as string);
    process.kill(slow.pid as number, 'SIGSTOP');
    await rejectsWith(slow.info(ids[1] as string), 'GIT_TIMEOUT', /1500 ms/);
    assert.equal((await slow.info(ids[1] as string))?.type, 'blob');
  } finally {
    slow.close();
  }
});

test('at most maxReaders cat-file processes; the least recently used is closed; close() ends them all', async () => {
  const src = source({ maxReaders: 2 });
  const refs = [0, 1, 2].map((i) => ({ repoURL: `file://${makeRepo({ [`r${i}.txt`]: `${i}` })}`, branch: 'main' }));
  try {
    for (const ref of refs) await (await src.snapshot(ref)).readdir('');
    assert.equal(src.readers.size, 2);
    assert.equal(src.readers.peek(src.repoDir(refs[0]!.repoURL)), undefined, 'the first clone\'s reader was closed');
    const s = await src.snapshot(refs[0]!);
    assert.deepEqual((await s.readdir('')).map((e) => e.name), ['r0.txt'], 'and starts again when needed');
  } finally {
    await src.close();
  }
  assert.equal(src.readers.size, 0);
});

test('a clone removed from under a running reader is made again and read through a new reader', async () => {
  const repo = makeRepo({ 'a.txt': 'one' });
  const src = source();
  const ref = { repoURL: `file://${repo}`, branch: 'main' };
  try {
    const one = await src.snapshot(ref);
    assert.equal((await one.read((await one.lstat('a.txt'))!)).toString(), 'one');
    rmSync(src.repoDir(ref.repoURL), { recursive: true, force: true });
    const sha = commit(repo, { 'a.txt': 'two' });
    const two = await src.snapshot(ref, sha);
    assert.equal((await two.read((await two.lstat('a.txt'))!)).toString(), 'two');
  } finally {
    await src.close();
  }
});
