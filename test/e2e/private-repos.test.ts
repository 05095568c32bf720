// Private repositories end to end, with real parts only: an OpenSSH server (key-only login, its own
// host key) and a smart-HTTP git server over HTTPS (git http-backend behind node:https, basic auth,
// a self-signed CA given as the credential's caCert). The right credential syncs; a wrong or
// missing one is GIT_AUTH_FAILED; a changed host key is HOST_KEY_CHANGED; and no secret appears in
// the data dir, the API answers, the server log or the process list sampled during fetches.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { resolveServeConfig } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { createLogger } from '../../src/telemetry/log.js';
import type { AppStatus } from '../../src/core/status.js';
import { luaManifest } from './fixtures.js';
import { TestRepo } from '../support/repo.js';
import { TestSshd } from '../support/sshd.js';
import { TestGitHttps } from '../support/git-http.js';
import { filesUnder } from '../support/files.js';

const PW_API = 'pw-api-Q7x2vLk9TzR4';
const PW_INLINE = 'tok-inline-M3n8bV5cX1';
const PW_URL = 'pw-url-H6j4kD2sF9';
const PW_BOOT = 'pw-boot-W2e5rT8yU1';

const manifest = (v: string): string => luaManifest(v, { name: 'app', path: '/hello' });

interface Call<T = unknown> { status: number; body: T }

