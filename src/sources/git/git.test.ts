// Tests of GitSource against real git repositories in temp dirs (file:// URLs and local paths),
// plus silent TCP servers standing in for remotes that never answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import diagnostics_channel from 'node:diagnostics_channel';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isZvError } from '../../errors/registry.js';
import { rejectsWith } from '../contract.js';
import { CHANNELS } from '../../telemetry/events.js';
import { GitSource, type GitSourceOptions } from './git-source.js';
import type { CommitSnapshot } from '../types.js';
import type { SnapshotEntry } from '../snapshot.js';

let base = '';
let counter = 0;
const pulls: Record<string, unknown>[] = [];
const onPull = (m: unknown): void => { pulls.push(m as Record<string, unknown>); };

before(() => {
  base = mkdtempSync(join(tmpdir(), 'zv-git-test-'));
  diagnostics_channel.subscribe(CHANNELS.gitPull, onPull);
});
after(() => {
  diagnostics_channel.unsubscribe(CHANNELS.gitPull, onPull);
  rmSync(base, { recursive: true, force: true });
});

function fresh(name: string): string {
  const dir = join(base, `${name}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'commit.gpgsign=false', ...args], {
    cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' },
  }).trim();
}

type Files = Record<string, string | { link: string } | { exec: string }>;

/** A non-bare repository with `files` committed on `main`; returns its path. */
function makeRepo(files: Files): string {
  const dir = fresh('remote');
  git(dir, 'init', '--quiet', '--initial-branch=main');
  commit(dir, files);
  return dir;
}

function commit(dir: string, files: Files, message = 'change'): string {
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    mkdirSync(dirname(full), { recursive: true });
    rmSync(full, { force: true });
    if (typeof content === 'string') writeFileSync(full, content);
    else if ('link' in content) symlinkSync(content.link, full);
    else { writeFileSync(full, content.exec); chmodSync(full, 0o755); }
  }
  git(dir, 'add', '-A');
  git(dir, 'commit', '--quiet', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}

function source(opts: Partial<GitSourceOptions> = {}): GitSource {
  return new GitSource({ dataDir: fresh('data'), allowFileRepos: true, headCacheMs: 0, ...opts });
}

/** Asserts that `snap` holds exactly the tree of `sha` in repository `repo`: ids, kinds, contents, sizes. */
async function assertSnapshotEquals(snap: CommitSnapshot, repo: string, sha: string): Promise<void> {
  const expected = new Map<string, { mode: string; id: string }>();
  for (const line of git(repo, 'ls-tree', '-r', '--full-tree', sha).split('\n')) {
    const m = /^(\d+) blob ([0-9a-f]+)\t(.+)$/.exec(line);
    assert.ok(m, `unexpected ls-tree line ${line}`);
    expected.set(m[3] as string, { mode: m[1] as string, id: m[2] as string });
  }
  const actual = new Map<string, SnapshotEntry>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await snap.readdir(dir)) {
      if (e.kind === 'dir') await walk(e.path);
      else actual.set(e.path, e);
    }
  };
  await walk('');
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [path, { mode, id }] of expected) {
    const e = actual.get(path) as SnapshotEntry;
    assert.equal(e.id, id, `${path} id`);
    assert.equal(e.kind, mode === '120000' ? 'symlink' : mode === '100755' ? 'exec' : 'file', `${path} kind`);
    const content = execFileSync('git', ['cat-file', 'blob', id], { cwd: repo });
    assert.deepEqual(await snap.read(e), content, `${path} content`);
    assert.equal(e.size, content.length, `${path} size`);
  }
}

const SITE: Files = {
  'zerverless.yaml': 'apiVersion: zerverless.io/v1\n',
  'handlers/hello.ts': 'export function handle() { return "hi"; }\n',
  'static/index.html': '<h1>v1</h1>\n',
  'static/css/deep/site.css': 'body{}\n',
  'static/home.html': { link: 'index.html' },
  'static/escape': { link: '../../../etc/passwd' },
  'bin/run.sh': { exec: '#!/bin/sh\necho run\n' },
};

test('head of a file:// repo and of a plain local path', async () => {
  const repo = makeRepo(SITE);
  const want = git(repo, 'rev-parse', 'main');
  const src = source();
  assert.equal(await src.head({ repoURL: `file://${repo}`, branch: 'main' }), want);
  assert.equal(await src.head({ repoURL: repo, branch: 'main' }), want);
  assert.match(want, /^[0-9a-f]{40}$/);
});

