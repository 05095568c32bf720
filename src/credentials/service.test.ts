// The credential service against a real SQLite store and ssh-keygen: input checks, sealing (a secret
// copied to another credential does not open), resolution for a URL and namespace, pinning once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZvError, type ErrorCode } from '../errors/registry.js';
import { MasterKey } from '../secrets/master-key.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.js';
import { CredentialService, credentialView } from './service.js';

describe('credential service', () => {
  let dir = '';
  let store: SqliteStore;
  let svc: CredentialService;
  let key = '';
  let pub = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-cred-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'k', '-f', join(dir, 'k')]);
    key = await readFile(join(dir, 'k'), 'utf8');
    pub = await readFile(join(dir, 'k.pub'), 'utf8');
    store = openSqliteStore(join(dir, 'state.db'));
    svc = new CredentialService({ store, key: new MasterKey(randomBytes(32)), tmpDir: join(dir, 'tmp') });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const refused = async (input: Record<string, unknown>, code: ErrorCode, field: RegExp): Promise<void> => {
    await assert.rejects(svc.build({ name: 'c', namespace: 'team', urlPrefix: 'https://h/', ...input }, null), (e) => {
      assert.ok(isZvError(e, code), String(e));
      assert.match(e.message, field);
      assert.ok(!e.message.includes('p@ss-secret') && !e.message.includes('PRIVATE KEY'), 'never the secret');
      return true;
    });
  };

  it('refuses incomplete, mixed or malformed input without quoting secrets', async () => {
    await refused({}, 'VALIDATION_FAILED', /sshPrivateKey|password/);
    await refused({ password: 'p@ss-secret' }, 'VALIDATION_FAILED', /username/);
    await refused({ username: 'u', password: 'p@ss-secret\nx' }, 'VALIDATION_FAILED', /password/);
    await refused({ username: 'u', password: 'p@ss-secret', knownHosts: 'h ssh-ed25519 AAAA' }, 'VALIDATION_FAILED', /knownHosts/);
    await refused({ username: 'u', password: 'p@ss-secret', caCert: 'not pem' }, 'VALIDATION_FAILED', /caCert/);
    await refused({ username: 'u', password: 'p@ss-secret', urlPrefix: 'http://h/' }, 'VALIDATION_FAILED', /urlPrefix/);
    await refused({ sshPrivateKey: key, username: 'u' }, 'VALIDATION_FAILED', /username/);
    await refused({ sshPrivateKey: key, urlPrefix: 'ssh://h/', knownHosts: 'garbage' }, 'VALIDATION_FAILED', /knownHosts: line 1/);
    await refused({ sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----', urlPrefix: 'ssh://h/' }, 'VALIDATION_FAILED', /sshPrivateKey/);
    await refused({ username: 'u', password: 'p@ss-secret', namespace: 'Bad_NS' }, 'INVALID_NAMESPACE', /namespace/);
    await refused({ username: 'u', password: 'p@ss-secret', name: '-x' }, 'VALIDATION_FAILED', /name/);
  });

  it('seals the secret (bound to namespace and name), shows only the public view, resolves by prefix', async () => {
    const ssh = await svc.create({ name: 'deploy', namespace: 'team', urlPrefix: 'ssh://git@h/', sshPrivateKey: key }, 'admin');
    const expected = execFileSync('ssh-keygen', ['-lf', join(dir, 'k.pub')], { encoding: 'utf8' }).split(' ')[1];
    assert.equal(ssh.fingerprint, expected);
    assert.ok(!ssh.secret.includes(key.split('\n')[1] as string));
    assert.ok(!JSON.stringify(credentialView(ssh)).includes('secret'));
    const https = await svc.create({ name: 'tok', namespace: '*', urlPrefix: 'https://h/', username: 'u', password: 'p@ss-secret' }, 'admin');
    assert.ok(!https.secret.includes('p@ss-secret'));
    assert.match(https.fingerprint, /^sha256:[0-9a-f]{16}$/);

    const a = await svc.resolve({ repoURL: 'ssh://git@h/r.git', namespace: 'team' });
    assert.equal(a?.privateKey?.trim(), key.trim());
    assert.equal(a?.type, 'ssh');
    const b = await svc.resolve({ repoURL: 'https://h/r.git', namespace: 'other' });
    assert.equal(b?.password, 'p@ss-secret');
    assert.equal(b?.username, 'u');
    assert.equal(await svc.resolve({ repoURL: 'ssh://git@h/r.git', namespace: 'other' }), null);
    assert.equal(await svc.resolve({ repoURL: 'https://h.evil/r.git', namespace: 'team' }), null);

    // The sealed secret of one credential, copied into another row, does not open.
    await store.createCredential({ ...https, name: 'copy', namespace: 'third', urlPrefix: 'https://copy/' });
    await assert.rejects(svc.resolve({ repoURL: 'https://copy/r.git', namespace: 'third' }), (e) => isZvError(e, 'GIT_AUTH_FAILED') && /cannot be decrypted/.test(e.message));
    // Nor under another master key.
    const other = new CredentialService({ store, key: new MasterKey(randomBytes(32)), tmpDir: join(dir, 'tmp') });
    await assert.rejects(other.resolve({ repoURL: 'ssh://git@h/r.git', namespace: 'team' }), (e) => isZvError(e, 'GIT_AUTH_FAILED'));
    assert.ok(pub.startsWith('ssh-ed25519 '));
  });

  it('pins the first host key once; a key already there is never replaced', async () => {
    await svc.create({ name: 'pin', namespace: 'pins', urlPrefix: 'ssh://git@p/', sshPrivateKey: key }, null);
    const first = await svc.resolve({ repoURL: 'ssh://git@p/r', namespace: 'pins' });
    const second = await svc.resolve({ repoURL: 'ssh://git@p/r', namespace: 'pins' });
    await first?.pin?.('[p]:22 ssh-ed25519 AAAAfirst');
    await second?.pin?.('[p]:22 ssh-ed25519 AAAAsecond');
    assert.equal((await store.getCredential('pins', 'pin'))?.knownHosts, '[p]:22 ssh-ed25519 AAAAfirst');
    assert.equal((await svc.resolve({ repoURL: 'ssh://git@p/r', namespace: 'pins' }))?.knownHosts, '[p]:22 ssh-ed25519 AAAAfirst');
  });
});
