// Signed commits against real git repositories: ssh keys made by ssh-keygen, gpg keys made by gpg
// in throwaway homes, commits signed by git itself, checked by verify.ts (and through GitSource).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZvError, type ZvError } from '../../errors/registry.js';
import type { CommitVerification } from '../../store/types.js';
import { runGit } from '../../git-cli/exec.js';
import { GitSource } from './git-source.js';
import { commitSignature, signatureKind, verifyCommit, type LocalGit } from './verify.js';
import { checkVerifyPolicy, parseSshPublicKey, pgpPrimaryFingerprints, summariseVerify } from './verify-policy.js';

let base = '';
let repo = '';
const gpgHomes: string[] = [];
const ssh: Record<'k1' | 'k2', { key: string; pub: string; fpr: string }> = {} as never;
const pgp: Record<'g1' | 'g2', { home: string; fpr: string; pub: string }> = {} as never;
const commits: Record<string, string> = {};

const localGit: LocalGit = (r) => runGit({ ...r, git: 'git', cwd: base, allowFile: true });

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd ?? base, env: { ...process.env, ...opts.env }, input: opts.input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
}

function git(args: string[], env: NodeJS.ProcessEnv = {}): string {
  return sh('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'commit.gpgsign=false', ...args], {
    cwd: repo, env: { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', ...env },
  });
}

function commit(name: string, sign?: { ssh?: string; gpg?: 'g1' | 'g2' }): string {
  writeFileSync(join(repo, `${name}.txt`), name);
  git(['add', '-A']);
  if (sign?.ssh) git(['-c', 'gpg.format=ssh', '-c', `user.signingkey=${sign.ssh}`, 'commit', '-q', '-S', '-m', name]);
  else if (sign?.gpg) git(['-c', 'gpg.format=openpgp', '-c', `user.signingkey=${pgp[sign.gpg].fpr}`, 'commit', '-q', '-S', '-m', name], { GNUPGHOME: pgp[sign.gpg].home });
  else git(['commit', '-q', '-m', name]);
  commits[name] = git(['rev-parse', 'HEAD']);
  return commits[name];
}

function makeGpgKey(name: string): { home: string; fpr: string; pub: string } {
  const home = mkdtempSync(join(tmpdir(), 'zv-gpg-'));
  gpgHomes.push(home);
  const env = { GNUPGHOME: home };
  sh('gpg', ['--batch', '--passphrase', '', '--pinentry-mode', 'loopback', '--quick-gen-key', `${name} <${name}@example.com>`, 'ed25519', 'sign', 'never'], { env });
  const fpr = sh('gpg', ['--batch', '--with-colons', '--list-keys'], { env }).split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9] ?? '';
  const pub = sh('gpg', ['--batch', '--armor', '--export', fpr], { env });
  return { home, fpr, pub };
}

function makeSshKey(name: string): { key: string; pub: string; fpr: string } {
  const key = join(base, name);
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@example.com`, '-f', key]);
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();
  const fpr = sh('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key}.pub`]).split(' ')[1] ?? '';
  return { key, pub, fpr };
}

before(() => {
  base = mkdtempSync(join(tmpdir(), 'zv-verify-test-'));
  repo = join(base, 'repo');
  mkdirSync(repo);
  git(['init', '-q', '-b', 'main']);
  ssh.k1 = makeSshKey('k1');
  ssh.k2 = makeSshKey('k2');
  pgp.g1 = makeGpgKey('g1');
  pgp.g2 = makeGpgKey('g2');
  commit('ssh-k1', { ssh: ssh.k1.key });
  commit('unsigned');
  commit('ssh-k2', { ssh: ssh.k2.key });
  commit('gpg-g1', { gpg: 'g1' });
  commit('gpg-g2', { gpg: 'g2' });
  // Signed commits whose message was changed afterwards: the signature no longer matches.
  for (const name of ['ssh-k1', 'gpg-g1']) {
    const raw = git(['cat-file', 'commit', commits[name] as string]) + '\n';
    commits[`${name}-tampered`] = sh('git', ['hash-object', '-t', 'commit', '-w', '--stdin'], { cwd: repo, input: raw.replace(`\n\n${name}\n`, `\n\n${name} tampered\n`) });
  }
});

