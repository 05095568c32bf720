// End to end: envFrom secrets with the real server, a real git repository and files made by the
// real `age` CLI. A Python and a JS function read a secret from their env; a changed value is a
// plan line `env.DB_PASSWORD changed` and a redeploy; a file for another recipient fails the sync
// with SECRET_DECRYPT_FAILED while the last good version keeps serving; no plaintext value is
// ever in the data dir or in an API answer; a restart serves the secret again without git.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRepo } from '../support/repo.js';
import { filesUnder } from '../support/files.js';
import { startHarness, type Harness } from '../support/server.js';
import { cliFromSource as run } from '../support/cli-src.js';
import type { FunctionChange } from '../../src/core/plan/index.js';

const MANIFEST = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
  namespace: team
spec:
  functions:
    - path: /py
      runtime: python
      codeFile: fn/secret.py
      env: { MODE: explicit }
      envFrom: [secrets/prod.env.age]
    - path: /js
      runtime: js
      codeFile: fn/secret.js
      envFrom: [secrets/prod.env.age]
`;

const PY = `import os
def handle(req):
    return {"status": 200, "body": {"db": os.environ.get("DB_PASSWORD"), "mode": os.environ.get("MODE")}}
`;

const JS = `export default {
  fetch(request, env) { return Response.json({ db: env.DB_PASSWORD, mode: env.MODE ?? null, api: env.API_TOKEN ?? null }); },
};
`;

/**
 * A SOPS dotenv file (the form `sops --encrypt` writes for .env files) encrypted to `recipient`:
 * AES-256-GCM values with `KEY:` as additional data, the data key wrapped by the age CLI, the MAC
 * (SHA-512 of the values) encrypted with lastmodified as additional data.
 */
function sopsDotenv(pairs: [string, string][], recipient: string): string {
  const key = randomBytes(32);
  const enc = (value: string, aad: string): string => {
    const iv = randomBytes(32);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const data = Buffer.concat([c.update(value, 'utf8'), c.final()]);
    return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${c.getAuthTag().toString('base64')},type:str]`;
  };
  const mac = createHash('sha512');
  for (const [, v] of pairs) mac.update(v, 'utf8');
  const lastmodified = '2026-12-05T22:00:00Z';
  const wrapped = execFileSync('age', ['-a', '-r', recipient], { input: key }).toString('utf8');
  return [
    ...pairs.map(([k, v]) => `${k}=${enc(v, `${k}:`)}`),
    `sops_age__list_0__map_enc=${wrapped.replace(/\n/g, '\\n')}`,
    `sops_age__list_0__map_recipient=${recipient}`,
    `sops_lastmodified=${lastmodified}`,
    `sops_mac=${enc(mac.digest('hex').toUpperCase(), lastmodified)}`,
    'sops_unencrypted_suffix=_unencrypted',
    'sops_version=3.9.0',
    '',
  ].join('\n');
}