test('a snapshot holds exactly the commit: files, folders, symlinks, executable bit; nothing is checked out', async () => {
  const repo = makeRepo(SITE);
  const src = source();
  const sha = git(repo, 'rev-parse', 'main');
  const s = await src.snapshot({ repoURL: `file://${repo}`, branch: 'main' });
  assert.deepEqual([s.repoURL, s.branch, s.revision, s.commit], [`file://${repo}`, 'main', sha, sha]);
  await assertSnapshotEquals(s, repo, sha);
  const escape = await s.lstat('static/escape');
  assert.equal(escape?.kind, 'symlink');
  assert.equal((await s.read(escape!)).toString(), '../../../etc/passwd', 'an escaping symlink stays a symlink, as stored');
  assert.ok(!existsSync(join(src.repoDir(`file://${repo}`), '..', '..', 'artifacts')), 'no artifact folder');
  await src.close();
});

test('fetches only when the commit is missing from the clone', async () => {
  const repo = makeRepo(SITE);
  const src = source();
  const url = `file://${repo}`;
  const ref = { repoURL: url, branch: 'main' };
  const fetches = (): Record<string, unknown>[] => pulls.filter((p) => p.repo === url);

  const one = await src.snapshot(ref);
  assert.equal(fetches().length, 1);
  const ev = fetches()[0];
  assert.equal(ev?.branch, 'main');
  assert.equal(ev?.commit, one.revision);
  assert.equal(typeof ev?.duration, 'number');

  await src.snapshot(ref, one.revision);
  await src.snapshot(ref);
  assert.equal(fetches().length, 1, 'same commit: no fetch');

  const sha2 = commit(repo, { 'static/index.html': '<h1>v2</h1>\n' });
  const two = await src.snapshot(ref, sha2);
  assert.equal(fetches().length, 2);
  assert.equal(fetches()[1]?.commit, sha2);
  await assertSnapshotEquals(two, repo, sha2);
  assert.equal(src.stats.fetch, 2);
  await src.close();
});

test('concurrent calls share one ls-remote and one fetch', async () => {
  const repo = makeRepo(SITE);
  const src = source({ headCacheMs: 0 });
  const ref = { repoURL: `file://${repo}`, branch: 'main' };
  const [h1, h2, h3] = await Promise.all([src.head(ref), src.head(ref), src.head({ ...ref })]);
  assert.equal(h1, h2);
  assert.equal(h2, h3);
  assert.equal(src.stats.lsRemote, 1);

  const sha = git(repo, 'rev-parse', 'main');
  const [a, b] = await Promise.all([src.snapshot(ref, sha), src.snapshot(ref, sha)]);
  assert.equal(a.revision, b.revision);
  assert.equal(src.stats.fetch, 1);
  await src.close();
});

test('two branches of one repository share one bare clone', async () => {
  const repo = makeRepo(SITE);
  git(repo, 'checkout', '--quiet', '-b', 'dev');
  const devSha = commit(repo, { 'dev.txt': 'dev\n' });
  const src = source();
  const url = `file://${repo}`;
  const main = await src.snapshot({ repoURL: url, branch: 'main' });
  const dev = await src.snapshot({ repoURL: url, branch: 'dev' });
  assert.equal(dev.revision, devSha);
  assert.notEqual(main.revision, dev.revision);
  await assertSnapshotEquals(dev, repo, devSha);
  const repos = readdirSync(dirname(src.repoDir(url)));
  assert.deepEqual(repos, [src.repoDir(url).split('/').pop()]);
  assert.equal(src.stats.fetch, 2);
  await src.close();
});

test('file repositories and dangerous URLs are refused before git runs', async () => {
  const repo = makeRepo(SITE);
  const src = source({ allowFileRepos: false });
  await rejectsWith(src.head({ repoURL: `file://${repo}`, branch: 'main' }), 'INVALID_REPO_URL', /--allow-file-repos/);
  await rejectsWith(src.snapshot({ repoURL: repo, branch: 'main' }), 'INVALID_REPO_URL', /--allow-file-repos/);
  for (const url of ['-oProxyCommand=x', 'ext::sh -c touch% /tmp/pwned', 'http://x', 'fd::17', '/etc']) {
    await rejectsWith(src.head({ repoURL: url, branch: 'main' }), 'INVALID_REPO_URL');
    await rejectsWith(src.snapshot({ repoURL: url, branch: 'main' }), 'INVALID_REPO_URL');
  }
  assert.equal(src.stats.lsRemote + src.stats.fetch, 0);
});

