// The `npm` source of the Node service runtime: `npm pack name@version` from a registry on loopback,
// then unpack (npm's `package/` folder stripped), start and health. Against a real Verdaccio (a
// devDependency) on loopback with a test package published to it, and against the minimal registry
// of test/support/npm-registry.ts with the real npm client.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { packageDir, startMiniRegistry, startVerdaccio } from '../../../test/support/npm-registry.js';
import type { TestNpmRegistry } from '../../../test/support/npm-registry.js';
import { failureOf } from './index.js';
import { makeSpec, runtime, serviceFiles, tempDir, viaUpstream } from './fixtures.test.js';

async function deployFrom(reg: TestNpmRegistry, ports: [number, number]): Promise<void> {
  const dataDir = await tempDir();
  const pkgName = `zv-npm-service-${reg.kind}`;
  const dirs = [
    await packageDir({ ...serviceFiles('1.0.0', { name: pkgName, private: false }) }),
    await packageDir({ ...serviceFiles('1.1.0', { name: pkgName, private: false }) }),
  ];
  const rt = runtime(dataDir, { npmRegistry: reg.url, portRange: ports });
  try {
    for (const d of dirs) await reg.publish(d);
    await rt.deploy(makeSpec('from-npm', { version: '1.0.0', source: { type: 'npm', package: pkgName } }));
    assert.equal((await viaUpstream(rt, 'from-npm')).json.version, '1.0.0');
    const st = (await rt.getCurrentState())[0];
    assert.equal(st?.health, 'healthy');
    await rt.upgrade(makeSpec('from-npm', { version: '1.1.0', source: { type: 'npm', package: pkgName } }), '1.0.0');
    assert.equal((await viaUpstream(rt, 'from-npm')).json.version, '1.1.0');
    assert.ok(rt.logs('from-npm').some((l) => l.includes(`npm pack ${pkgName}@1.1.0 from ${reg.url}`)));
    await assert.rejects(rt.deploy(makeSpec('missing', { version: '9.9.9', source: { type: 'npm', package: pkgName } })), (e) => failureOf(e) === 'fetch');
    await assert.rejects(rt.deploy(makeSpec('bad-name', { source: { type: 'npm', package: '../evil' } })), (e) => failureOf(e) === 'invalid-spec');
  } finally {
    await rt.close();
    for (const d of [dataDir, ...dirs]) await rm(d, { recursive: true, force: true });
  }
}

describe('node services: npm source', () => {
  const open: TestNpmRegistry[] = [];
  after(async () => {
    for (const r of open) await r.close();
  });

  it('deploys and upgrades a package from a local Verdaccio', async () => {
    const reg = await startVerdaccio();
    assert.ok(reg, 'verdaccio is a devDependency: run npm install');
    open.push(reg);
    await deployFrom(reg, [44000, 44099]);
  });

  it('deploys and upgrades a package from a minimal loopback registry (real npm pack)', async () => {
    const reg = await startMiniRegistry();
    open.push(reg);
    await deployFrom(reg, [44100, 44199]);
  });
});