describe('secrets for functions (envFrom)', () => {
  let h: Harness;
  let repo: TestRepo;
  let work: string;
  let recipient: string;
  const values = [`pw-one-${randomBytes(6).toString('hex')}`, `pw-two-${randomBytes(6).toString('hex')}`, `pw-three-${randomBytes(6).toString('hex')}`, `tok-sops-${randomBytes(6).toString('hex')}`];

  /** Encrypts `plain` with the age CLI into the repository's secrets/prod.env.age (the plaintext stays outside). */
  async function writeSecret(plain: string, to: string): Promise<void> {
    const src = join(work, 'prod.env');
    await writeFile(src, plain);
    execFileSync('mkdir', ['-p', join(repo.dir, 'secrets')]);
    execFileSync('age', ['-r', to, '-o', join(repo.dir, 'secrets', 'prod.env.age'), src]);
    await rm(src);
  }

  async function answer(path: string): Promise<{ db: string | null; mode: string | null; api?: string | null }> {
    const res = await h.get(`/team${path}`);
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    return (await res.json()) as { db: string | null; mode: string | null; api?: string | null };
  }

  before(async () => {
    h = await startHarness();
    work = await mkdtemp(join(tmpdir(), 'zv-secrets-work-'));
    repo = await TestRepo.create();
  });
  after(async () => {
    await h.close();
    await repo.remove();
    await rm(work, { recursive: true, force: true });
  });

  it('GET /api/secrets/recipient gives the age key of <data-dir>/age.key (0600) to any token, not without one', async () => {
    const keyFile = join(h.dataDir, 'age.key');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const r = await h.call<{ recipient: string }>('GET', '/secrets/recipient');
    assert.equal(r.status, 200);
    recipient = r.body.recipient;
    assert.match(recipient, /^age1[02-9ac-hj-np-z]{58}$/);
    assert.equal(execFileSync('age-keygen', ['-y', keyFile], { encoding: 'utf8' }).trim(), recipient);
    // A plain fetch with the admin token from the data dir, and one without a token.
    const token = (await readFile(join(h.dataDir, 'admin-token'), 'utf8')).trim();
    const plain = await fetch(`${h.url}/api/secrets/recipient`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await plain.json(), { recipient });
    assert.equal((await fetch(`${h.url}/api/secrets/recipient`)).status, 401);
    const reader = await h.call<{ token: string }>('POST', '/tokens', { body: { name: 'ro', role: 'reader' } });
    assert.equal((await h.call('GET', '/secrets/recipient', { token: reader.body.token })).status, 200);
  });

  it("'zerverless secrets recipient' and 'secrets encrypt' make files the server's key opens", async () => {
    const r1 = await run('secrets', 'recipient', '--server', h.url, '--token', h.token);
    assert.deepEqual(r1, { code: 0, stdout: `${recipient}\n`, stderr: '' });
    const r2 = await run('secrets', 'recipient', '--data-dir', h.dataDir, '--json');
    assert.deepEqual(JSON.parse(r2.stdout), { recipient });
    const file = join(work, 'cli.env');
    await writeFile(file, 'API_KEY=cli-secret-value\nOTHER=2\n');
    const r3 = await run('secrets', 'encrypt', file, '--server', h.url, '--token', h.token);
    assert.equal(r3.code, 0, r3.stderr);
    assert.match(r3.stdout, /wrote .*cli\.env\.age for age1\w+ \(2 key\(s\): API_KEY, OTHER\)/);
    assert.ok(!r3.stdout.includes('cli-secret-value'));
    assert.equal(execFileSync('age', ['-d', '-i', join(h.dataDir, 'age.key'), `${file}.age`], { encoding: 'utf8' }), 'API_KEY=cli-secret-value\nOTHER=2\n');
    const r4 = await run('secrets', 'encrypt', file, '--recipient', recipient, '-o', join(work, 'x.asc'), '--armor');
    assert.equal(r4.code, 0, r4.stderr);
    assert.match(await readFile(join(work, 'x.asc'), 'utf8'), /^-----BEGIN AGE ENCRYPTED FILE-----/);
    const again = await run('secrets', 'encrypt', `${file}.age`, '--recipient', recipient);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is already encrypted/);
    await rm(join(work, 'x.asc'));
    await rm(`${file}.age`);
    await rm(file);
  });

  it('Python and JS functions read the secret from their env; explicit env wins over the file', async () => {
    await writeSecret(`DB_PASSWORD=${values[0]}\nMODE=from-file\n`, recipient);
    await repo.commit({ 'zerverless.yaml': MANIFEST, 'fn/secret.py': PY, 'fn/secret.js': JS }, 'with a secret');
    const st = await h.register('app', 'team', repo.url);
    assert.equal(st.status, 'synced', st.message);
    assert.deepEqual(await answer('/py'), { db: values[0], mode: 'explicit' });
    assert.deepEqual(await answer('/js'), { db: values[0], mode: 'from-file', api: null });
  });

  it('a changed value redeploys: the plan says env.DB_PASSWORD changed, the functions answer the new value', async () => {
    await writeSecret(`DB_PASSWORD=${values[1]}\nMODE=from-file\n`, recipient);
    const commit = await repo.commit({}, 'rotate the password');
    const st = await h.sync('app', 'team');
    assert.equal(st.status, 'synced', st.message);
    assert.equal(st.source.commit, commit);
    assert.deepEqual(await answer('/py'), { db: values[1], mode: 'explicit' });
    assert.deepEqual(await answer('/js'), { db: values[1], mode: 'from-file', api: null });
    const hist = await h.api<{ syncs: { plan: { functions: FunctionChange[] } | null }[] }>('GET', '/app/syncs?namespace=team');
    const fns = hist.body.syncs[0]!.plan!.functions;
    for (const path of ['/js', '/py']) {
      const c = fns.find((f) => f.path === path);
      assert.equal(c?.action, 'update', JSON.stringify(fns));
      assert.deepEqual(c?.changes, ['env.DB_PASSWORD changed'], JSON.stringify(c));
    }
  });

  it('the same values encrypted again change nothing', async () => {
    await writeSecret(`DB_PASSWORD=${values[1]}\nMODE=from-file\n`, recipient);
    await repo.commit({}, 're-encrypt');
    await h.sync('app', 'team');
    const hist = await h.api<{ syncs: { plan: { summary: { update: number; unchanged: number } } | null }[] }>('GET', '/app/syncs?namespace=team');
    assert.deepEqual(hist.body.syncs[0]!.plan!.summary, { create: 0, update: 0, delete: 0, unchanged: 2 });
  });

  it('a file for another recipient fails with SECRET_DECRYPT_FAILED naming it; the last good version keeps serving', async () => {
    const otherKey = join(work, 'other.key');
    execFileSync('age-keygen', ['-o', otherKey], { stdio: 'ignore' });
    const other = execFileSync('age-keygen', ['-y', otherKey], { encoding: 'utf8' }).trim();
    await writeSecret(`DB_PASSWORD=${values[2]}\n`, other);
    await repo.commit({}, 'encrypted to the wrong key');
    const st = await h.sync('app', 'team');
    assert.equal(st.status, 'error');
    assert.match(st.message, /^SECRET_DECRYPT_FAILED: /);
    assert.match(st.message, /secrets\/prod\.env\.age/);
    assert.match(st.message, /zerverless\.yaml:\d+:\d+: spec\.functions\[0\]\.envFrom\[0\]/);
    assert.deepEqual(await answer('/py'), { db: values[1], mode: 'explicit' });
    assert.deepEqual(await answer('/js'), { db: values[1], mode: 'from-file', api: null });
  });

  it('a SOPS dotenv file encrypted to the server works beside an age file; a later file wins', async () => {
    await writeSecret(`DB_PASSWORD=${values[1]}\nMODE=from-file\n`, recipient);
    const sops = sopsDotenv([['API_TOKEN', values[3]!], ['MODE', 'from-sops']], recipient);
    const manifest = MANIFEST.replace(/(codeFile: fn\/secret\.js\n\s+envFrom: )\[secrets\/prod\.env\.age\]/, '$1[secrets/prod.env.age, secrets/extra.enc.env]');
    assert.notEqual(manifest, MANIFEST);
    await repo.commit({ 'zerverless.yaml': manifest, 'secrets/extra.enc.env': sops }, 'add a SOPS file');
    const st = await h.sync('app', 'team');
    assert.equal(st.status, 'synced', st.message);
    assert.deepEqual(await answer('/js'), { db: values[1], mode: 'from-sops', api: values[3] });
    assert.deepEqual(await answer('/py'), { db: values[1], mode: 'explicit' });
    assert.deepEqual(st.functions.map((f) => [f.path, f.envFrom]), [['/py', ['secrets/prod.env.age']], ['/js', ['secrets/prod.env.age', 'secrets/extra.enc.env']]]);
    const hist = await h.api<{ syncs: { plan: { functions: FunctionChange[] } | null }[] }>('GET', '/app/syncs?namespace=team');
    const js = hist.body.syncs[0]!.plan!.functions.find((f) => f.path === '/js');
    assert.deepEqual(js?.changes, ['envFrom', 'env.API_TOKEN added', 'env.MODE changed']);
    assert.equal(hist.body.syncs[0]!.plan!.functions.find((f) => f.path === '/py')?.action, 'unchanged');
  });

  it('no plaintext value is in the data dir (state.db, blobs, clones, artifacts) nor in any API answer', async () => {
    const files = await filesUnder(h.dataDir);
    assert.ok(files.some((f) => f.endsWith('state.db')), files.join('\n'));
    for (const f of files) {
      const bytes = await readFile(f).catch(() => null); // removed by garbage collection meanwhile
      if (!bytes) continue;
      for (const v of values) assert.equal(bytes.indexOf(v), -1, `${v} found in ${f}`);
    }
    const answers = [
      await h.api('GET', '/app?namespace=team'),
      await h.api('GET', '/?namespace=team'),
      await h.api('GET', '/app/syncs?namespace=team'),
    ];
    for (const a of answers) {
      const text = JSON.stringify(a.body);
      for (const v of values) assert.ok(!text.includes(v), `${v} in ${text.slice(0, 200)}`);
    }
    // The stored state holds the ciphertext as committed and keyed digests, nothing else.
    const deployed = await h.server.store.getDeployed((await h.server.store.getApp('team', 'app'))!.id);
    const js = deployed!.functions.find((f) => f.path === '/js')!;
    assert.deepEqual(js.env, {});
    assert.equal(js.secrets?.[0]?.file, 'secrets/prod.env.age');
    assert.ok(Buffer.from(js.secrets![0]!.data, 'base64').toString('latin1').startsWith('age-encryption.org/v1\n'));
    assert.deepEqual(Object.keys(js.secrets![0]!.digests).sort(), ['DB_PASSWORD', 'MODE']);
    assert.equal(js.secrets?.[1]?.file, 'secrets/extra.enc.env');
    assert.match(Buffer.from(js.secrets![1]!.data, 'base64').toString('utf8'), /^API_TOKEN=ENC\[AES256_GCM,/);
  });

  it('after a restart the secret is served again, decrypted from the stored ciphertext (no git)', async () => {
    await repo.remove();
    await h.restart();
    assert.deepEqual(await answer('/py'), { db: values[1], mode: 'explicit' });
    assert.deepEqual(await answer('/js'), { db: values[1], mode: 'from-sops', api: values[3] });
    const st = await h.api('GET', '/app?namespace=team');
    assert.equal((st.body as { functions: { status: string }[] }).functions.every((f) => f.status === 'ready'), true);
  });
});
