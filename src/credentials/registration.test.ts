// Credentials carried by a registration: stored before the application (so its first sync has
// them), never half-made: a failed registration leaves the credentials as they were.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZvError, isZvError } from '../errors/registry.js';
import { MasterKey } from '../secrets/master-key.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/store.js';
import type { AppRecord } from '../store/types.js';
import { CredentialService } from './service.js';
import { registerWithCredential } from './registration.js';

describe('credentials given at registration', () => {
  let dir = '';
  let store: SqliteStore;
  let deps: { store: SqliteStore; credentials: CredentialService };
  const url = 'https://git.example.com/acme/app.git';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-reg-'));
    store = openSqliteStore(join(dir, 'state.db'));
    deps = { store, credentials: new CredentialService({ store, key: new MasterKey(randomBytes(32)), tmpDir: join(dir, 'tmp') }) };
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const register = (name: string, namespace: string) => (repoURL: string): Promise<AppRecord> =>
    store.createApp({ name, namespace, source: { repoURL, branch: 'main', path: '' } });

  it('without auth or a password in the URL, registers as given and stores nothing', async () => {
    const app = await registerWithCredential(deps, { name: 'pub', namespace: 'team', repoURL: 'https://bob@h/r.git', createdBy: null }, register('pub', 'team'));
    assert.equal(app.source.repoURL, 'https://bob@h/r.git', 'a user name alone is not a secret');
    assert.deepEqual(await store.listCredentials(null), []);
  });

  it('moves user:password@ into a credential named after the application; the URL is stored without it', async () => {
    const app = await registerWithCredential(deps, { name: 'web', namespace: 'team', repoURL: url.replace('https://', 'https://ci:s3cret%21@'), createdBy: 'tok' }, register('web', 'team'));
    assert.equal(app.source.repoURL, url);
    const c = await store.getCredential('team', 'web');
    assert.equal(c?.urlPrefix, url);
    assert.equal(c?.username, 'ci');
    assert.equal(c?.createdBy, 'tok');
    assert.equal((await deps.credentials.resolve({ repoURL: url, namespace: 'team' }))?.password, 's3cret!');
  });

  it('refuses a password in the URL and auth together, and auth without a secret', async () => {
    const both = { name: 'x', namespace: 'team', repoURL: 'https://u:p@h/r.git', auth: { username: 'u', token: 't' }, createdBy: null };
    await assert.rejects(registerWithCredential(deps, both, register('x', 'team')), (e) => isZvError(e, 'VALIDATION_FAILED'));
    await assert.rejects(registerWithCredential(deps, { name: 'x', namespace: 'team', repoURL: url, auth: { username: 'u' }, createdBy: null }, register('x', 'team')),
      (e) => isZvError(e, 'VALIDATION_FAILED'));
    assert.equal(await store.getApp('team', 'x'), null);
  });

  it('a taken application name or a credential of that name for another URL changes nothing', async () => {
    const before = await store.getCredential('team', 'web');
    await assert.rejects(registerWithCredential(deps, { name: 'web', namespace: 'team', repoURL: url, auth: { username: 'u', token: 'new' }, createdBy: null }, register('web', 'team')),
      (e) => isZvError(e, 'APP_EXISTS'));
    assert.deepEqual(await store.getCredential('team', 'web'), before, 'the existing credential is untouched');
    await deps.credentials.create({ name: 'api', namespace: 'ops', urlPrefix: 'https://h/', username: 'u', password: 'p' }, null);
    await assert.rejects(registerWithCredential(deps, { name: 'api', namespace: 'ops', repoURL: url, auth: { username: 'u', token: 't' }, createdBy: null }, register('api', 'ops')),
      (e) => isZvError(e, 'CREDENTIAL_EXISTS'));
    assert.equal(await store.getApp('ops', 'api'), null);
  });

  it('replaces its own credential (same name and URL) and puts it back when registering fails', async () => {
    await deps.credentials.create({ name: 'again', namespace: 'solo', urlPrefix: url, username: 'u', password: 'old' }, null);
    const failing = async (): Promise<AppRecord> => {
      throw new ZvError('NOT_READY', 'shutting down');
    };
    const reg = { name: 'again', namespace: 'solo', repoURL: url, auth: { username: 'u', token: 'new' }, createdBy: null };
    await assert.rejects(registerWithCredential(deps, reg, failing), (e) => isZvError(e, 'NOT_READY'));
    assert.equal((await deps.credentials.resolve({ repoURL: url, namespace: 'solo' }))?.password, 'old', 'the old credential is back and still opens');
    await registerWithCredential(deps, reg, register('again', 'solo'));
    assert.equal((await deps.credentials.resolve({ repoURL: url, namespace: 'solo' }))?.password, 'new');
    assert.equal((await store.listCredentials(['solo'])).length, 1);
  });
});
