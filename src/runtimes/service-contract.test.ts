// The fake recording runtime the facade tests drive (test/support/recording-runtime.ts) against the
// service runtime contract: a fake that does not behave like a runtime would make those tests lie.
import { serviceRuntimeContract } from './service-contract.js';
import { RecordingRuntime } from '../../test/support/recording-runtime.js';

serviceRuntimeContract<RecordingRuntime>({
  name: 'recording (fake)',
  create: () => {
    const rt = new RecordingRuntime(5);
    rt.failing.add('9.9.9');
    return rt;
  },
  spec: (name, version) => ({
    name, version, source: { type: 'npm' }, env: {}, dependsOn: [], route: null, port: null, file: `apps/${name}/app.yaml`,
    health: { type: 'http', path: '/health', interval: 1000, timeout: 1000 },
  }),
  failing: (name) => ({
    name, version: '9.9.9', source: { type: 'npm' }, env: {}, dependsOn: [], route: null, port: null, file: `apps/${name}/app.yaml`,
    health: { type: 'http', path: '/health', interval: 1000, timeout: 1000 },
  }),
  observe: async (rt, name) => {
    const st = (await rt.getCurrentState()).find((s) => s.name === name);
    return { version: st?.version ?? '', greeting: rt.envs.get(name)?.GREETING ?? null };
  },
});
