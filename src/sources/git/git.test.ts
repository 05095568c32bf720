// Tests of GitSource against real git repositories in temp dirs (file:// URLs and local paths),
// plus silent TCP servers standing in for remotes that never answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import diagnostics_channel from 'node:diagnostics_channel';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isZvError, type ErrorCode } from '../../errors/registry.js';
import { CHANNELS } from '../../telemetry/events.js';
import { GitSource, type GitSourceOptions } from './git-source.js';
import { treePaths } from '../contract.js';

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

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isZvError(e, code), `expected ${code}, got ${e instanceof Error ? `${(e as { code?: string }).code}: ${e.message}` : String(e)}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** Asserts that `dir` holds exactly the tree of `sha` in repository `repo`: content, modes, symlinks. */
function assertTreeEquals(dir: string, repo: string, sha: string): void {
  const expected = new Set<string>();
  for (const line of git(repo, 'ls-tree', '-r', '--full-tree', sha).split('\n')) {
    const m = /^(\d+) blob ([0-9a-f]+)\t(.+)$/.exec(line);
    assert.ok(m, `unexpected ls-tree line ${line}`);
    const [, mode, blob = '', path = ''] = m;
    expected.add(path);
    const full = join(dir, path);
    const st = lstatSync(full);
    const content = execFileSync('git', ['cat-file', 'blob', blob], { cwd: repo });
    if (mode === '120000') {
      assert.ok(st.isSymbolicLink(), `${path} should be a symlink`);
      assert.equal(readlinkSync(full), content.toString('utf8'));
    } else {
      assert.ok(st.isFile(), `${path} should be a file`);
      assert.deepEqual(readFileSync(full), content, `${path} content`);
      assert.equal((st.mode & 0o111) !== 0, mode === '100755', `${path} executable bit`);
    }
  }
  assert.deepEqual(treePaths(dir), [...expected].sort());
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

test('an artifact holds exactly the commit: files, folders, symlinks, executable bit', async () => {
  const repo = makeRepo(SITE);
  const src = source();
  const sha = git(repo, 'rev-parse', 'main');
  const a = await src.artifact({ repoURL: `file://${repo}`, branch: 'main' });
  assert.deepEqual({ ...a, dir: '' }, { repoURL: `file://${repo}`, branch: 'main', revision: sha, dir: '' });
  assert.match(a.dir, new RegExp(`/git/artifacts/[0-9a-f]{32}-${sha}$`), 'artifacts are keyed by repository and commit');
  assertTreeEquals(a.dir, repo, sha);
  assert.equal(readlinkSync(join(a.dir, 'static/escape')), '../../../etc/passwd', 'an escaping symlink stays a symlink');
  assert.ok(!readdirSync(dirname(a.dir)).some((n) => n.startsWith('.tmp-')), 'no temp dirs left');
});

test('fetches only when the commit is missing from the clone', async () => {
  const repo = makeRepo(SITE);
  const src = source();
  const url = `file://${repo}`;
  const ref = { repoURL: url, branch: 'main' };
  const fetches = (): Record<string, unknown>[] => pulls.filter((p) => p.repo === url);

  const one = await src.artifact(ref);
  assert.equal(fetches().length, 1);
  const ev = fetches()[0];
  assert.equal(ev?.branch, 'main');
  assert.equal(ev?.commit, one.revision);
  assert.equal(typeof ev?.duration, 'number');

  await src.artifact(ref, one.revision);
  await src.artifact(ref);
  assert.equal(fetches().length, 1, 'same commit: no fetch');

  await src.prune(new Set());
  assert.ok(!existsSync(one.dir), 'pruned');
  const again = await src.artifact(ref, one.revision);
  assert.equal(fetches().length, 1, 'commit already in the clone: no fetch');
  assertTreeEquals(again.dir, repo, one.revision);

  const sha2 = commit(repo, { 'static/index.html': '<h1>v2</h1>\n' });
  const two = await src.artifact(ref, sha2);
  assert.equal(fetches().length, 2);
  assert.equal(fetches()[1]?.commit, sha2);
  assertTreeEquals(two.dir, repo, sha2);
  assert.equal(src.stats.fetch, 2);
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
  const [a, b] = await Promise.all([src.artifact(ref, sha), src.artifact(ref, sha)]);
  assert.equal(a.dir, b.dir);
  assert.equal(src.stats.fetch, 1);
  assert.equal(src.stats.artifactsCreated, 1);
});

