// The shared contract suite every ServiceRuntime must pass (the five methods of PRODUCT.md §8:
// deploy, upgrade, reconfigure, remove, getCurrentState), in the shape of ./contract.ts. A runtime's
// test file calls `serviceRuntimeContract(...)` with a way to make specs it can run.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../errors/registry.js';
import type { ServiceRuntime, ServiceSpec, ServiceState } from '../core/services/types.js';

/** What the running service itself reports (e.g. over HTTP), to see that a change reached it. */
export interface ServiceObservation {
  version: string;
  /** The value of the env variable GREETING the process runs with (null when unset). */
  greeting: string | null;
}

/** The cases a runtime may mark `todo` (a known bug, with a one-line reason). */
export type ServiceContractCase =
  | 'empty' | 'deploy' | 'noHealth' | 'redeploy' | 'upgrade' | 'reconfigure' | 'sameEnv' | 'remove' | 'removeUnknown'
  | 'exact' | 'badName' | 'failedDeploy' | 'failedUpgrade';

export interface ServiceContractOptions<R extends ServiceRuntime = ServiceRuntime> {
  name: string;
  /** A fresh runtime with no service. */
  create: () => Promise<R> | R;
  /** Stops everything the runtime started (default: nothing to do). */
  close?: (runtime: R) => Promise<void>;
  /**
   * A spec of service `name` at `version` that the runtime can run and that becomes healthy by its
   * health spec; the contract sets `env` and may set `health: null`. Versions used: 1.0.0, 2.0.0.
   */
  spec: (name: string, version: string) => ServiceSpec | Promise<ServiceSpec>;
  /**
   * A spec of service `name` that never becomes healthy (omit to skip the failure cases): its
   * deploy or upgrade must reject with a ZvError and an upgrade must leave the old version running.
   */
  failing?: (name: string) => ServiceSpec | Promise<ServiceSpec>;
  /** What the service's current process reports; defaults to nothing observable (cases still check the state). */
  observe?: (runtime: R, name: string) => Promise<ServiceObservation>;
  /** How long a deploy may take to turn healthy (default 60 s: a loaded machine is slow). */
  readyMs?: number;
  todo?: Partial<Record<ServiceContractCase, string>>;
  skip?: string | false;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function serviceRuntimeContract<R extends ServiceRuntime>(opts: ServiceContractOptions<R>): void {
  const todo = (c: ServiceContractCase): { todo?: string } => (opts.todo?.[c] ? { todo: opts.todo[c] } : {});
  const readyMs = opts.readyMs ?? 60_000;

  describe(`service runtime contract: ${opts.name}`, { skip: opts.skip || false }, () => {
    let rt: R;
    let n = 0;
    /** A fresh service name per case: cases do not see each other's services. */
    const fresh = (): string => `svc${n++}`;
    const spec = async (name: string, version: string, over: Partial<ServiceSpec> = {}): Promise<ServiceSpec> => ({ ...(await opts.spec(name, version)), ...over });
    const stateOf = async (name: string): Promise<ServiceState | undefined> => (await rt.getCurrentState()).find((s) => s.name === name);
    /** Waits (generously, never a fixed sleep) until the service runs healthy at `version`. */
    const healthy = async (name: string, version: string): Promise<ServiceState> => {
      const end = Date.now() + readyMs;
      let last: ServiceState | undefined;
      for (;;) {
        last = await stateOf(name);
        if (last && last.version === version && last.status === 'running' && last.health === 'healthy') return last;
        if (Date.now() > end) assert.fail(`${name} did not run healthy at ${version}: ${JSON.stringify(last)}`);
        await sleep(25);
      }
    };
    const names = async (): Promise<string[]> => (await rt.getCurrentState()).map((s) => s.name).sort();
    const ours = async (): Promise<string[]> => (await names()).filter((x) => /^svc\d+$/.test(x));

    before(async () => {
      rt = await opts.create();
    });
    after(async () => {
      for (const s of await rt.getCurrentState().catch(() => [])) await rt.remove(s.name).catch(() => {});
      await opts.close?.(rt);
    });

    it('lists no service before the first deploy', todo('empty'), async () => {
      assert.deepEqual(await rt.getCurrentState(), []);
    });

    it('deploy: the state lists the service at its version, running and healthy by its health spec', todo('deploy'), async () => {
      const name = fresh();
      const s = await spec(name, '1.0.0', { env: { GREETING: 'hello' } });
      assert.ok(s.health, 'the sample spec has a health check');
      await rt.deploy(s);
      const st = await healthy(name, '1.0.0');
      assert.equal(st.name, name);
      assert.ok(Number.isInteger(st.restarts) && st.restarts >= 0);
      if (st.port !== undefined) assert.ok(Number.isInteger(st.port) && st.port > 0);
      if (opts.observe) assert.deepEqual(await opts.observe(rt, name), { version: '1.0.0', greeting: 'hello' });
    });

    it('deploy without a health spec: healthy once it runs', todo('noHealth'), async () => {
      const name = fresh();
      await rt.deploy(await spec(name, '1.0.0', { health: null }));
      await healthy(name, '1.0.0');
    });

    it('deploying the same spec again changes nothing (one entry, same process)', todo('redeploy'), async () => {
      const name = fresh();
      const s = await spec(name, '1.0.0');
      await rt.deploy(s);
      const first = await healthy(name, '1.0.0');
      await rt.deploy(s);
      const again = await healthy(name, '1.0.0');
      assert.equal((await rt.getCurrentState()).filter((x) => x.name === name).length, 1);
      if (first.pid !== undefined) assert.equal(again.pid, first.pid, 'the process was not restarted');
      if (first.port !== undefined) assert.equal(again.port, first.port);
    });

    it('upgrade: the state and the process move to the new version', todo('upgrade'), async () => {
      const name = fresh();
      await rt.deploy(await spec(name, '1.0.0'));
      await healthy(name, '1.0.0');
      await rt.upgrade(await spec(name, '2.0.0'), '1.0.0');
      await healthy(name, '2.0.0');
      if (opts.observe) assert.equal((await opts.observe(rt, name)).version, '2.0.0');
      assert.equal((await rt.getCurrentState()).filter((x) => x.name === name).length, 1);
    });

    it('reconfigure: the process runs with the new env at the same version', todo('reconfigure'), async () => {
      const name = fresh();
      await rt.deploy(await spec(name, '1.0.0', { env: { GREETING: 'one' } }));
      await healthy(name, '1.0.0');
      await rt.reconfigure(await spec(name, '1.0.0', { env: { GREETING: 'two' } }));
      await healthy(name, '1.0.0');
      if (opts.observe) assert.deepEqual(await opts.observe(rt, name), { version: '1.0.0', greeting: 'two' });
    });

    it('reconfigure with the same env changes nothing', todo('sameEnv'), async () => {
      const name = fresh();
      const s = await spec(name, '1.0.0', { env: { GREETING: 'same' } });
      await rt.deploy(s);
      const first = await healthy(name, '1.0.0');
      await rt.reconfigure(await spec(name, '1.0.0', { env: { GREETING: 'same' } }));
      const again = await healthy(name, '1.0.0');
      if (first.pid !== undefined) assert.equal(again.pid, first.pid, 'the process was not restarted');
      if (opts.observe) assert.equal((await opts.observe(rt, name)).greeting, 'same');
    });

    it('remove: the service disappears; removing it again resolves', todo('remove'), async () => {
      const name = fresh();
      await rt.deploy(await spec(name, '1.0.0'));
      await healthy(name, '1.0.0');
      await rt.remove(name);
      assert.equal(await stateOf(name), undefined);
      await rt.remove(name);
      assert.equal(await stateOf(name), undefined);
    });

    it('removing a service that never ran resolves and lists nothing', todo('removeUnknown'), async () => {
      const before = await names();
      await rt.remove('svc-never-deployed');
      assert.deepEqual(await names(), before);
    });

    it('getCurrentState lists exactly what runs', todo('exact'), async () => {
      for (const x of await ours()) await rt.remove(x);
      const [a, b, c] = [fresh(), fresh(), fresh()];
      for (const x of [a, b, c]) await rt.deploy(await spec(x, '1.0.0'));
      for (const x of [a, b, c]) await healthy(x, '1.0.0');
      await rt.remove(b);
      assert.deepEqual(await ours(), [a, c].sort());
      const states = await rt.getCurrentState();
      assert.equal(new Set(states.map((s) => s.name)).size, states.length, 'one entry per service');
    });

    it('rejects an invalid service name with a ZvError and lists nothing for it', todo('badName'), async () => {
      const before = await names();
      for (const bad of ['../escape', 'a/b', '']) {
        await assert.rejects(async () => rt.deploy(await spec(bad, '1.0.0')), (e: unknown) => isZvError(e), `deploy ${JSON.stringify(bad)}`);
        await assert.rejects(async () => rt.remove(bad), (e: unknown) => isZvError(e), `remove ${JSON.stringify(bad)}`);
      }
      assert.deepEqual(await names(), before);
    });

    it('a deploy that never gets healthy rejects with a ZvError', { skip: !opts.failing, ...todo('failedDeploy') }, async () => {
      const name = fresh();
      const bad = await opts.failing!(name);
      await assert.rejects(rt.deploy(bad), (e: unknown) => isZvError(e));
      const st = await stateOf(name);
      if (st) assert.ok(!(st.version === bad.version && st.health === 'healthy'), `the failed version shows healthy: ${JSON.stringify(st)}`);
    });

    it('an upgrade that never gets healthy rejects with a ZvError and the old version keeps running', { skip: !opts.failing, ...todo('failedUpgrade') }, async () => {
      const name = fresh();
      await rt.deploy(await spec(name, '1.0.0'));
      await healthy(name, '1.0.0');
      const bad = await opts.failing!(name);
      await assert.rejects(rt.upgrade(bad, '1.0.0'), (e: unknown) => isZvError(e));
      const st = await healthy(name, '1.0.0');
      assert.equal(st.version, '1.0.0');
      if (opts.observe) assert.equal((await opts.observe(rt, name)).version, '1.0.0');
    });
  });
}
