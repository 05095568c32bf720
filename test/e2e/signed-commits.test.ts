// Signed commits end to end (PRODUCT.md §10): applications registered with source.verify deploy
// only commits signed by their keys; anything else leaves the last good revision serving.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';

function manifest(version: string, namespace: string): string {
  return `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
  namespace: ${namespace}
spec:
  functions:
    - path: /version
      runtime: lua
      code: |
        function handle(req)
          return {status=200, body="${version}"}
        end
`;
}

interface Signer { args: string[]; env: NodeJS.ProcessEnv }

/** Writes the manifest of `version` and commits it, signed (or not) the way `signer` says. */
async function commitVersion(repo: TestRepo, namespace: string, version: string, signer: Signer | null): Promise<string> {
  await writeFile(join(repo.dir, 'zerverless.yaml'), manifest(version, namespace));
  repo.git('add', '-A');
  const args = signer ? [...signer.args, 'commit', '-q', '-S', '-m', version] : ['-c', 'commit.gpgsign=false', 'commit', '-q', '-m', version];
  execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], {
    cwd: repo.dir, env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', ...signer?.env }, stdio: 'pipe',
  });
  return repo.head();
}

describe('signed commits', () => {
  let h: Harness;
  let keys: string;
  const gpgHomes: string[] = [];

  const sshKey = async (name: string): Promise<{ signer: Signer; pub: string; fpr: string }> => {
    const file = join(keys, name);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
    const pub = (await readFile(`${file}.pub`, 'utf8')).trim();
    const fpr = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1] ?? '';
    return { signer: { args: ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${file}`], env: {} }, pub, fpr };
  };

  const gpgKey = async (name: string): Promise<{ signer: Signer; pub: string; fpr: string }> => {
    const home = await mkdtemp(join(tmpdir(), 'zv-gpg-'));
    gpgHomes.push(home);
    const env = { ...process.env, GNUPGHOME: home };
    execFileSync('gpg', ['--batch', '--passphrase', '', '--pinentry-mode', 'loopback', '--quick-gen-key', `${name} <${name}@example.com>`, 'ed25519', 'sign', 'never'], { env, stdio: 'pipe' });
    const fpr = execFileSync('gpg', ['--batch', '--with-colons', '--list-keys'], { env, encoding: 'utf8' }).split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9] ?? '';
    const pub = execFileSync('gpg', ['--batch', '--armor', '--export', fpr], { env, encoding: 'utf8' });
    return { signer: { args: ['-c', 'gpg.format=openpgp', '-c', `user.signingkey=${fpr}`], env: { GNUPGHOME: home } }, pub, fpr };
  };

  before(async () => {
    h = await startHarness();
    keys = await mkdtemp(join(tmpdir(), 'zv-keys-'));
  });
  after(async () => {
    await h.close();
    await rm(keys, { recursive: true, force: true });
    for (const home of gpgHomes) {
      // Signing started a gpg-agent for this home: stop exactly that one.
      try { execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home }, stdio: 'pipe' }); } catch { /* none */ }
      await rm(home, { recursive: true, force: true });
    }
  });

  const body = async (path: string): Promise<string> => {
    const res = await h.get(path);
    return `${res.status} ${await res.text()}`;
  };

  it('ssh: signed commits deploy, an unsigned one is refused and the last good revision keeps serving', async () => {
    const trusted = await sshKey('trusted');
    const other = await sshKey('other');
    const repo = await TestRepo.create();
    try {
      const v1 = await commitVersion(repo, 'signed', 'v1', trusted.signer);
      let st = await h.register('app', 'signed', repo.url, { verify: { type: 'ssh', keys: [trusted.pub] } });
      assert.equal(st.status, 'synced', st.message);
      assert.equal(st.source.commit, v1);
      assert.deepEqual(st.source.verify, { type: 'ssh', keys: [trusted.fpr] }, 'the status shows fingerprints, not keys');
      assert.equal(await body('/signed/version'), '200 v1');

      const unsigned = await commitVersion(repo, 'signed', 'v2', null);
      st = await h.sync('app', 'signed');
      assert.equal(st.status, 'error');
      assert.match(st.message, /^COMMIT_NOT_TRUSTED: commit [0-9a-f]{12} is not signed/);
      assert.ok(st.message.includes(trusted.fpr), st.message);
      assert.equal(st.source.commit, v1, 'the served commit did not change');
      assert.equal(await body('/signed/version'), '200 v1');
      const syncs = await h.api<{ syncs: { commit: string | null; result: string; message: string }[] }>('GET', '/app/syncs?namespace=signed');
      assert.equal(syncs.body.syncs[0]?.commit, unsigned);
      assert.equal(syncs.body.syncs[0]?.result, 'error');

      await commitVersion(repo, 'signed', 'v3', other.signer);
      st = await h.sync('app', 'signed');
      assert.equal(st.status, 'error');
      assert.match(st.message, /^COMMIT_NOT_TRUSTED: commit [0-9a-f]{12} is signed by ssh key SHA256:/);
      assert.ok(st.message.includes(other.fpr), st.message);
      assert.ok(!st.message.includes(other.pub.split(' ')[1] as string), 'no key material in the message');
      assert.equal(await body('/signed/version'), '200 v1');

      const v4 = await commitVersion(repo, 'signed', 'v4', trusted.signer);
      st = await h.sync('app', 'signed');
      assert.equal(st.status, 'synced', st.message);
      assert.equal(st.source.commit, v4);
      assert.equal(await body('/signed/version'), '200 v4');
    } finally {
      await h.api('DELETE', '/app?namespace=signed');
      await repo.remove();
    }
  });

  it('gpg: a commit by the trusted key deploys, one by another key is refused naming its fingerprint', async () => {
    const trusted = await gpgKey('trusted');
    const other = await gpgKey('other');
    const repo = await TestRepo.create();
    try {
      const v1 = await commitVersion(repo, 'gpgns', 'v1', trusted.signer);
      let st = await h.register('app', 'gpgns', repo.url, { verify: { type: 'gpg', keys: [trusted.pub] } });
      assert.equal(st.status, 'synced', st.message);
      assert.equal(st.source.commit, v1);
      assert.deepEqual(st.source.verify, { type: 'gpg', keys: [trusted.fpr] });

      await commitVersion(repo, 'gpgns', 'v2', other.signer);
      st = await h.sync('app', 'gpgns');
      assert.equal(st.status, 'error');
      assert.match(st.message, /^COMMIT_NOT_TRUSTED: commit [0-9a-f]{12} is signed by gpg key /);
      assert.ok(st.message.includes(other.fpr), st.message);
      assert.equal(await body('/gpgns/version'), '200 v1');
    } finally {
      await h.api('DELETE', '/app?namespace=gpgns');
      await repo.remove();
    }
  });

  it('refuses a verify policy whose keys do not parse, naming the field', async () => {
    const trusted = await sshKey('edge');
    const post = (verify: unknown): Promise<{ status: number; body: { error: { code: string; message: string } } }> =>
      h.api('POST', '/', { name: 'bad', namespace: 'edge', source: { repoURL: 'https://example.com/r.git', verify } });
    let r = await post({ type: 'ssh', keys: [trusted.pub, 'ssh-ed25519 AAAAnotakey'] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'VALIDATION_FAILED');
    assert.match(r.body.error.message, /^source\.verify\.keys\[1\]: /);
    r = await post({ type: 'x509', keys: [trusted.pub] });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /source\.verify\.type/);
    r = await post({ type: 'ssh', keys: [] });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /source\.verify\.keys/);
    r = await post({ type: 'gpg', keys: ['-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----'] });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /^source\.verify\.keys\[0\]: gpg finds no public key/);
    assert.equal((await h.api('GET', '/bad?namespace=edge')).status, 404, 'nothing was registered');
  });
});