describe('private repositories over ssh and https', () => {
  let repo: TestRepo;
  let sshd: TestSshd;
  let https: TestGitHttps;
  let dataDir = '';
  let server: RunningServer;
  let token = '';
  let sshKey = '';
  let logText = '';
  let sink: Writable;
  const answers: string[] = [];
  const psSamples: string[] = [];

  const call = async <T = unknown>(method: string, path: string, body?: unknown, as: string = token): Promise<Call<T>> => {
    const res = await fetch(`${server.url}/api${path}`, {
      method,
      headers: { authorization: `Bearer ${as}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    answers.push(text);
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const status = async (name: string, ns: string): Promise<AppStatus> => (await call<AppStatus>('GET', `/gitops/applications/${name}?namespace=${ns}`)).body;
  const settled = async (name: string, ns: string, timeoutMs = 60_000): Promise<AppStatus> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await status(name, ns);
      if (s.status !== 'pending' && s.status !== 'syncing') return s;
      if (Date.now() > deadline) throw new Error(`${ns}/${name} did not settle: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const register = async (name: string, ns: string, repoURL: string, extra: Record<string, unknown> = {}): Promise<AppStatus> => {
    const r = await call<AppStatus>('POST', '/gitops/applications', { name, namespace: ns, source: { repoURL, branch: 'main' }, ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return settled(name, ns);
  };
  const fn = async (ns: string): Promise<string> => {
    const res = await fetch(`${server.url}/${ns}/hello`);
    return `${res.status} ${await res.text()}`;
  };
  /** Samples `ps -eo args` back to back while `work` runs. */
  const sampled = async <T>(work: () => Promise<T>): Promise<T> => {
    let on = true;
    const loop = (async () => {
      while (on) {
        psSamples.push(await new Promise<string>((r) => execFile('ps', ['-eo', 'args'], { maxBuffer: 8 << 20 }, (_e, out) => r(out))));
      }
    })();
    try {
      return await work();
    } finally {
      on = false;
      await loop;
    }
  };

  before(async () => {
    repo = await TestRepo.create({ 'zerverless.yaml': manifest('v1') });
    sshd = await TestSshd.start();
    https = await TestGitHttps.start(dirname(repo.dir), { alice: PW_API, bob: PW_INLINE, carol: PW_URL, dave: PW_BOOT });
    sshKey = await sshd.clientKey();
    dataDir = await mkdtemp(join(tmpdir(), 'zv-data-'));
    sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logText += chunk.toString();
        cb();
      },
    });
    const config = resolveServeConfig({ port: 0, 'allow-file-repos': true, 'data-dir': dataDir, 'poll-interval': '1h' }, {}, {});
    server = await startServer(config, { logger: createLogger({ level: 'debug', destination: sink }) });
    token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  });

  after(async () => {
    await server?.close();
    await sshd?.close();
    await https?.close();
    await repo?.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('creates an ssh credential: the public view has the key fingerprint of ssh-keygen -lf, never the key', async () => {
    const r = await call<Record<string, unknown>>('POST', '/credentials', { name: 'deploy-key', namespace: 'sshns', urlPrefix: `ssh://${sshd.user}@127.0.0.1:${sshd.port}/`, sshPrivateKey: sshKey });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const expected = execFileSync('ssh-keygen', ['-lf', join(sshd.dir, 'client_key.pub')], { encoding: 'utf8' }).split(' ')[1];
    assert.equal(r.body.fingerprint, expected);
    assert.equal(r.body.type, 'ssh');
    assert.equal(r.body.knownHosts, null);
    assert.deepEqual(Object.keys(r.body).sort(), ['caCert', 'createdAt', 'createdBy', 'fingerprint', 'knownHosts', 'name', 'namespace', 'type', 'urlPrefix', 'username']);
    const dup = await call('POST', '/credentials', { name: 'deploy-key', namespace: 'sshns', urlPrefix: `ssh://${sshd.user}@127.0.0.1:${sshd.port}/`, sshPrivateKey: sshKey });
    assert.equal(dup.status, 409);
    const bad = await call<{ error: { code: string; message: string } }>('POST', '/credentials', { name: 'bad', namespace: 'sshns', urlPrefix: 'ssh://h/', sshPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----' });
    assert.equal(bad.status, 400);
    assert.ok(!bad.body.error.message.includes('not a key'), 'the key is not quoted back');
  });

  it('syncs over ssh with the credential, pins the first host key, and the function answers', async () => {
    const st = await sampled(() => register('app', 'sshns', sshd.url(repo.dir)));
    assert.equal(st.status, 'synced', st.message);
    assert.equal(await fn('sshns'), '200 v1');
    const cred = (await call<Record<string, string>>('GET', '/credentials/deploy-key?namespace=sshns')).body;
    assert.match(cred.knownHosts ?? '', new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `));
    assert.equal(cred.knownHosts?.split(' ').slice(1).join(' '), (await sshd.knownHosts()).split(' ').slice(1).join(' '));
  });

  it('syncs over https with username/password and the caCert of a self-signed server', async () => {
    const r = await call<Record<string, unknown>>('POST', '/credentials', {
      name: 'https-cred', namespace: 'httpsns', urlPrefix: `https://127.0.0.1:${https.port}`, username: 'alice', password: PW_API, caCert: https.certPem,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(String(r.body.fingerprint), /^sha256:[0-9a-f]{16}$/);
    const st = await sampled(() => register('app', 'httpsns', https.url(repo.dir)));
    assert.equal(st.status, 'synced', st.message);
    assert.equal(await fn('httpsns'), '200 v1');
  });

  it('takes an inline auth {username, token} at registration and stores it as a credential named after the app', async () => {
    const st = await register('inl', 'inline', https.url(repo.dir), { auth: { username: 'bob', token: PW_INLINE, caCert: https.certPem } });
    assert.equal(st.status, 'synced', st.message);
    const cred = (await call<Record<string, unknown>>('GET', '/credentials/inl?namespace=inline')).body;
    assert.equal(cred.urlPrefix, https.url(repo.dir));
    assert.equal(cred.username, 'bob');
    assert.equal(cred.type, 'https');
  });

  it('moves user:password@ out of an https repoURL: stored and shown without it', async () => {
    const bare = https.url(repo.dir);
    const withPw = bare.replace('https://', `https://carol:${encodeURIComponent(PW_URL)}@`);
    // the server's certificate is trusted through git's own GIT_SSL_CAINFO here
    const caFile = join(dataDir, '..', `zv-ca-${process.pid}.pem`);
    await writeFile(caFile, https.certPem);
    process.env.GIT_SSL_CAINFO = caFile;
    try {
      const r = await call<AppStatus>('POST', '/gitops/applications', { name: 'urlpw', namespace: 'urlns', source: { repoURL: withPw } });
      assert.equal(r.status, 201);
      assert.equal(r.body.source.repoURL, bare);
      const st = await settled('urlpw', 'urlns');
      assert.equal(st.status, 'synced', st.message);
      assert.equal(st.source.repoURL, bare);
      const list = (await call<{ applications: AppStatus[] }>('GET', '/gitops/applications?namespace=urlns')).body;
      assert.equal(list.applications[0]?.source.repoURL, bare);
      const cred = (await call<Record<string, unknown>>('GET', '/credentials/urlpw?namespace=urlns')).body;
      assert.equal(cred.username, 'carol');
      assert.equal(cred.urlPrefix, bare);
      // Without any credential, the same server asks for one: GIT_AUTH_FAILED, clearly.
      const none = await register('nocred', 'nocredns', bare);
      assert.equal(none.status, 'error');
      assert.match(none.message, /^GIT_AUTH_FAILED: .*no credential matches it/);
    } finally {
      delete process.env.GIT_SSL_CAINFO;
      await rm(caFile, { force: true });
    }
  });

  it('a wrong password or key is GIT_AUTH_FAILED naming the credential, and the last good revision keeps serving', async () => {
    const bad = await call('POST', '/credentials', { name: 'wrong', namespace: 'wrongns', urlPrefix: `https://127.0.0.1:${https.port}/`, username: 'alice', password: 'not-the-password', caCert: https.certPem });
    assert.equal(bad.status, 201);
    const st = await register('app', 'wrongns', https.url(repo.dir));
    assert.equal(st.status, 'error');
    assert.match(st.message, /^GIT_AUTH_FAILED: .*refused credential 'wrong'/);
    assert.ok(!st.message.includes('not-the-password'));

    const other = await sshd.otherKey();
    assert.equal((await call('POST', '/credentials', { name: 'otherkey', namespace: 'wrongssh', urlPrefix: `ssh://${sshd.user}@127.0.0.1:${sshd.port}`, sshPrivateKey: other })).status, 201);
    const ss = await register('app', 'wrongssh', sshd.url(repo.dir));
    assert.equal(ss.status, 'error');
    assert.match(ss.message, /^GIT_AUTH_FAILED: .*refused credential 'otherkey'.*Permission denied/s);
    assert.ok(!ss.message.includes(other.split('\n')[1] ?? '-'));
  });

  it('a namespace without the credential is not served the private repository from the shared clone', async () => {
    // sshns has fetched this repository; the same URL in another namespace has no credential.
    const st = await register('app', 'stranger', sshd.url(repo.dir));
    assert.equal(st.status, 'error');
    assert.match(st.message, /^GIT_AUTH_FAILED: /);
    assert.equal(st.source.commit, null);
    assert.match(await fn('stranger'), /^404 /);
  });

  it('measures a sync over file://, ssh and https (printed)', async () => {
    const st = await register('app', 'filens', repo.url);
    assert.equal(st.status, 'synced', st.message);
    const times: Record<string, number[]> = { file: [], ssh: [], https: [] };
    for (let round = 2; round <= 6; round++) {
      await repo.commit({ 'zerverless.yaml': manifest(`v${round}`) });
      for (const [kind, ns] of [['file', 'filens'], ['ssh', 'sshns'], ['https', 'httpsns']] as const) {
        const t0 = performance.now();
        const r = await call<AppStatus>('POST', `/gitops/applications/app/sync?namespace=${ns}`);
        (times[kind] as number[]).push(performance.now() - t0);
        assert.equal(r.body.status, 'synced', r.body.message);
        assert.equal(await fn(ns), `200 v${round}`);
      }
    }
    // Once more while the process list is sampled (not timed: sampling loads the machine).
    await repo.commit({ 'zerverless.yaml': manifest('v7') });
    for (const ns of ['sshns', 'httpsns', 'sshns', 'httpsns']) {
      const r = await sampled(() => call<AppStatus>('POST', `/gitops/applications/app/sync?namespace=${ns}`));
      assert.equal(r.body.status, 'synced', r.body.message);
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const base = median(times.file as number[]);
    for (const [kind, xs] of Object.entries(times)) {
      console.log(`# sync after a new commit over ${kind}: median ${median(xs).toFixed(0)} ms (${(median(xs) / base).toFixed(2)}× file://) runs: ${xs.map((x) => x.toFixed(0)).join(', ')}`);
    }
  });

  it('a credential with knownHosts given checks them; a changed host key is HOST_KEY_CHANGED', async () => {
    const given = await call('POST', '/credentials', { name: 'given', namespace: 'givenns', urlPrefix: `ssh://${sshd.user}@127.0.0.1:${sshd.port}/`, sshPrivateKey: sshKey, knownHosts: await sshd.knownHosts() });
    assert.equal(given.status, 201);
    const ok = await register('app', 'givenns', sshd.url(repo.dir));
    assert.equal(ok.status, 'synced', ok.message);

    await sshd.rotateHostKey();
    await repo.commit({ 'zerverless.yaml': manifest('after-rotation') });
    for (const ns of ['sshns', 'givenns']) {
      const r = await call<AppStatus>('POST', `/gitops/applications/app/sync?namespace=${ns}`);
      assert.equal(r.body.status, 'error');
      assert.match(r.body.message, /^HOST_KEY_CHANGED: the SSH host key of ssh:\/\/.* does not match .*the server sent ED25519 key SHA256:/);
      assert.equal(await fn(ns), '200 v7', 'the last good revision keeps serving');
    }
    const pinned = (await call<Record<string, string>>('GET', '/credentials/deploy-key?namespace=sshns')).body;
    assert.notEqual(pinned.knownHosts?.split(' ')[2], (await sshd.knownHosts()).split(' ')[2], 'the pin is not replaced by the new key');
  });

  it('credentials are namespace-scoped: deployers manage their own, namespace * needs an admin, lists are filtered', async () => {
    const mk = async (role: string, namespaces?: string[]): Promise<string> => {
      const r = await call<{ token: string }>('POST', '/tokens', { name: `t-${role}-${Date.now()}`, role, ...(namespaces ? { namespaces } : {}) });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.token;
    };
    const deployer = await mk('deployer', ['sshns']);
    const reader = await mk('reader', ['httpsns']);
    const body = (namespace: string, name = 'c2'): Record<string, string> => ({ name, namespace, urlPrefix: `https://127.0.0.1:${https.port}/x`, username: 'u', password: 'p-deployer-secret' });
    assert.equal((await call('POST', '/credentials', body('sshns'), deployer)).status, 201);
    assert.equal((await call('POST', '/credentials', body('httpsns'), deployer)).status, 403);
    assert.equal((await call('POST', '/credentials', body('*'), deployer)).status, 403);
    assert.equal((await call('POST', '/credentials', body('httpsns'), reader)).status, 403);
    assert.equal((await call('POST', '/credentials', body('*', 'global'))).status, 201, 'an admin may');
    assert.equal((await call('DELETE', '/credentials/https-cred?namespace=httpsns', undefined, deployer)).status, 403);
    assert.equal((await call('DELETE', '/credentials/global?namespace=*', undefined, deployer)).status, 403);
    const seen = (await call<{ credentials: { namespace: string }[] }>('GET', '/credentials', undefined, deployer)).body.credentials;
    assert.deepEqual([...new Set(seen.map((c) => c.namespace))].sort(), ['*', 'sshns']);
    const seenR = (await call<{ credentials: { namespace: string }[] }>('GET', '/credentials', undefined, reader)).body.credentials;
    assert.deepEqual([...new Set(seenR.map((c) => c.namespace))].sort(), ['*', 'httpsns']);
    assert.equal((await call('GET', '/credentials?namespace=urlns', undefined, reader)).status, 403);
    assert.equal((await call('GET', '/credentials', undefined, 'zv_nope')).status, 401);
    assert.equal((await call('DELETE', '/credentials/c2?namespace=sshns', undefined, deployer)).status, 204);
    assert.equal((await call('GET', '/credentials/c2?namespace=sshns')).status, 404);
    assert.equal((await call('DELETE', '/credentials/global?namespace=*')).status, 204);
  });

  it('after a restart the sealed credentials still open (master.key), and a --repo URL with a password becomes a credential', async () => {
    await server.close();
    const bare = https.url(repo.dir);
    const caFile = join(dataDir, '..', `zv-ca-boot-${process.pid}.pem`);
    await writeFile(caFile, https.certPem);
    process.env.GIT_SSL_CAINFO = caFile;
    try {
      const config = resolveServeConfig({ port: 0, 'allow-file-repos': true, 'data-dir': dataDir, 'poll-interval': '1h' }, {}, {});
      const repoCfg = { url: bare.replace('https://', `https://dave:${PW_BOOT}@`), branch: 'main', appsDir: 'apps', namespace: 'bootns', name: 'boot' };
      server = await startServer({ ...config, repo: repoCfg }, { logger: createLogger({ level: 'debug', destination: sink }) });
      const boot = await settled('boot', 'bootns');
      assert.equal(boot.status, 'synced', boot.message);
      assert.equal(boot.source.repoURL, bare);
      assert.equal((await call<Record<string, unknown>>('GET', '/credentials/boot?namespace=bootns')).body.username, 'dave');
    } finally {
      delete process.env.GIT_SSL_CAINFO;
      await rm(caFile, { force: true });
    }
    await repo.commit({ 'zerverless.yaml': manifest('after-restart') });
    const r = await call<AppStatus>('POST', '/gitops/applications/app/sync?namespace=httpsns');
    assert.equal(r.body.status, 'synced', r.body.message);
    assert.equal(await fn('httpsns'), '200 after-restart');
  });

  it('no secret anywhere: data dir (state.db included), API answers, server log, process list', async () => {
    // the answers this test has not asked for yet
    for (const [name, ns] of [['app', 'sshns'], ['app', 'httpsns'], ['inl', 'inline'], ['urlpw', 'urlns'], ['app', 'wrongns'], ['app', 'stranger']]) {
      await call('GET', `/gitops/applications/${name}?namespace=${ns}`);
      await call('GET', `/gitops/applications/${name}/syncs?namespace=${ns}`);
    }
    await call('GET', '/gitops/applications');
    await call('GET', '/credentials');
    const keyLines = sshKey.split('\n').filter((l) => l.length >= 20 && !l.startsWith('-----'));
    const secrets = [PW_API, PW_INLINE, PW_URL, encodeURIComponent(PW_URL), PW_BOOT, 'p-deployer-secret', 'not-the-password', ...keyLines];
    assert.ok(keyLines.length >= 3);

    const files = await filesUnder(dataDir);
    assert.ok(files.some((f) => f.endsWith('state.db')));
    // A git run under way (a background retry of a failing application) holds its credential in
    // <data>/git/tmp/auth-*/ (mode 0700) for as long as git runs: by design. Everything else must
    // never hold a secret, and those folders must be gone once git has ended.
    const inFlight = join(dataDir, 'git', 'tmp', 'auth-');
    for (const f of files) {
      if (f.startsWith(inFlight)) continue;
      // garbage collection may remove an old artifact meanwhile
      const buf = await readFile(f).catch(() => null);
      if (!buf) continue;
      for (const s of secrets) assert.ok(!buf.includes(Buffer.from(s)), `a secret is in ${f}`);
    }
    const tmpDeadline = Date.now() + 60_000;
    let left = await readdir(join(dataDir, 'git', 'tmp'));
    while (left.length > 0 && Date.now() < tmpDeadline) {
      await new Promise((r) => setTimeout(r, 100));
      left = await readdir(join(dataDir, 'git', 'tmp'));
    }
    assert.deepEqual(left, [], 'no credential files are left behind once git has ended');
    assert.equal((await stat(join(dataDir, 'master.key'))).mode & 0o777, 0o600);

    // Our own git and ssh processes name files under <data>/git (the clone, the key, the askpass script).
    const ours = join(dataDir, 'git');
    const sshRuns = psSamples.filter((s) => s.split('\n').some((l) => l.startsWith('ssh ') && l.includes(ours))).length;
    const gitRuns = psSamples.filter((s) => s.split('\n').some((l) => l.startsWith('git ') && l.includes(ours))).length;
    const askpassRuns = psSamples.filter((s) => s.includes(join(ours, 'askpass'))).length;
    console.log(`# ${psSamples.length} process-list samples: ${sshRuns} caught our ssh, ${gitRuns} our git fetch, ${askpassRuns} our askpass; `
      + `${answers.length} API answers; ${files.length} files in the data dir; ${logText.split('\n').length} log lines`);
    assert.ok(sshRuns > 0 && gitRuns > 0, 'the process list was sampled while git and ssh ran');
    const places: [string, string][] = [['API answers', answers.join('\n')], ['server log', logText], ['process list', psSamples.join('\n')]];
    for (const [where, text] of places) {
      for (const s of secrets) assert.ok(!text.includes(s), `a secret is in the ${where}`);
    }
  });

  it('deleting an application removes the credential its inline auth made (and no other)', async () => {
    assert.equal((await call('GET', '/credentials/inl?namespace=inline')).status, 200);
    assert.equal((await call('DELETE', '/gitops/applications/inl?namespace=inline')).status, 204);
    assert.equal((await call('GET', '/credentials/inl?namespace=inline')).status, 404);
  });
});
