// `zerverless serve` failing to start as a user meets it: the data dir already in use, the port
// already taken. The process must exit with a clear error and leave nothing behind.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHarness, type Harness } from '../support/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/zerverless.js');

function run(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('serve: refusing to start', () => {
  let h: Harness;

  before(async () => {
    if (!existsSync(join(ROOT, 'dist/cli/main.js'))) {
      const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(b.status, 0, b.stderr);
    }
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('a second server on the same data dir exits with DATA_DIR_LOCKED', async () => {
    const r = await run(['serve', '--port', '0', '--data-dir', h.dataDir, '--log-level', 'error']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /DATA_DIR_LOCKED: the data dir .* is in use by another zerverless server \(pid \d+/);
    assert.equal((await h.get('/healthz')).status, 200, 'the first server keeps serving');
  });

  it('a taken port ends the process (no server left holding state.db), and the data dir is free again', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const dataDir = await mkdtemp(join(tmpdir(), 'zv-port-'));
    try {
      const r = await run(['serve', '--port', String(port), '--data-dir', dataDir, '--log-level', 'error']);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /CONFIG_INVALID: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
      assert.ok(!existsSync(join(dataDir, 'server.lock')), 'the lock is released');
    } finally {
      blocker.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('Ctrl-C (SIGINT to the whole process group) stops the server cleanly: exit 0, the data dir lock released', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'zv-sigint-'));
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 60_000;
      while (!/serving on/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      assert.ok(existsSync(join(dataDir, 'server.lock')), out);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      process.kill(-(child.pid as number), 'SIGINT'); // as a terminal does: every process of the group
      assert.equal(await exited, 0, out);
      assert.ok(!existsSync(join(dataDir, 'server.lock')), 'the lock is released');
    } finally {
      try { process.kill(-(child.pid as number), 'SIGKILL'); } catch { /* gone */ }
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('CLI errors: an unreachable server is SERVER_UNREACHABLE, and --json prints errors as JSON', async () => {
    const r = await run(['apps', 'list', '--server', 'http://127.0.0.1:1', '--token', 'x', '--json']);
    assert.equal(r.code, 1);
    const err = JSON.parse(r.out) as { error: { code: string; message: string } };
    assert.equal(err.error.code, 'SERVER_UNREACHABLE');
    assert.match(err.error.message, /cannot reach http:\/\/127\.0\.0\.1:1/);
  });
});