after(() => {
  // Signing started a gpg-agent in each test home: stop exactly those.
  for (const home of gpgHomes) {
    try { sh('gpgconf', ['--kill', 'gpg-agent'], { env: { GNUPGHOME: home } }); } catch { /* none running */ }
    rmSync(home, { recursive: true, force: true });
  }
  rmSync(base, { recursive: true, force: true });
});

let keysCounter = 0;
async function check(name: string, policy: CommitVerification, keysDir = join(base, `keys-${++keysCounter}`), tools: { gpg?: string; sshKeygen?: string } = {}): Promise<ZvError | null> {
  try {
    await verifyCommit({ repoDir: join(repo, '.git'), revision: commits[name] as string, policy, keysDir, git: localGit, timeoutMs: 30_000, ...tools });
    return null;
  } catch (e) {
    if (isZvError(e)) return e;
    throw e;
  }
}

function assertRefused(e: ZvError | null, reason: string, message: RegExp): void {
  assert.ok(e, 'the commit was accepted');
  assert.equal(e.code, 'COMMIT_NOT_TRUSTED', e.message);
  assert.equal(e.details?.reason, reason, e.message);
  assert.match(e.message, message);
}

describe('ssh signatures', () => {
  const policy = (): CommitVerification => ({ type: 'ssh', keys: [ssh.k1.pub] });

  test('a commit signed by a trusted key passes', async () => {
    assert.equal(await check('ssh-k1', policy()), null);
    assert.equal(await check('ssh-k1', { type: 'ssh', keys: [ssh.k2.pub, ssh.k1.pub] }), null);
  });

  test('an unsigned commit is refused as unsigned', async () => {
    const e = await check('unsigned', policy());
    assertRefused(e, 'unsigned', /is not signed/);
    assert.ok(e?.message.includes(ssh.k1.fpr), 'the message names the trusted key');
  });

  test('a commit signed by another key is refused, naming its fingerprint', async () => {
    const e = await check('ssh-k2', policy());
    assertRefused(e, 'untrusted-key', /is signed by ssh key SHA256:/);
    assert.ok(e?.message.includes(ssh.k2.fpr), e?.message);
    assert.equal(e?.details?.fingerprint, ssh.k2.fpr);
    assert.ok(!e?.message.includes(ssh.k1.pub.split(' ')[1] as string), 'no key material in the message');
  });

  test('a commit changed after it was signed is refused as badly signed', async () => {
    assert.notEqual(commits['ssh-k1-tampered'], commits['ssh-k1']);
    assertRefused(await check('ssh-k1-tampered', policy()), 'bad-signature', /has a bad signature/);
  });

  test('a missing ssh-keygen is the server\'s fault (GIT_ERROR, retried), not the commit\'s', async () => {
    const e = await check('ssh-k1', policy(), undefined, { sshKeygen: join(base, 'no-such-ssh-keygen') });
    assert.equal(e?.code, 'GIT_ERROR', e?.message);
    assert.match(e?.message ?? '', /cannot be checked/);
  });

  test('a gpg-signed commit is refused under an ssh policy without running gpg', async () => {
    assertRefused(await check('gpg-g1', policy()), 'wrong-type', /carries a gpg signature/);
  });

  test('the allowed signers file is private and written once per policy', async () => {
    const dir = join(base, 'keys-shared');
    assert.equal(await check('ssh-k1', policy(), dir), null);
    assert.equal(await check('ssh-k1', policy(), dir), null);
    const [sub] = execFileSync('ls', [dir], { encoding: 'utf8' }).trim().split('\n');
    const file = join(dir, sub as string, 'allowed_signers');
    assert.equal(statSync(join(dir, sub as string)).mode & 0o777, 0o700);
    assert.equal(readFileSync(file, 'utf8'), `* namespaces="git" ${ssh.k1.pub.split(' ').slice(0, 2).join(' ')}\n`);
  });
});

