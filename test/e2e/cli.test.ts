// The `zerverless` command as a user runs it: bin/zerverless.js (compiled dist/), over real HTTP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/zerverless.js');

// Asynchronous: the server under test runs in this process and must keep answering.
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const MANIFEST = (body: string) => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: web
spec:
  functions:
    - path: /hi
      runtime: lua
      code: |
        function handle(req) return "${body}" end
`;

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
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('apps add | list | get | sync | delete against a running server', async () => {
    const s = `--server=${h.url}`;
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
    const rows = hist.stdout.trim().split('\n');
    assert.match(rows[0] ?? '', /STARTED\s+RESULT\s+COMMIT\s+CHANGES/);
    assert.match(rows[1] ?? '', /error/);
    assert.match(rows[2] ?? '', /success .* \+0 ~1 -0 =0/);
    const histJson = JSON.parse((await cli('apps', 'history', 'web', s, '--json')).stdout);
    assert.equal(histJson.syncs[1].plan.functions[0].action, 'update');
    assert.equal(histJson.syncs[1].plan.toCommit, histJson.syncs[1].commit);

    const missing = await cli('apps', 'get', 'nope', s);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /APP_NOT_FOUND/);

    const del = await cli('apps', 'delete', 'web', s);
    assert.equal(del.code, 0, del.stderr);
    assert.equal((await h.get('/cli/hi')).status, 404);
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
      const deadline = Date.now() + 30_000;
      while (!/serving on (http:\/\/\S+)/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const url = /serving on (http:\/\/\S+)/.exec(out)?.[1];
      assert.ok(url, `no URL printed: ${out}`);
      let status = '';
      while (status !== 'synced' && Date.now() < deadline) {
        status = ((await (await fetch(`${url}/api/gitops/applications/example`)).json()) as { status: string }).status;
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