test('two branches of one repository share one bare clone', async () => {
  const repo = makeRepo(SITE);
  git(repo, 'checkout', '--quiet', '-b', 'dev');
  const devSha = commit(repo, { 'dev.txt': 'dev\n' });
  const src = source();
  const url = `file://${repo}`;
  const main = await src.artifact({ repoURL: url, branch: 'main' });
  const dev = await src.artifact({ repoURL: url, branch: 'dev' });
  assert.equal(dev.revision, devSha);
  assert.notEqual(main.revision, dev.revision);
  assertTreeEquals(dev.dir, repo, devSha);
  const repos = readdirSync(dirname(src.repoDir(url)));
  assert.deepEqual(repos, [src.repoDir(url).split('/').pop()]);
  assert.equal(src.stats.fetch, 2);
});

test('file repositories and dangerous URLs are refused before git runs', async () => {
  const repo = makeRepo(SITE);
  const src = source({ allowFileRepos: false });
  await rejectsWith(src.head({ repoURL: `file://${repo}`, branch: 'main' }), 'INVALID_REPO_URL', /--allow-file-repos/);
  await rejectsWith(src.artifact({ repoURL: repo, branch: 'main' }), 'INVALID_REPO_URL', /--allow-file-repos/);
  for (const url of ['-oProxyCommand=x', 'ext::sh -c touch% /tmp/pwned', 'http://x', 'fd::17', '/etc']) {
    await rejectsWith(src.head({ repoURL: url, branch: 'main' }), 'INVALID_REPO_URL');
    await rejectsWith(src.artifact({ repoURL: url, branch: 'main' }), 'INVALID_REPO_URL');
  }
  assert.equal(src.stats.lsRemote + src.stats.fetch, 0);
});

test('invalid branch names and revisions are refused', async () => {
  const repo = makeRepo(SITE);
  const src = source();
  for (const branch of ['-x', '--upload-pack=evil', 'a..b', 'HEAD', 'a b']) {
    await rejectsWith(src.head({ repoURL: repo, branch }), 'VALIDATION_FAILED');
  }
  await rejectsWith(src.artifact({ repoURL: repo, branch: 'main' }, 'main'), 'GIT_ERROR', /not a full commit SHA/);
  await rejectsWith(src.artifact({ repoURL: repo, branch: 'main' }, '--output=/tmp/x'), 'GIT_ERROR', /not a full commit SHA/);
});

test('a repository path that does not exist is GIT_ERROR, not a crash', async () => {
  const src = source();
  const gone = join(base, 'does-not-exist');
  await rejectsWith(src.head({ repoURL: gone, branch: 'main' }), 'GIT_ERROR', /does not appear to be a git repository|not found|No such/i);
  await rejectsWith(src.artifact({ repoURL: `file://${gone}`, branch: 'main' }, 'a'.repeat(40)), 'GIT_ERROR');
});

test('prune drops artifacts not kept and stale temp dirs', async () => {
  const repo = makeRepo(SITE);
  const src = source();
  const ref = { repoURL: repo, branch: 'main' };
  const one = await src.artifact(ref);
  const two = await src.artifact(ref, commit(repo, { 'b.txt': 'b' }));
  const stale = join(dirname(one.dir), '.tmp-leftover-from-a-crash');
  mkdirSync(stale);
  await src.prune(new Set([two.revision.toUpperCase()]));
  assert.ok(!existsSync(one.dir));
  assert.ok(!existsSync(stale));
  assertTreeEquals(two.dir, repo, two.revision);
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
      await rejectsWith(src.artifact({ repoURL: url, branch: 'main' }, 'a'.repeat(40)), 'GIT_TIMEOUT');
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
  const art = await strict.artifact({ repoURL: url, branch: 'main' });
  assert.ok(art.revision);
  const other = makeRepo({ ...SITE, 'other.txt': 'c' });
  await assert.rejects(strict.head({ repoURL: `file://${other}`, branch: 'main' }), (e: unknown) => isZvError(e, 'INVALID_REPO_URL'));
});
