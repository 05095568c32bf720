// The git source with credentials, against real file:// repositories (the transport ignores them):
// clones, readers and head answers are kept apart per credential, the poll shares a check only
// between namespaces with the same credential, the run's credential files are gone afterwards; and
// git's stderr is classified into GIT_AUTH_FAILED / HOST_KEY_CHANGED without losing other errors.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ZvError, isZvError } from '../../errors/registry.js';
import { TestRepo } from '../../../test/support/repo.js';
import { openSqliteStore } from '../../store/sqlite/store.js';
import { silentLogger } from '../../telemetry/log.js';
import { Poller } from '../../reconciler/poller.js';
import { GitSource } from './git-source.js';
import { GitAuthFiles, classifyAuthError, type GitAuth } from './auth.js';

describe('git source with credentials', () => {
  let repo: TestRepo;
  let data = '';
  const resolved: string[] = [];
  const resolver = async ({ namespace }: { repoURL: string; namespace: string }): Promise<GitAuth | null> => {
    resolved.push(namespace);
    if (namespace === 'a') return { id: 'credential-1', name: 'c1', namespace: 'a', type: 'https', username: 'u', password: 'pw-secret' };
    if (namespace === 'a2') return { id: 'credential-1', name: 'c1', namespace: '*', type: 'https', username: 'u', password: 'pw-secret' };
    return null;
  };

  before(async () => {
    repo = await TestRepo.create({ 'zerverless.yaml': 'x: 1\n' });
    data = await mkdtemp(join(tmpdir(), 'zv-git-auth-'));
  });
  after(async () => {
    await repo.remove();
    await rm(data, { recursive: true, force: true });
  });

  it('keeps clones, readers and head answers apart per credential', async () => {
    const src = new GitSource({ dataDir: join(data, 's1'), allowFileRepos: true, credentials: resolver, headCacheMs: 60_000 });
    const withCred = { repoURL: repo.url, branch: 'main', namespace: 'a' };
    const without = { repoURL: repo.url, branch: 'main', namespace: 'b' };
    assert.equal(await src.head(withCred), repo.head());
    assert.equal(await src.head(without), repo.head());
    assert.equal(src.stats.lsRemote, 2, 'the cached answer of one credential is not given to another');
    await src.head({ ...withCred, namespace: 'a2' });
    assert.equal(src.stats.lsRemote, 2, 'the same credential (a * one used by another namespace) shares the answer');
    const a = await src.snapshot(withCred, repo.head());
    const b = await src.snapshot(without, repo.head());
    assert.equal(a.revision, b.revision);
    assert.equal(src.stats.fetch, 2, 'each credential fetches into its own clone');
    assert.ok(src.readers.peek(src.repoDir(repo.url, 'credential-1')) && src.readers.peek(src.repoDir(repo.url)), 'and reads it through its own reader');
    assert.ok(existsSync(join(src.repoDir(repo.url, 'credential-1'), 'HEAD')));
    assert.ok(existsSync(join(src.repoDir(repo.url), 'HEAD')));
    assert.equal(basename(src.repoDir(repo.url)), `${createHash('sha256').update(repo.url).digest('hex').slice(0, 32)}.git`, 'without a credential the clone keeps its old name');
    assert.equal(await src.accessKey(withCred), 'credential-1');
    assert.equal(await src.accessKey(without), '');
    assert.equal(await src.accessKey({ repoURL: repo.url, branch: 'main' }), '', 'no namespace, no credential');
    // the run's credential files are gone; the askpass script is private
    assert.deepEqual(await readdir(join(data, 's1', 'git', 'tmp')), []);
    assert.equal((await stat(join(data, 's1', 'git', 'askpass'))).mode & 0o777, 0o700);
    assert.equal((await stat(join(data, 's1', 'git', 'tmp'))).mode & 0o777, 0o700);
  });

  it('the poll shares one check between namespaces only when their credential is the same', async () => {
    const dir = join(data, 's2');
    const src = new GitSource({ dataDir: dir, allowFileRepos: true, credentials: resolver, headCacheMs: 0 });
    await mkdir(dir, { recursive: true });
    const store = openSqliteStore(join(dir, 'state.db'));
    try {
      for (const ns of ['a', 'a2', 'b', 'c']) await store.createApp({ name: 'app', namespace: ns, source: { repoURL: repo.url, branch: 'main', path: '' } });
      const seen = new Map<string, number>();
      let ticks = 0;
      const poller = new Poller({
        store, source: src, intervalMs: 60_000, log: silentLogger,
        onHead: (app) => {
          seen.set(app.namespace, (seen.get(app.namespace) ?? 0) + 1);
          ticks++;
        },
      });
      await poller.start();
      poller.watch(repo.url, 'main', 0);
      const deadline = Date.now() + 60_000;
      while (ticks < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await poller.stop();
      assert.deepEqual(Object.fromEntries(seen), { a: 1, a2: 1, b: 1, c: 1 });
      assert.equal(src.stats.lsRemote, 2, 'one check for credential-1 (a, a2), one without (b, c)');
    } finally {
      await store.close();
    }
  });

  it('the askpass script answers only the prompts for the credential\'s own server', async () => {
    const session = await new GitAuthFiles(join(data, 's3', 'git'))
      .open({ id: 'x', name: 'n', namespace: 'ns', type: 'https', username: 'alice', password: 'pw-1' }, 'https://git.example.com:8443/acme/app.git');
    try {
      const ask = (prompt: string): string | null => {
        try {
          return execFileSync(session.env.GIT_ASKPASS as string, [prompt], { env: { ...process.env, ...session.env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
        } catch {
          return null;
        }
      };
      assert.equal(ask("Username for 'https://git.example.com:8443': "), 'alice');
      assert.equal(ask("Password for 'https://alice@git.example.com:8443': "), 'pw-1');
      assert.equal(ask("Username for 'https://evil.example.com': "), null);
      assert.equal(ask("Password for 'https://alice@evil.example.com': "), null);
      assert.equal(ask("Password for 'https://x@git.example.com:8443@evil.example.com': "), null);
      assert.equal(ask("Password for 'https://alice@git.example.com': "), null, 'another port is another server');
      assert.ok(!JSON.stringify(session.env).includes('pw-1'), 'the environment names files, not the secret');
    } finally {
      await session.close();
    }
    assert.deepEqual(await readdir(join(data, 's3', 'git', 'tmp')), []);
  });

  it('classifies git failures; other errors pass unchanged; the message names the credential, not the secret', () => {
    const ssh: GitAuth = { id: 'credential-2', name: 'deploy', namespace: 'team', type: 'ssh', privateKey: 'KEY', knownHosts: null };
    const https: GitAuth = { id: 'credential-3', name: 'tok', namespace: 'team', type: 'https', username: 'u', password: 'pw-secret' };
    const git = (m: string): ZvError => new ZvError('GIT_ERROR', `git ls-remote x failed: ${m}`);
    const url = 'ssh://git@h/r.git';
    const code = (e: unknown): string => (e as ZvError).code;
    assert.equal(code(classifyAuthError(git('git@h: Permission denied (publickey).'), ssh, url)), 'GIT_AUTH_FAILED');
    assert.equal(code(classifyAuthError(git('Host key verification failed.'), ssh, url)), 'HOST_KEY_CHANGED');
    assert.equal(code(classifyAuthError(git('No ED25519 host key is known for [h]:22 and you have requested strict checking.\nHost key verification failed.'), ssh, url)), 'HOST_KEY_CHANGED');
    assert.equal(code(classifyAuthError(git('WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!'), null, url)), 'HOST_KEY_CHANGED');
    assert.equal(code(classifyAuthError(git('Host key verification failed.'), null, url)), 'GIT_AUTH_FAILED', 'no credential: the fix is to add one');
    const refused = classifyAuthError(git("fatal: Authentication failed for 'https://h/r.git/'"), https, 'https://h/r.git') as ZvError;
    assert.equal(refused.code, 'GIT_AUTH_FAILED');
    assert.match(refused.message, /refused credential 'tok' \(namespace 'team'\)/);
    assert.ok(!refused.message.includes('pw-secret'));
    assert.equal(code(classifyAuthError(git("fatal: could not read Username for 'https://h': terminal prompts disabled"), null, 'https://h/r.git')), 'GIT_AUTH_FAILED');
    assert.match((classifyAuthError(git('server certificate verification failed. CAfile: none'), https, 'https://h/r.git') as ZvError).message, /caCert/);
    const timeout = new ZvError('GIT_TIMEOUT', 'took too long');
    assert.equal(classifyAuthError(timeout, ssh, url), timeout);
    assert.ok(isZvError(classifyAuthError(git('repository not found'), ssh, url), 'GIT_ERROR'));
  });
});