describe('gpg signatures', () => {
  const policy = (): CommitVerification => ({ type: 'gpg', keys: [pgp.g1.pub] });

  test('a commit signed by a trusted key passes', async () => {
    assert.equal(await check('gpg-g1', policy()), null);
  });

  test('a commit signed by another key is refused, naming its fingerprint', async () => {
    const e = await check('gpg-g2', policy());
    assertRefused(e, 'untrusted-key', /is signed by gpg key/);
    assert.ok(e?.message.includes(pgp.g2.fpr), e?.message);
    assert.ok(e?.message.includes(pgp.g1.fpr), 'the message names the trusted key');
  });

  test('a commit changed after it was signed is refused as badly signed', async () => {
    assertRefused(await check('gpg-g1-tampered', policy()), 'bad-signature', /has a bad signature by key [0-9A-F]+/);
  });

  test('a missing gpg is the server\'s fault (GIT_ERROR), not the commit\'s', async () => {
    const e = await check('gpg-g1', policy(), undefined, { gpg: join(base, 'no-such-gpg') });
    assert.equal(e?.code, 'GIT_ERROR', e?.message);
  });

  test('an unsigned or ssh-signed commit is refused', async () => {
    assertRefused(await check('unsigned', policy()), 'unsigned', /is not signed/);
    assertRefused(await check('ssh-k1', policy()), 'wrong-type', /carries an ssh signature/);
  });

  test('the keyring is private to the policy and starts no gpg-agent', async () => {
    const dir = join(base, 'keys-gpg');
    assert.equal(await check('gpg-g1', policy(), dir), null);
    assertRefused(await check('gpg-g2', policy(), dir), 'untrusted-key', /gpg key/);
    const [sub] = execFileSync('ls', [dir], { encoding: 'utf8' }).trim().split('\n').filter((n) => !n.startsWith('.'));
    const home = join(dir, sub as string, 'gnupg');
    assert.equal(statSync(home).mode & 0o777, 0o700);
    const files = execFileSync('ls', ['-A', home], { encoding: 'utf8' }).split('\n');
    assert.ok(!files.some((f) => f.startsWith('S.gpg-agent')), `agent sockets: ${files.join(' ')}`);
  });
});

describe('commit signature parsing', () => {
  test('finds the gpgsig header and its kind', () => {
    const raw = git(['cat-file', 'commit', commits['ssh-k1'] as string]);
    const sig = commitSignature(raw);
    assert.ok(sig?.startsWith('-----BEGIN SSH SIGNATURE-----\n'));
    assert.ok(sig?.endsWith('-----END SSH SIGNATURE-----\n'));
    assert.equal(signatureKind(sig ?? ''), 'ssh');
    assert.equal(commitSignature(git(['cat-file', 'commit', commits.unsigned as string])), null);
    // A commit message that mentions gpgsig is not a signature.
    assert.equal(commitSignature('tree x\nauthor a\n\ngpgsig -----BEGIN SSH SIGNATURE-----\n'), null);
  });
});

describe('through GitSource', () => {
  test('fetches the commit into the shared clone and checks it', async () => {
    const src = new GitSource({ dataDir: join(base, 'data'), allowFileRepos: true });
    const ref = { repoURL: `file://${repo}`, branch: 'main' };
    await src.verifyCommit(ref, commits['ssh-k1'] as string, { type: 'ssh', keys: [ssh.k1.pub] });
    await assert.rejects(src.verifyCommit(ref, commits.unsigned as string, { type: 'ssh', keys: [ssh.k1.pub] }), (e) => isZvError(e, 'COMMIT_NOT_TRUSTED'));
    assert.equal(statSync(join(base, 'data', 'git', 'verify')).isDirectory(), true);
  });
});

