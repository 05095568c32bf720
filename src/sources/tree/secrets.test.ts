// envFrom in the tree reader, on real temp trees with a real keyring and files made by the age CLI:
// contained like every manifest path, refused when plaintext, decrypted to keyed digests that enter
// the function hash, never to values in the state.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isZvError, type ZvError } from '../../errors/registry.js';
import { AgeKeyring } from '../../secrets/keyring.js';
import { loadApp as loadFrom, validateTree } from './index.js';
import { FsSnapshot } from '../fs-snapshot.js';

const loadApp = (dir: string, opts: Parameters<typeof loadFrom>[1]) => loadFrom(new FsSnapshot(dir), opts);

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'zv-tree-secrets-'));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const manifest = (envFrom: string, env = '{ MODE: explicit }'): string => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
spec:
  functions:
    - path: /py
      runtime: python
      code: |
        def handle(req): return "x"
      env: ${env}
      envFrom: ${envFrom}
`;

describe('envFrom in the tree reader', () => {
  let keyring: AgeKeyring;
  let keyDir: string;

  before(async () => {
    keyDir = mkdtempSync(join(tmpdir(), 'zv-tree-key-'));
    keyring = await AgeKeyring.load(keyDir);
  });

  after(() => rmSync(keyDir, { recursive: true, force: true }));

  /** A tree with secrets/<name> encrypted by the age CLI to `recipient` from `plain`. */
  function withSecret(files: Record<string, string>, name: string, plain: string, recipient = keyring.recipient): string {
    const dir = tree(files);
    mkdirSync(join(dir, 'secrets'), { recursive: true });
    const src = join(keyDir, `${name}.plain`);
    writeFileSync(src, plain);
    execFileSync('age', ['-r', recipient, '-o', join(dir, 'secrets', name), src]);
    rmSync(src);
    return dir;
  }

  test('reads ciphertext and digests into the state, never the values; digests enter the hash', async () => {
    const dir = withSecret({ 'zerverless.yaml': manifest('[secrets/prod.env.age]') }, 'prod.env.age', 'DB_PASSWORD=hunter2\nMODE=from-file\n');
    const app = await loadApp(dir, { commit: 'c1', secrets: keyring });
    const fn = app!.state.functions[0]!;
    assert.deepEqual(fn.env, { MODE: 'explicit' });
    assert.equal(fn.secrets?.length, 1);
    assert.equal(fn.secrets![0]!.file, 'secrets/prod.env.age');
    assert.deepEqual(Object.keys(fn.secrets![0]!.digests).sort(), ['DB_PASSWORD', 'MODE']);
    assert.equal(fn.secrets![0]!.digests.DB_PASSWORD, keyring.digest('DB_PASSWORD', 'hunter2'));
    assert.ok(!JSON.stringify(app!.state).includes('hunter2'), 'no plaintext in the state');

    // Same values encrypted again: same hash. Another value: another hash.
    const again = withSecret({ 'zerverless.yaml': manifest('[secrets/prod.env.age]') }, 'prod.env.age', 'DB_PASSWORD=hunter2\nMODE=from-file\n');
    const fn2 = (await loadApp(again, { commit: 'c2', secrets: keyring }))!.state.functions[0]!;
    assert.notEqual(fn2.secrets![0]!.data, fn.secrets![0]!.data, 'age ciphertexts differ');
    assert.equal(fn2.hash, fn.hash);
    const changed = withSecret({ 'zerverless.yaml': manifest('[secrets/prod.env.age]') }, 'prod.env.age', 'DB_PASSWORD=hunter3\nMODE=from-file\n');
    assert.notEqual((await loadApp(changed, { commit: 'c3', secrets: keyring }))!.state.functions[0]!.hash, fn.hash);
  });

  test('a file for another recipient fails with SECRET_DECRYPT_FAILED at the envFrom line, naming the file', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'zv-tree-other-'));
    const other = await AgeKeyring.load(otherDir);
    rmSync(otherDir, { recursive: true, force: true });
    const dir = withSecret({ 'zerverless.yaml': manifest('[secrets/prod.env.age]') }, 'prod.env.age', 'DB_PASSWORD=hunter2\n', other.recipient);
    await assert.rejects(loadApp(dir, { commit: 'c', secrets: keyring }), (e: unknown) => {
      assert.ok(isZvError(e, 'SECRET_DECRYPT_FAILED'), String(e));
      assert.match(e.message, /^zerverless\.yaml:12:\d+: spec\.functions\[0\]\.envFrom\[0\]: secrets\/prod\.env\.age \(age file\): .*another recipient/);
      return true;
    });
  });

  test('envFrom paths are contained: .., absolute, symlink out, missing, duplicates', async () => {
    const outside = tree({ 'x.env.age': 'age-encryption.org/v1\n' });
    const dir = tree({ 'zerverless.yaml': manifest('[secrets/link.env.age, secrets/none.env.age]') });
    mkdirSync(join(dir, 'secrets'));
    symlinkSync(join(outside, 'x.env.age'), join(dir, 'secrets', 'link.env.age'));
    await assert.rejects(loadApp(dir, { commit: 'c', secrets: keyring }), (e: unknown) => {
      const err = e as ZvError;
      assert.equal(err.code, 'PATH_ESCAPE', err.message);
      assert.match(err.message, /envFrom\[0\]: "secrets\/link\.env\.age" resolves outside the repository/);
      assert.match(err.message, /envFrom\[1\]: "secrets\/none\.env\.age" does not exist in the repository/);
      return true;
    });
    for (const bad of ['[../x.env.age]', '[/etc/passwd]', '[a.env.age, ./a.env.age]']) {
      await assert.rejects(loadApp(tree({ 'zerverless.yaml': manifest(bad) }), { commit: 'c', secrets: keyring }), (e: unknown) => isZvError(e, 'MANIFEST_INVALID'), bad);
    }
  });

  test('validate (no key) checks that files exist and are encrypted, and refuses plaintext', async () => {
    const ok = withSecret({ 'zerverless.yaml': manifest('[secrets/prod.env.age]') }, 'prod.env.age', 'A=1\n');
    assert.deepEqual(await validateTree(ok), []);
    const plain = tree({ 'zerverless.yaml': manifest('[secrets/prod.env]'), 'secrets/prod.env': 'DB_PASSWORD=hunter2\n' });
    const diags = await validateTree(plain);
    assert.equal(diags.length, 1);
    assert.match(diags[0]!.message, /secrets\/prod\.env: is not encrypted/);
    assert.ok(!diags[0]!.message.includes('hunter2'));
  });

  test('keys that are not env names are skipped with a warning naming them', async () => {
    const dir = withSecret({ 'zerverless.yaml': manifest('[secrets/s.env.age]') }, 's.env.age', 'tls.crt=x\nOK=1\n');
    const app = await loadApp(dir, { commit: 'c', secrets: keyring });
    assert.deepEqual(Object.keys(app!.state.functions[0]!.secrets![0]!.digests), ['OK']);
    assert.ok(app!.state.warnings.some((w) => /secrets\/s\.env\.age: skipped "tls\.crt"/.test(w)), app!.state.warnings.join('\n'));
  });
});
