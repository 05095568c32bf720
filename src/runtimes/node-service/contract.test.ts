// The Node service runtime against the shared service runtime contract (../service-contract.ts):
// real node processes of a tiny HTTP service from a real git repository (a tag per version), seen
// through the runtime's upstream. The failing version answers 500 on /health.
import { after } from 'node:test';
import { rm } from 'node:fs/promises';
import { TestRepo } from '../../../test/support/repo.js';
import { serviceRuntimeContract } from '../service-contract.js';
import type { NodeServiceRuntime } from './index.js';
import { makeSpec, runtime, serviceFiles, tempDir, viaUpstream } from './fixtures.test.js';

const repo = await TestRepo.create(serviceFiles('1.0.0'));
repo.git('tag', 'v1.0.0');
await repo.commit(serviceFiles('2.0.0'));
repo.git('tag', 'v2.0.0');
await repo.commit(serviceFiles('9.9.9'));
repo.git('tag', 'v9.9.9');
const dataDir = await tempDir();

serviceRuntimeContract<NodeServiceRuntime>({
  name: 'node',
  // The ready timeout ends the version that never gets healthy: short for a test, long enough for
  // a loaded machine to start a good one.
  create: () => runtime(dataDir, { portRange: [43400, 43599], readyTimeoutMs: 20_000 }),
  close: (rt) => rt.close(),
  spec: (name, version) => makeSpec(name, { version, source: { type: 'git', url: repo.url, ref: `v${version}` } }),
  failing: (name) => makeSpec(name, { version: '9.9.9', source: { type: 'git', url: repo.url, ref: 'v9.9.9' }, env: { HEALTH_STATUS: '500' } }),
  observe: async (rt, name) => {
    const { json } = await viaUpstream(rt, name);
    return { version: String(json.version), greeting: (json.greeting as string | null) ?? null };
  },
});

after(async () => {
  await rm(dataDir, { recursive: true, force: true });
  await rm(repo.dir, { recursive: true, force: true });
});
