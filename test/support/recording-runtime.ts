// A fake ServiceRuntime for tests of what drives runtimes (the gitops facade, the service applier):
// records every call; a service turns running and healthy `delayMs` after each deploy, upgrade or
// reconfigure. It passes the service runtime contract (src/runtimes/service-contract.ts): names are
// checked, and a version in `failing` never becomes healthy (the call rejects, the previous version
// keeps running).
import { ZvError } from '../../src/errors/registry.js';
import type { ServiceRuntime, ServiceSpec, ServiceState } from '../../src/core/services/types.js';

export interface Call { op: string; name: string; version: string; oldVersion?: string; env?: Record<string, string>; at: number }

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The custom runtime: records calls; a service turns healthy `delayMs` after each call. */
export class RecordingRuntime implements ServiceRuntime {
  readonly calls: Call[] = [];
  readonly healthyAt = new Map<string, number>();
  /** Versions that never become healthy: deploying one rejects with SERVICE_UNHEALTHY. */
  readonly failing = new Set<string>();
  private readonly states = new Map<string, ServiceState>();
  /** The env each service's current version runs with. */
  readonly envs = new Map<string, Record<string, string>>();
  constructor(private readonly delayMs = 40) {}

  private start(spec: ServiceSpec): void {
    this.states.set(spec.name, { name: spec.name, version: spec.version, status: 'starting', health: 'unknown', restarts: 0 });
    this.envs.set(spec.name, { ...spec.env });
    setTimeout(() => {
      const s = this.states.get(spec.name);
      if (!s || s.version !== spec.version) return;
      this.states.set(spec.name, { ...s, status: 'running', health: 'healthy' });
      this.healthyAt.set(spec.name, performance.now());
    }, this.delayMs);
  }
  private check(spec: ServiceSpec): void {
    checkName(spec.name);
    if (!spec.version) throw new ZvError('SERVICE_SPEC_INVALID', `service '${spec.name}' has no version`);
    if (this.failing.has(spec.version)) throw new ZvError('SERVICE_UNHEALTHY', `${spec.name} ${spec.version} never became healthy`);
  }
  async deploy(spec: ServiceSpec): Promise<void> {
    this.calls.push({ op: 'deploy', name: spec.name, version: spec.version, env: spec.env, at: performance.now() });
    this.check(spec);
    this.start(spec);
  }
  async upgrade(spec: ServiceSpec, oldVersion: string): Promise<void> {
    this.calls.push({ op: 'upgrade', name: spec.name, version: spec.version, oldVersion, at: performance.now() });
    this.check(spec);
    this.start(spec);
  }
  async reconfigure(spec: ServiceSpec): Promise<void> {
    this.calls.push({ op: 'reconfigure', name: spec.name, version: spec.version, env: spec.env, at: performance.now() });
    this.check(spec);
    this.start(spec);
  }
  async remove(name: string): Promise<void> {
    this.calls.push({ op: 'remove', name, version: this.states.get(name)?.version ?? '', at: performance.now() });
    checkName(name);
    this.states.delete(name);
    this.envs.delete(name);
  }
  async getCurrentState(): Promise<ServiceState[]> {
    return [...this.states.values()];
  }
  /** `op name` of each call since `from`. */
  log(from = 0): string[] {
    return this.calls.slice(from).map((c) => `${c.op} ${c.name}`);
  }
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new ZvError('SERVICE_SPEC_INVALID', `service name '${name}' is not valid`);
}
