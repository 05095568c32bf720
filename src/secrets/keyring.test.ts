// The server's keyring: the key file in the data dir (created 0600, kept, several identities), env
// pairs from age and SOPS files, SECRET_DECRYPT_FAILED naming the file (never a value), keyed
// digests, and the dotenv and mapping rules.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZvError } from '../errors/registry.js';
import { MAX_SECRET_FILE_BYTES, MAX_SECRET_KEYS } from '../core/secrets.js';
import { encrypt, generateIdentity, recipientOf } from './age.js';
import { AGE_KEY_FILE, AgeKeyring } from './keyring.js';
import { parseDotenv, sniffSecretFile } from './keyring-formats.js';

const testdata = (p: string): Buffer => readFileSync(new URL(`./testdata/${p}`, import.meta.url));

function decryptFails(file: string, pattern: RegExp, secret?: string) {
  return (e: unknown): boolean => {
    assert.ok(isZvError(e, 'SECRET_DECRYPT_FAILED'), String(e));
    assert.ok(e.message.startsWith(file), e.message);
    assert.match(e.message, pattern);
    if (secret) assert.ok(!e.message.includes(secret), e.message);
    return true;
  };
}

describe('AgeKeyring', () => {
  let dir: string;
  let keyring: AgeKeyring;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-keyring-'));
    keyring = await AgeKeyring.load(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('creates <data-dir>/age.key (0600) on first load and keeps it', async () => {
    const file = join(dir, AGE_KEY_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match(keyring.recipient, /^age1[02-9ac-hj-np-z]{58}$/);
    assert.equal(execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim(), keyring.recipient);
    const again = await AgeKeyring.load(dir);
    assert.equal(again.recipient, keyring.recipient);
    assert.equal((await AgeKeyring.read(dir)).recipient, keyring.recipient);
    await chmod(file, 0o644);
    await AgeKeyring.load(dir);
    assert.equal((await stat(file)).mode & 0o777, 0o600, 'a looser mode is tightened');
  });

  it('servers starting at once on a new data dir agree on one key and leave no temp file', async () => {
    const fresh = await mkdtemp(join(tmpdir(), 'zv-keyring-'));
    try {
      const all = await Promise.all(Array.from({ length: 5 }, () => AgeKeyring.load(fresh)));
      assert.equal(new Set(all.map((k) => k.recipient)).size, 1);
      assert.deepEqual(await readdir(fresh), [AGE_KEY_FILE]);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('read() does not create a key file', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'zv-keyring-'));
    try {
      await assert.rejects(AgeKeyring.read(empty), /does not exist/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('reads env pairs from a dotenv file encrypted by the age CLI', async () => {
    await writeFile(join(dir, 'prod.env'), '# comment\nDB_PASSWORD=hunter2\nexport API_URL="https://x.example/a b"\nQUOTED=\'lit $X\'\nML="a\\nb"\n');
    execFileSync('age', ['-r', keyring.recipient, '-o', join(dir, 'prod.env.age'), join(dir, 'prod.env')]);
    const r = await keyring.decryptEnv('secrets/prod.env.age', await readFile(join(dir, 'prod.env.age')));
    assert.deepEqual(r, { env: { DB_PASSWORD: 'hunter2', API_URL: 'https://x.example/a b', QUOTED: 'lit $X', ML: 'a\nb' }, skipped: [] });
  });

  it('reads JSON and YAML mappings from age files by their name', async () => {
    const json = await encrypt(JSON.stringify({ A: 'x', N: 5, B: true }), [keyring.recipient]);
    assert.deepEqual((await keyring.decryptEnv('s/app.json.age', json)).env, { A: 'x', N: '5', B: 'true' });
    const yaml = await encrypt('A: y\nkind: Secret\nstringData: {TOKEN: t}\n', [keyring.recipient], { armor: true });
    assert.deepEqual((await keyring.decryptEnv('s/app.yaml.age', yaml)).env, { TOKEN: 't' }, 'a Secret gives its data');
  });

  it('reads SOPS files (YAML, JSON, dotenv) and Kubernetes Secrets; skips keys that are not env names', async () => {
    const sopsKeyring = await AgeKeyring.fromText(testdata('sops/key.txt').toString());
    const yaml = await sopsKeyring.decryptEnv('secrets/app.enc.yaml', testdata('sops/app.enc.yaml'));
    assert.deepEqual(yaml.env, {
      DB_PASSWORD: 's3cr3t: with colon & spaces', API_TOKEN: 'tok-é✓', PORT: '5432', RATIO: '0.25', DEBUG: 'true', EMPTY: '',
      PUBLIC_unencrypted: 'visible', MULTILINE: 'line one\nline two',
    });
    assert.deepEqual((await sopsKeyring.decryptEnv('secrets/app.enc.json', testdata('sops/app.enc.json'))).env, yaml.env);
    assert.deepEqual((await sopsKeyring.decryptEnv('secrets/app.enc.env', testdata('sops/app.enc.env'))).env, { DB_PASSWORD: 'pa=ss word', MULTILINE: 'a\nb', API_TOKEN: 'xyz' });
    assert.deepEqual((await sopsKeyring.decryptEnv('secrets/secret.enc.yaml', testdata('sops/secret.enc.yaml'))).env, { DB_PASSWORD: 'from-data', API_TOKEN: 'from-string-data' });
    const flux = await AgeKeyring.fromText(testdata('flux/age.txt').toString());
    assert.deepEqual(await flux.decryptEnv('flux/secret.age.yaml', testdata('flux/secret.age.yaml')), { env: { key: 'value' }, skipped: [] });
    assert.deepEqual(await flux.decryptEnv('flux/env.env', testdata('flux/env.env')), { env: { key: 'value' }, skipped: [] });
    const dotted = await encrypt('tls.crt=x\nOK=1\n__proto__=p\n', [keyring.recipient]);
    assert.deepEqual(await keyring.decryptEnv('d.env.age', dotted), { env: { OK: '1' }, skipped: ['tls.crt', '__proto__'] });
  });

  it('fails with SECRET_DECRYPT_FAILED naming the file: wrong recipient, corrupt, MAC mismatch, plaintext, too big', async () => {
    const other = await recipientOf(await generateIdentity());
    await assert.rejects(keyring.decryptEnv('secrets/other.env.age', await encrypt('A=topsecret\n', [other])), decryptFails('secrets/other.env.age', /another recipient/, 'topsecret'));
    const corrupt = await encrypt('A=topsecret\n', [keyring.recipient]);
    corrupt[corrupt.length - 5] = corrupt[corrupt.length - 5]! ^ 0xff;
    await assert.rejects(keyring.decryptEnv('secrets/c.env.age', corrupt), decryptFails('secrets/c.env.age', /does not decrypt/, 'topsecret'));
    const sopsKeyring = await AgeKeyring.fromText(testdata('sops/key.txt').toString());
    const tampered = testdata('sops/app.enc.yaml').toString().replace('PUBLIC_unencrypted: visible', 'PUBLIC_unencrypted: visiblE');
    await assert.rejects(sopsKeyring.decryptEnv('secrets/app.enc.yaml', Buffer.from(tampered)), decryptFails('secrets/app.enc.yaml', /MAC/, 's3cr3t'));
    await assert.rejects(keyring.decryptEnv('secrets/app.enc.yaml', testdata('sops/app.enc.yaml')), decryptFails('secrets/app.enc.yaml', /none of which is this server's key/));
    await assert.rejects(keyring.decryptEnv('secrets/plain.env', Buffer.from('A=plaintext\n')), decryptFails('secrets/plain.env', /is not encrypted/, 'plaintext'));
    await assert.rejects(keyring.decryptEnv('big.env.age', Buffer.alloc(MAX_SECRET_FILE_BYTES + 1)), decryptFails('big.env.age', /over the limit/));
    const many = Array.from({ length: MAX_SECRET_KEYS + 1 }, (_, i) => `K${i}=v`).join('\n');
    await assert.rejects(keyring.decryptEnv('many.env.age', await encrypt(many, [keyring.recipient])), decryptFails('many.env.age', /more than/));
    const nested = await encrypt('A:\n  B: 1\n', [keyring.recipient]);
    await assert.rejects(keyring.decryptEnv('n.yaml.age', nested), decryptFails('n.yaml.age', /the value of A is a mapping/));
    const badLine = await encrypt('A=1\nthis line has the secret hunter2\n', [keyring.recipient]);
    await assert.rejects(keyring.decryptEnv('b.env.age', badLine), decryptFails('b.env.age', /line 2 is not KEY=value/, 'hunter2'));
  });

  it('digests values with a key of this server: stable here, different elsewhere, never the value', async () => {
    const d = keyring.digest('DB_PASSWORD', 'hunter2');
    assert.match(d, /^[0-9a-f]{32}$/);
    assert.equal(keyring.digest('DB_PASSWORD', 'hunter2'), d);
    assert.notEqual(keyring.digest('DB_PASSWORD', 'hunter3'), d);
    assert.notEqual(keyring.digest('OTHER', 'hunter2'), d);
    const elsewhere = await AgeKeyring.fromText(await generateIdentity());
    assert.notEqual(elsewhere.digest('DB_PASSWORD', 'hunter2'), d);
  });

  it('a key file with several identities decrypts for each and shows the first recipient', async () => {
    const a = await generateIdentity();
    const b = await generateIdentity();
    const k = await AgeKeyring.fromText(`${a}\n${b}\n`);
    assert.equal(k.recipient, await recipientOf(a));
    const forB = await encrypt('X=1\n', [await recipientOf(b)]);
    assert.deepEqual((await k.decryptEnv('x.env.age', forB)).env, { X: '1' });
  });
});

describe('secrets file formats', () => {
  it('parses dotenv: export, comments, quotes, escapes, multi-line, later duplicates win', () => {
    assert.deepEqual(parseDotenv('A=1 # c\nexport B = two words \nC="x\\"y\\n"\nD=\'a\nb\'\nA=3\r\nE=\n#F=no\n'), [
      ['A', '1'], ['B', 'two words'], ['C', 'x"y\n'], ['D', 'a\nb'], ['A', '3'], ['E', ''],
    ]);
    assert.throws(() => parseDotenv('A="open\n'), /not closed/);
    assert.throws(() => parseDotenv('A="x" y\n'), /after the closing quote/);
  });

  it('tells age and SOPS files from plaintext', () => {
    assert.deepEqual(sniffSecretFile('a.env.age', Buffer.from('age-encryption.org/v1\n-> X25519 x\n')), { kind: 'age', inner: 'dotenv' });
    assert.deepEqual(sniffSecretFile('a.json.age', Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\n')), { kind: 'age', inner: 'json' });
    assert.deepEqual(sniffSecretFile('a.enc.yaml', testdata('sops/app.enc.yaml')), { kind: 'sops', format: 'yaml' });
    assert.deepEqual(sniffSecretFile('a.json', testdata('sops/app.enc.json')), { kind: 'sops', format: 'json' });
    assert.deepEqual(sniffSecretFile('prod.env', testdata('sops/app.enc.env')), { kind: 'sops', format: 'dotenv' });
    assert.equal(sniffSecretFile('a.yaml', Buffer.from('A: 1\n')), null);
    assert.equal(sniffSecretFile('a.env', Buffer.from('A=1\n')), null);
  });
});
