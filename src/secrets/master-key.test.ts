import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZvError } from '../errors/registry.js';
import { MasterKey, loadMasterKey, parseMasterKey } from './master-key.js';

describe('master key', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-mk-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('seals and opens; the additional data and the key must match; tampering is detected', () => {
    const k = new MasterKey(randomBytes(32));
    const sealed = k.seal('hunter2 ✓', 'team\0cred');
    assert.match(sealed, /^v1:[A-Za-z0-9+/=]+$/);
    assert.ok(!sealed.includes('hunter2'));
    assert.equal(k.open(sealed, 'team\0cred'), 'hunter2 ✓');
    assert.notEqual(k.seal('hunter2 ✓', 'team\0cred'), sealed, 'a fresh IV each time');
    assert.throws(() => k.open(sealed, 'other\0cred'), (e) => isZvError(e, 'CONFIG_INVALID'));
    assert.throws(() => new MasterKey(randomBytes(32)).open(sealed, 'team\0cred'), (e) => isZvError(e, 'CONFIG_INVALID'));
    const raw = Buffer.from(sealed.slice(3), 'base64');
    raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
    assert.throws(() => k.open('v1:' + raw.toString('base64'), 'team\0cred'), (e) => isZvError(e, 'CONFIG_INVALID'));
    assert.throws(() => k.open('v2:abc', 'team\0cred'), (e) => isZvError(e, 'CONFIG_INVALID'));
    assert.throws(() => k.open('v1:', 'team\0cred'), (e) => isZvError(e, 'CONFIG_INVALID'));
  });

  it('fingerprints are keyed: same secret and key → same; another key → different', () => {
    const key = randomBytes(32);
    const a = new MasterKey(key).fingerprint('password');
    assert.match(a, /^sha256:[0-9a-f]{16}$/);
    assert.equal(new MasterKey(key).fingerprint('password'), a);
    assert.notEqual(new MasterKey(randomBytes(32)).fingerprint('password'), a);
    assert.notEqual(new MasterKey(key).fingerprint('password2'), a);
  });

  it('parses 64 hex digits and base64 (standard, URL-safe, unpadded); refuses other lengths', () => {
    const key = randomBytes(32);
    assert.deepEqual(parseMasterKey(key.toString('hex')), key);
    assert.deepEqual(parseMasterKey(key.toString('base64') + '\n'), key);
    assert.deepEqual(parseMasterKey(key.toString('base64url')), key);
    assert.equal(parseMasterKey(randomBytes(16).toString('hex')), null);
    assert.equal(parseMasterKey(randomBytes(31).toString('base64')), null);
    assert.equal(parseMasterKey('not a key'), null);
  });

  it('creates <data-dir>/master.key with mode 0600 once, and reads it back', async () => {
    const d = join(dir, 'a');
    await mkdir(d);
    const k1 = await loadMasterKey(d, {});
    const file = join(d, 'master.key');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const text = await readFile(file, 'utf8');
    const k2 = await loadMasterKey(d, {});
    assert.equal(await readFile(file, 'utf8'), text, 'not rewritten');
    assert.equal(k2.open(k1.seal('x', 'aad'), 'aad'), 'x');
    await chmod(file, 0o644);
    await loadMasterKey(d, {});
    assert.equal((await stat(file)).mode & 0o777, 0o600, 'tightened');
    await writeFile(file, 'short\n');
    await assert.rejects(loadMasterKey(d, {}), (e) => isZvError(e, 'CONFIG_INVALID'));
  });

  it('ZV_MASTER_KEY wins over the file and writes nothing; a bad value is refused', async () => {
    const d = join(dir, 'b');
    await mkdir(d);
    const key = randomBytes(32);
    const k = await loadMasterKey(d, { ZV_MASTER_KEY: key.toString('hex') });
    assert.equal(new MasterKey(key).open(k.seal('y', 'a'), 'a'), 'y');
    await assert.rejects(stat(join(d, 'master.key')));
    await assert.rejects(loadMasterKey(d, { ZV_MASTER_KEY: 'abcd' }), (e) => isZvError(e, 'CONFIG_INVALID'));
  });
});