describe('the policy at the API edge', () => {
  const refusal = async (policy: unknown, field: RegExp): Promise<void> => {
    await assert.rejects(checkVerifyPolicy(policy as CommitVerification), (e) => {
      assert.ok(isZvError(e, 'VALIDATION_FAILED'), String(e));
      assert.match(e.message, field);
      return true;
    });
  };

  test('ssh keys are parsed, checked by ssh-keygen and normalised', async () => {
    const out = await checkVerifyPolicy({ type: 'ssh', keys: [`  ${ssh.k1.pub.replace(' ', '   ')}\n`] });
    assert.deepEqual(out, { type: 'ssh', keys: [ssh.k1.pub] });
    const parsed = parseSshPublicKey(ssh.k1.pub);
    assert.equal(typeof parsed === 'string' ? parsed : parsed.fingerprint, ssh.k1.fpr);
  });

  test('bad ssh keys are refused naming the key', async () => {
    const [type, blob] = ssh.k1.pub.split(' ') as [string, string];
    await refusal({ type: 'ssh', keys: [ssh.k1.pub, 'hello'] }, /^source\.verify\.keys\[1\]: key type 'hello'/);
    await refusal({ type: 'ssh', keys: [`${type} ${blob.slice(0, 40)}`] }, /^source\.verify\.keys\[0\]: /);
    await refusal({ type: 'ssh', keys: [`${type} ${Buffer.from('not a key at all').toString('base64')}`] }, /keys\[0\]: the key blob does not hold/);
    await refusal({ type: 'ssh', keys: [readFileSync(ssh.k1.key, 'utf8')] }, /keys\[0\]: is a private key/);
    await refusal({ type: 'ssh', keys: [`${ssh.k1.pub}\n${ssh.k2.pub}`] }, /keys\[0\]: must be one public key line/);
    await refusal({ type: 'ssh', keys: [] }, /^source\.verify\.keys: must hold 1 to 20 keys/);
    await refusal({ type: 'ssh', keys: Array.from({ length: 21 }, () => ssh.k1.pub) }, /^source\.verify\.keys: /);
    await refusal({ type: 'x509', keys: [ssh.k1.pub] }, /^source\.verify\.type: /);
  });

  test('gpg keys must import into a throwaway keyring', async () => {
    const out = await checkVerifyPolicy({ type: 'gpg', keys: [pgp.g1.pub, `${pgp.g2.pub}\n\n`] });
    assert.deepEqual(out.keys.map((k) => k.trim()), [pgp.g1.pub, pgp.g2.pub]);
    await refusal({ type: 'gpg', keys: ['not a key'] }, /^source\.verify\.keys\[0\]: must be an ASCII-armoured public key/);
    await refusal({ type: 'gpg', keys: [pgp.g1.pub, '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n'] }, /^source\.verify\.keys\[1\]: gpg finds no public key/);
    const secret = sh('gpg', ['--batch', '--armor', '--pinentry-mode', 'loopback', '--passphrase', '', '--export-secret-keys', pgp.g1.fpr], { env: { GNUPGHOME: pgp.g1.home } });
    await refusal({ type: 'gpg', keys: [secret] }, /keys\[0\]: is a private key/);
  });

  test('the status shows fingerprints, the same as ssh-keygen and gpg print', () => {
    assert.deepEqual(summariseVerify({ type: 'ssh', keys: [ssh.k1.pub, ssh.k2.pub] }), { type: 'ssh', keys: [ssh.k1.fpr, ssh.k2.fpr] });
    assert.deepEqual(summariseVerify({ type: 'gpg', keys: [pgp.g1.pub, pgp.g2.pub] }), { type: 'gpg', keys: [pgp.g1.fpr, pgp.g2.fpr] });
    assert.deepEqual(pgpPrimaryFingerprints(pgp.g1.pub + '\n' + pgp.g2.pub), [pgp.g1.fpr, pgp.g2.fpr]);
  });
});