test('invalid branch names and revisions are refused', async () => {
  const repo = makeRepo(SITE);
  const src = source();
  for (const branch of ['-x', '--upload-pack=evil', 'a..b', 'HEAD', 'a b']) {
    await rejectsWith(src.head({ repoURL: repo, branch }), 'VALIDATION_FAILED');
  }
  await rejectsWith(src.snapshot({ repoURL: repo, branch: 'main' }, 'main'), 'GIT_ERROR', /not a full commit SHA/);
  await rejectsWith(src.snapshot({ repoURL: repo, branch: 'main' }, '--output=/tmp/x'), 'GIT_ERROR', /not a full commit SHA/);
});

test('a repository path that does not exist is GIT_ERROR, not a crash', async () => {
  const src = source();
  const gone = join(base, 'does-not-exist');
  await rejectsWith(src.head({ repoURL: gone, branch: 'main' }), 'GIT_ERROR', /does not appear to be a git repository|not found|No such/i);
  await rejectsWith(src.snapshot({ repoURL: `file://${gone}`, branch: 'main' }, 'a'.repeat(40)), 'GIT_ERROR');
});

test('prune drops the artifact folders earlier versions left (keeping the revisions asked for, any case), stale temp dirs, and then the folder', async () => {
  const data = fresh('data');
  const src = new GitSource({ dataDir: data, allowFileRepos: true, headCacheMs: 0 });
  const dir = join(data, 'git', 'artifacts');
  const [one, two] = ['a'.repeat(40), 'b'.repeat(40)].map((sha) => join(dir, `${'0'.repeat(32)}-${sha}`));
  for (const d of [one, two]) {
    mkdirSync(join(d as string, 'static'), { recursive: true });
    writeFileSync(join(d as string, 'static', 'index.html'), 'old');
  }
  const stale = join(dir, '.tmp-leftover-from-a-crash');
  mkdirSync(stale);
  await src.prune(new Set(['B'.repeat(40)]));
  assert.ok(!existsSync(one as string));
  assert.ok(!existsSync(stale));
  assert.ok(existsSync(join(two as string, 'static', 'index.html')), 'a kept revision stays');
  await src.prune(new Set());
  assert.ok(!existsSync(dir), 'the empty artifacts folder is removed');
  await src.prune(new Set());
});

/** A TCP server that accepts connections and never says anything. */
async function silentServer(): Promise<{ server: Server; port: number; sockets: Socket[]; closed: Promise<void>[] }> {
  const sockets: Socket[] = [];
  const closed: Promise<void>[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    closed.push(new Promise((r) => s.on('close', () => r())));
    s.on('error', () => undefined);
    s.resume(); // read (and drop) whatever arrives, so that the peer closing is noticed
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  assert.ok(addr && typeof addr === 'object');
  return { server, port: addr.port, sockets, closed };
}

for (const scheme of ['ssh', 'https'] as const) {
  test(`a ${scheme} remote that never answers is killed at the time limit`, async () => {
    const silent = await silentServer();
    try {
      // The limit is short, yet long enough for a loaded machine to start git and connect.
      const src = source({ timeoutMs: 2000, allowFileRepos: false });
      const url = scheme === 'ssh' ? `ssh://git@127.0.0.1:${silent.port}/repo.git` : `https://127.0.0.1:${silent.port}/repo.git`;
      await rejectsWith(src.head({ repoURL: url, branch: 'main' }), 'GIT_TIMEOUT', /2000 ms/);
      await rejectsWith(src.snapshot({ repoURL: url, branch: 'main' }, 'a'.repeat(40)), 'GIT_TIMEOUT');
      assert.ok(silent.sockets.length >= 1, 'git did connect');
      // The whole process group was killed: the client side of every connection goes away.
      await Promise.race([
        Promise.all(silent.closed),
        new Promise((_, reject) => setTimeout(() => reject(new Error('connections still open')), 60_000).unref()),
      ]);
    } finally {
      for (const s of silent.sockets) s.destroy();
      await new Promise((r) => silent.server.close(r));
    }
  });
}

test('trusted URLs are accepted when file repositories are not', async () => {
  const repo = makeRepo(SITE);
  const url = `file://${repo}`;
  const strict = source({ allowFileRepos: false, trustedUrls: [url] });
  const snap = await strict.snapshot({ repoURL: url, branch: 'main' });
  assert.ok(snap.revision);
  await strict.close();
  const other = makeRepo({ ...SITE, 'other.txt': 'c' });
  await assert.rejects(strict.head({ repoURL: `file://${other}`, branch: 'main' }), (e: unknown) => isZvError(e, 'INVALID_REPO_URL'));
});
