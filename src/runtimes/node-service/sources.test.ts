// The Node service runtime fetching real sources: a git repository (file://) by branch, tag and
// commit; a release tarball from a loopback server (a wrong sha256 is refused before unpacking);
// `node <main>` without a start script; install by lockfile and the build script; reuse of a ready
// version folder by a new runtime (after a restart) without fetching again.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isZvError } from '../../errors/registry.js';
import { TestRepo } from '../../../test/support/repo.js';
import { failureOf, versionFolder } from './index.js';
import type { NodeServiceRuntime } from './index.js';
import { which } from './exec.js';
import { fileServer, makeSpec, makeTarball, runtime, serviceFiles, tempDir, viaUpstream } from './fixtures.test.js';

describe('node services: sources', () => {
  let repo: TestRepo;
  let dataDir: string;
  let rt: NodeServiceRuntime;
  let c1 = '';
  let c2 = '';

  before(async () => {
    repo = await TestRepo.create(serviceFiles('1.0.0'));
    c1 = repo.head();
    repo.git('tag', 'v1.0.0');
    c2 = await repo.commit(serviceFiles('1.1.0'));
    dataDir = await tempDir();
    rt = runtime(dataDir, { portRange: [41000, 41199] });
  });
  after(async () => {
    await rt.close();
    await repo.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('deploys from git by branch, by tag and by commit', async () => {
    const cases = [
      { name: 'by-branch', ref: 'main', want: '1.1.0' },
      { name: 'by-tag', ref: 'v1.0.0', want: '1.0.0' },
      { name: 'by-commit', ref: c1, want: '1.0.0' },
      { name: 'by-short', ref: c2.slice(0, 10), want: '1.1.0' },
    ];
    for (const c of cases) {
      await rt.deploy(makeSpec(c.name, { version: c.want, source: { type: 'git', url: repo.url, ref: c.ref } }));
      const r = await viaUpstream(rt, c.name);
      assert.equal(r.json.version, c.want, c.name);
      const st = (await rt.getCurrentState()).find((s) => s.name === c.name);
      assert.equal(st?.status, 'running');
      assert.equal(st?.health, 'healthy');
      assert.ok(st?.pid && st.port && st.port >= 41000 && st.port <= 41199);
      // No .git in the version folder: it holds only the checked-out tree.
      const spec = makeSpec(c.name, { version: c.want, source: { type: 'git', url: repo.url, ref: c.ref } });
      assert.ok(existsSync(join(dataDir, 'services', c.name, versionFolder(spec), 'server.js')));
      assert.ok(!existsSync(join(dataDir, 'services', c.name, versionFolder(spec), '.git')));
    }
    assert.ok(rt.logs('by-commit').some((l) => l.includes(`checked out ${c1} at ${c1}`)));
    await assert.rejects(rt.deploy(makeSpec('no-ref', { source: { type: 'git', url: repo.url, ref: 'nope' } })), (e) => isZvError(e, 'GIT_REF_NOT_FOUND'));
    assert.equal((await rt.getCurrentState()).find((s) => s.name === 'no-ref')?.status, 'failed');
  });

  it('deploys a release tarball and refuses a wrong sha256 before unpacking', async () => {
    const good = await makeTarball(serviceFiles('2.0.0'));
    const srv = await fileServer({ '/svc-2.0.0.tgz': good.bytes });
    try {
      const bad = '0'.repeat(64);
      const badSpec = makeSpec('rel-bad', { version: '2.0.0', source: { type: 'release', url: `${srv.url}/svc-2.0.0.tgz`, sha256: bad } });
      await assert.rejects(rt.deploy(badSpec), (e) => {
        assert.equal(failureOf(e), 'checksum');
        assert.match((e as Error).message, new RegExp(`expected ${bad}, got ${good.sha256}`));
        return true;
      });
      // Nothing was unpacked: no version folder, no leftover work folder.
      const left = await readdir(join(dataDir, 'services', 'rel-bad')).catch(() => []);
      assert.deepEqual(left.filter((e) => e !== 'pids.json'), []);

      await rt.deploy(makeSpec('rel', { version: '2.0.0', source: { type: 'release', url: `${srv.url}/svc-2.0.0.tgz`, sha256: good.sha256.toUpperCase() } }));
      assert.equal((await viaUpstream(rt, 'rel')).json.version, '2.0.0');
      await assert.rejects(rt.deploy(makeSpec('rel-404', { source: { type: 'release', url: `${srv.url}/missing.tgz`, sha256: good.sha256 } })),
        (e) => failureOf(e) === 'fetch' && /HTTP 404/.test((e as Error).message));
    } finally {
      await srv.close();
    }
  });

  it('starts node <main> without a start script, and passes only env, PORT and basics', async () => {
    process.env.ZV_TEST_SECRET = 'host-secret';
    try {
      const files = serviceFiles('3.0.0', { scripts: {}, main: 'server.js' });
      const r2 = await TestRepo.create(files);
      try {
        await rt.deploy(makeSpec('main-only', { version: '3.0.0', env: { GREETING: 'hi' }, source: { type: 'git', url: r2.url, ref: 'main' } }));
        const r = await viaUpstream(rt, 'main-only');
        assert.equal(r.json.greeting, 'hi');
        const env = r.json.env as string[];
        assert.ok(env.includes('PORT') && env.includes('PATH') && env.includes('GREETING'));
        assert.ok(!env.includes('ZV_TEST_SECRET'), `host variables leaked: ${env.join(' ')}`);
        assert.ok(!env.some((k) => k.startsWith('npm_')), 'node <main> runs without npm');
      } finally {
        await r2.remove();
      }
    } finally {
      delete process.env.ZV_TEST_SECRET;
    }
  });

  it('installs by lockfile (npm ci) and runs the build script; the install output is in the log', async () => {
    const files = {
      ...serviceFiles('4.0.0', { dependencies: { 'zv-local-dep': 'file:./dep' }, scripts: { start: 'node server.js', build: 'node build.js' } }),
      'dep/package.json': JSON.stringify({ name: 'zv-local-dep', version: '1.0.0', main: 'index.js' }),
      'dep/index.js': 'module.exports = "from-dep";\n',
      'build.js': 'require("node:fs").writeFileSync("built.txt", require("zv-local-dep")); console.log("build done");\n',
    };
    const r2 = await TestRepo.create(files);
    try {
      // A real lockfile, made by npm itself, so the runtime must pick `npm ci`.
      execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], { cwd: r2.dir, stdio: 'ignore' });
      await r2.commit({}, 'lockfile');
      await rt.deploy(makeSpec('built', { version: '4.0.0', source: { type: 'git', url: r2.url, ref: 'main' } }));
      const dir = join(dataDir, 'services', 'built', versionFolder(makeSpec('built', { version: '4.0.0', source: { type: 'git', url: r2.url, ref: 'main' } })));
      assert.ok(existsSync(join(dir, 'node_modules', 'zv-local-dep')));
      assert.ok(existsSync(join(dir, 'built.txt')));
      const log = rt.logs('built');
      assert.ok(log.some((l) => l.includes('npm ci (package-lock.json)')), log.join('\n'));
      assert.ok(log.some((l) => / stdout \[npm run\] build done/.test(l)), log.join('\n'));
    } finally {
      await r2.remove();
    }
  });

  for (const [tool, lockfile] of [['pnpm', 'pnpm-lock.yaml'], ['yarn', 'yarn.lock']] as const) {
    it(`names ${tool} when ${lockfile} needs it and it is not installed`, async (t) => {
      if (await which(tool)) return t.skip(`${tool} is installed here`);
      const r2 = await TestRepo.create({ ...serviceFiles('5.0.0'), [lockfile]: '# lockfile\n' });
      try {
        await assert.rejects(rt.deploy(makeSpec(tool, { version: '5.0.0', source: { type: 'git', url: r2.url, ref: 'main' } })), (e) => {
          assert.equal(failureOf(e), 'tool-missing');
          assert.ok(isZvError(e, 'RUNTIME_UNAVAILABLE'));
          assert.match((e as Error).message, new RegExp(`${lockfile.replace('.', '\\.')} needs ${tool}`));
          return true;
        });
      } finally {
        await r2.remove();
      }
    });
  }

  for (const [tool, lockfile, lockArgs] of [
    ['pnpm', 'pnpm-lock.yaml', ['install', '--lockfile-only']],
    ['yarn', 'yarn.lock', ['install', '--ignore-scripts', '--no-progress']],
  ] as const) {
    it(`installs by ${lockfile} with ${tool} when it is installed`, async (t) => {
      if (!(await which(tool))) {
        if (process.env.CI === 'true') assert.fail(`${tool} must be installed in CI (.ci/run installs it)`);
        return t.skip(`${tool} is not installed`);
      }
      const files = {
        ...serviceFiles('7.0.0', { dependencies: { 'zv-local-dep': 'file:./dep' }, scripts: { start: 'node server.js', build: 'node build.js' } }),
        'dep/package.json': JSON.stringify({ name: 'zv-local-dep', version: '1.0.0', main: 'index.js' }),
        'dep/index.js': 'module.exports = "from-dep";\n',
        'build.js': 'require("node:fs").writeFileSync("built.txt", require("zv-local-dep"));\n',
      };
      const r2 = await TestRepo.create(files);
      try {
        execFileSync(tool, [...lockArgs], { cwd: r2.dir, stdio: 'ignore' });
        await rm(join(r2.dir, 'node_modules'), { recursive: true, force: true });
        assert.ok(existsSync(join(r2.dir, lockfile)), `${tool} made no ${lockfile}`);
        await r2.commit({}, 'lockfile');
        const spec = makeSpec(`by-${tool}`, { version: '7.0.0', source: { type: 'git', url: r2.url, ref: 'main' } });
        await rt.deploy(spec);
        const dir = join(dataDir, 'services', `by-${tool}`, versionFolder(spec));
        assert.ok(existsSync(join(dir, 'node_modules', 'zv-local-dep')));
        assert.ok(existsSync(join(dir, 'built.txt')));
        assert.ok(rt.logs(`by-${tool}`).some((l) => l.includes(`${tool} install --frozen-lockfile`) || l.includes(`(${lockfile})`)), rt.logs(`by-${tool}`).join('\n'));
        assert.equal((await viaUpstream(rt, `by-${tool}`)).json.version, '7.0.0');
      } finally {
        await r2.remove();
      }
    });
  }

  it('a new runtime on the same dataDir re-deploys from the ready folder without fetching', async () => {
    const data = await tempDir();
    const r2 = await TestRepo.create(serviceFiles('6.0.0'));
    const spec = makeSpec('again', { version: '6.0.0', source: { type: 'git', url: r2.url, ref: 'main' } });
    const a = runtime(data, { portRange: [41200, 41299] });
    await a.deploy(spec);
    await a.close();
    assert.equal((await a.getCurrentState())[0]?.status, 'stopped');
    await r2.remove(); // the source is gone: only the ready folder can serve
    const b = runtime(data, { portRange: [41200, 41299] });
    try {
      const res = await b.adopt([spec]);
      assert.deepEqual(res, [{ name: 'again' }]);
      assert.equal((await viaUpstream(b, 'again')).json.version, '6.0.0');
      assert.ok(b.logs('again').some((l) => l.includes('reusing the prepared folder')));
    } finally {
      await b.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});
