// The published package as a user gets it: `npm pack`, unpacked elsewhere, runs `serve --example`
// (examples/ must be in the tarball) and answers --version.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('the packed npm package', () => {
  let dir: string;
  let pkg: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-pack-'));
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    const packed = spawnSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, npm_config_ignore_scripts: 'true' } });
    assert.equal(packed.status, 0, packed.stderr);
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    assert.ok(info);
    const paths = new Set(info.files.map((f) => f.path));
    for (const need of ['bin/zerverless.js', 'dist/cli/main.js', 'examples/hello/zerverless.yaml', 'schema/zerverless.schema.json', 'README.md', 'dist/console/index.html']) {
      assert.ok(paths.has(need), `${need} is missing from the tarball`);
    }
    const untar = spawnSync('tar', ['-xzf', join(dir, info.filename), '-C', dir], { encoding: 'utf8' });
    assert.equal(untar.status, 0, untar.stderr);
    pkg = join(dir, 'package');
    // The dependencies as npm would install them (the native ones are already built here).
    await symlink(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers --version with the package version', async () => {
    const r = spawnSync(process.execPath, [join(pkg, 'bin/zerverless.js'), '--version'], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout.trim(), version);
  });

  it('serves the bundled example from the installed package', async () => {
    const dataDir = join(dir, 'data');
    const child = spawn(process.execPath, [join(pkg, 'bin/zerverless.js'), 'serve', '--example', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 60_000;
      while (!/shown once/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      const url = /serving on (http:\/\/\S+)/.exec(out)?.[1];
      const token = /\n\s+(zv_\S+)/.exec(out)?.[1];
      assert.ok(url && token, `no URL or token printed: ${out}`);
      let body = '';
      while (Date.now() < deadline) {
        const r = await fetch(`${url}/demo/api/hello`);
        body = await r.text();
        if (r.status === 200) break;
        await new Promise((r2) => setTimeout(r2, 100));
      }
      assert.equal(body, 'Hello from GitOps!');
      // The web console is served from the installed package's dist/console.
      const ui = await fetch(`${url}/ui`);
      assert.equal(ui.status, 200, await ui.text());
    } finally {
      child.kill('SIGTERM');
    }
  });
});
