// The `zerverless` command as a user runs it: bin/zerverless.js (compiled dist/), over real HTTP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { luaManifest } from './fixtures.js';
import { envWithoutServer, runNode, type ProcessResult } from '../support/cli-src.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/zerverless.js');

// XDG_CONFIG_HOME is a temp dir so that `zerverless login` never touches the user's config.
let cliEnv: NodeJS.ProcessEnv = envWithoutServer();
const cli = (...args: string[]): Promise<ProcessResult> => runNode([BIN, ...args], { env: cliEnv, timeout: 60_000 });

const MANIFEST = (body: string): string => luaManifest(body);

describe('zerverless CLI', () => {
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    if (!existsSync(join(ROOT, 'dist/cli/main.js'))) {
      const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(b.status, 0, b.stderr);
    }
    h = await startHarness();
    repo = await TestRepo.create({ 'zerverless.yaml': MANIFEST('one') });
    cliEnv = { ...cliEnv, XDG_CONFIG_HOME: await mkdtemp(join(tmpdir(), 'zv-xdg-')) };
  });
  after(async () => {
    await h.close();
    await repo.remove();
    await rm(cliEnv.XDG_CONFIG_HOME as string, { recursive: true, force: true });
  });

  it('apps add | list | get | sync | delete against a running server', async () => {
    // No --token: the CLI on the server's host reads <data-dir>/admin-token.
    const s = `--server=${h.url}`;
    const noToken = await cli('apps', 'list', s);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /UNAUTHENTICATED/);
    cliEnv.ZV_DATA_DIR = h.dataDir;
    const add = await cli('apps', 'add', 'web', repo.url, '--namespace', 'cli', s, '--json');
    assert.equal(add.code, 0, add.stderr);
    assert.equal(JSON.parse(add.stdout).name, 'web');
    await h.waitFor('web', (st) => st.status === 'synced');

    const list = await cli('apps', 'list', s);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /cli\s+web\s+synced/);

    const get = await cli('apps', 'get', 'web', s, '--json');
    assert.equal(JSON.parse(get.stdout).source.commit, repo.head());

    await repo.commit({ 'zerverless.yaml': MANIFEST('two') });
    const sync = await cli('apps', 'sync', 'web', s);
    assert.equal(sync.code, 0, sync.stderr);
    assert.match(sync.stdout, /cli\/web: synced/);
    assert.equal(await (await h.get('/cli/hi')).text(), 'two');

    await repo.commit({ 'zerverless.yaml': 'kind: [' });
    const bad = await cli('apps', 'sync', 'web', s);
    assert.equal(bad.code, 1, 'a failed sync exits 1');
    assert.match(bad.stdout, /error/);

    const hist = await cli('apps', 'history', 'web', s);
    assert.equal(hist.code, 0, hist.stderr);
    // One row per sync, each followed by indented lines (what changed, the commit, the error).
    const rows = hist.stdout.trim().split('\n').filter((l) => !l.startsWith(' '));
    assert.match(rows[0] ?? '', /STARTED\s+RESULT\s+COMMIT\s+CHANGES\s+BY/);
    assert.match(rows[1] ?? '', /error .* token /);
    assert.match(rows[2] ?? '', /success .* \+0 ~1 -0 =0/);
    assert.match(hist.stdout, /^ {4}functions: ~\/hi \(code\)$/m, 'the function that changed, and what of it');
    assert.match(hist.stdout, /^ {4}error: /m);
    const histJson = JSON.parse((await cli('apps', 'history', 'web', s, '--json')).stdout);
    assert.equal(histJson.syncs[1].plan.functions[0].action, 'update');
    assert.equal(histJson.syncs[1].plan.toCommit, histJson.syncs[1].commit);

    const missing = await cli('apps', 'get', 'nope', s);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /APP_NOT_FOUND/);

    const del = await cli('apps', 'delete', 'web', s);
    assert.equal(del.code, 0, del.stderr);
    assert.equal((await h.get('/cli/hi')).status, 404);
    delete cliEnv.ZV_DATA_DIR;
  });

  it('login, tokens create | list | revoke, and the token name in the history', async () => {
    const s = `--server=${h.url}`;
    const admin = `--token=${h.token}`;
    const made = await cli('tokens', 'create', 'ci-deployer', '--role', 'deployer', '--namespace', 'team', s, admin, '--json');
    assert.equal(made.code, 0, made.stderr);
    const tok = JSON.parse(made.stdout) as { id: string; token: string };
    assert.match(tok.token, /^zv_[A-Za-z0-9_-]{43}$/);

    const login = await cli('login', s, `--token=${tok.token}`);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /as 'ci-deployer' \(deployer, namespaces team\)/);
    const kept = join(cliEnv.XDG_CONFIG_HOME as string, 'zerverless', 'login.json');
    assert.equal(statSync(kept).mode & 0o777, 0o600);

    // Later commands use the kept token without --server or --token.
    await repo.commit({ 'zerverless.yaml': MANIFEST('three') });
    const add = await cli('apps', 'add', 'tokweb', repo.url, '--namespace', 'team');
    assert.equal(add.code, 0, add.stderr);
    await h.waitFor('tokweb', (st) => st.status === 'synced', 120_000, 'team');
    const other = await cli('apps', 'add', 'x', repo.url, '--namespace', 'elsewhere');
    assert.equal(other.code, 1);
    assert.match(other.stderr, /FORBIDDEN/);
    const hist = await cli('apps', 'history', 'tokweb');
    assert.match(hist.stdout, /success .* ci-deployer/);
    const listNo = await cli('tokens', 'list');
    assert.match(listNo.stderr, /FORBIDDEN/, 'a deployer cannot list tokens');

    const list = await cli('tokens', 'list', s, admin);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /ci-deployer\s+deployer\s+team/);
    assert.ok(!list.stdout.includes(tok.token), 'the secret is never listed');
    const revoke = await cli('tokens', 'revoke', tok.id, s, admin);
    assert.equal(revoke.code, 0, revoke.stderr);
    const after = await cli('apps', 'list');
    assert.match(after.stderr, /UNAUTHENTICATED/);
  });

  it('reports an unreachable server clearly', async () => {
    const r = await cli('apps', 'list', '--server=http://127.0.0.1:1');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/);
  });

  it('validate exits 0 on a valid folder and 1 with file:line:col lines otherwise', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zv-validate-'));
    try {
      await writeFile(join(dir, 'zerverless.yaml'), MANIFEST('ok'));
      const ok = await cli('validate', dir);
      assert.equal(ok.code, 0, ok.stderr);
      await writeFile(join(dir, 'zerverless.yaml'), MANIFEST('ok').replace('runtime: lua', 'runtime: cobol').replace('path: /hi', 'path: hi'));
      const bad = await cli('validate', dir);
      assert.equal(bad.code, 1);
      const lines = bad.stderr.trim().split('\n');
      assert.ok(lines.some((l) => /^zerverless\.yaml:7:7: .*path/.test(l)), bad.stderr);
      assert.ok(lines.some((l) => /^zerverless\.yaml:8:7: .*runtime/.test(l)), bad.stderr);
      // The code is compiled too: a Lua function missing its `end` is not valid.
      await writeFile(join(dir, 'zerverless.yaml'), MANIFEST('ok').replace(' return "ok" end', ' return "ok"'));
      const noEnd = await cli('validate', dir);
      assert.equal(noEnd.code, 1, noEnd.stdout);
      assert.match(noEnd.stderr, /^zerverless\.yaml:\d+:\d+: \/hi: 'end' expected/m);
      assert.equal((await cli('validate', dir, '--no-compile')).code, 0, '--no-compile checks only the files');
      await mkdir(join(dir, 'empty'));
      assert.equal((await cli('validate', join(dir, 'empty'))).code, 1);
      assert.equal((await cli('validate', join(ROOT, 'examples/hello'))).code, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serve --example starts the platform with the example app and stops on SIGTERM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'zv-serve-'));
    const child = spawn(process.execPath, [BIN, 'serve', '--example', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 120_000; // start, banner and the example's first sync, on a loaded machine too
      while (!/serving on (http:\/\/\S+)/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const url = /serving on (http:\/\/\S+)/.exec(out)?.[1];
      assert.ok(url, `no URL printed: ${out}`);
      while (!/shown once/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // The banner shows the admin token once and says where it is kept.
      const token = /admin token \(shown once; also in (\S+), mode 0600\):\n\s+(zv_\S+)/.exec(out);
      assert.ok(token, `no admin token in the banner: ${out}`);
      assert.equal(token[1], join(dataDir, 'admin-token'));
      assert.equal(statSync(join(dataDir, 'admin-token')).mode & 0o777, 0o600);
      const auth = { authorization: `Bearer ${token[2]}` };
      assert.equal((await fetch(`${url}/api/gitops/applications/example`)).status, 401);
      let status = '';
      while (status !== 'synced' && Date.now() < deadline) {
        status = ((await (await fetch(`${url}/api/gitops/applications/example`, { headers: auth })).json()) as { status: string }).status;
        if (status === 'error') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 'synced');
      assert.equal(await (await fetch(`${url}/demo/api/hello`)).text(), 'Hello from GitOps!');
      assert.match(await (await fetch(`${url}/demo/api/python?name=ci`)).text(), /Hello, ci!/);
      assert.match(await (await fetch(`${url}/demo/api/js`)).text(), /Hello from JavaScript/);
      assert.match(await (await fetch(`${url}/static/demo/`)).text(), /Served by zerverless/);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
