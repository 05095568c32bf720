// The services of one registered application (the `apps/` side of PRODUCT.md §8): its own Node
// service runtime and service reconciler, the routes the gateway proxies to the healthy process,
// and what the status shows. One host per application keeps names from colliding across
// namespaces; its applied specs live in the Store, so a restart redeploys them without git.
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { ZvError } from '../../errors/registry.js';
import type { ServiceSpec, ServiceRuntime, ServiceState } from '../../core/services/types.js';
import type { ServiceStatus } from '../../core/status.js';
import type { LoadedFunction, Upstream } from '../../runtimes/types.js';
import { ServiceReconciler, type ServiceReconcileResult } from './index.js';
import type { Logger } from '../../telemetry/log.js';
import type { EventMeta } from '../../telemetry/events.js';
import type { Store } from '../../store/types.js';
import { orderServices } from '../../core/services/spec/graph.js';
import type { DriftRepair } from '../drift.js';

/** What the host needs of a runtime beyond the five methods: where the healthy process is. */
export interface HostedServiceRuntime extends ServiceRuntime {
  upstream(name: string): Upstream | null;
  logs(name: string): string[];
  close(): Promise<void>;
  /** Optional: the server is shutting down and close() follows, so a drain after a takeover need not be waited out. */
  beginShutdown?(): void;
}

export interface ServiceHostOptions {
  dataDir: string;
  /** The application's id: its folder is named by it, so a re-registration never shares one. */
  appId: number;
  namespace: string;
  app: string;
  logger: Logger;
  createRuntime: (dir: string) => HostedServiceRuntime;
  /** Keeps the application's applied specs (by appId). */
  store: Pick<Store, 'getAppliedServices' | 'saveAppliedServices'>;
  /** Added to the telemetry events of each service action (default: namespace and app). */
  meta?: EventMeta;
  /** How long a dependent waits for each dependency to be ready (default 120 s). */
  healthTimeoutMs?: number;
}

export class ServiceHost {
  readonly runtime: HostedServiceRuntime;
  private readonly reconciler: ServiceReconciler;
  private readonly dir: string;
  private last: ServiceReconcileResult | null = null;

  constructor(private readonly o: ServiceHostOptions) {
    this.dir = join(o.dataDir, 'services', String(o.appId));
    this.runtime = o.createRuntime(this.dir);
    const log = o.logger.child({ component: 'services', namespace: o.namespace, app: o.app });
    this.reconciler = new ServiceReconciler({
      runtime: this.runtime,
      state: { load: () => o.store.getAppliedServices(o.appId), save: (applied) => o.store.saveAppliedServices(o.appId, applied) },
      // `application`: the service actions' events name the service as `app` (GET /api/events groups them by application).
      meta: { ...(o.meta ?? { namespace: o.namespace, app: o.app }), application: o.app },
      logger: log,
      ...(o.healthTimeoutMs !== undefined ? { healthTimeoutMs: o.healthTimeoutMs } : {}),
    });
  }

  /** Brings the services to `specs` in dependency order; failures are reported, not thrown. */
  async apply(specs: readonly ServiceSpec[], commit: string | null): Promise<ServiceReconcileResult> {
    this.last = await this.reconciler.apply(specs, commit === null ? {} : { commit });
    // A service whose first deploy failed was never recorded as applied, but its process may still
    // be supervised: anything the runtime runs that the specs no longer name goes.
    const wanted = new Set(specs.map((s) => s.name));
    for (const st of await this.runtime.getCurrentState()) {
      if (!wanted.has(st.name)) await this.runtime.remove(st.name).catch((e: unknown) => this.o.logger.warn({ service: st.name, err: String(e) }, 'removing a leftover service failed'));
    }
    return this.last;
  }

  /** The result of the last apply (null before one in this process). */
  lastResult(): ServiceReconcileResult | null {
    return this.last;
  }

  appliedCommit(): string | null {
    return this.reconciler.appliedCommit();
  }

  /** True when the last apply left something failed or blocked (the poll then tries again). */
  hasProblems(): boolean {
    return this.problems() !== '';
  }

  /** After a restart: redeploys the last applied specs (reusing fetched and installed versions). */
  async restore(): Promise<ServiceReconcileResult | null> {
    const specs = this.reconciler.appliedSpecs();
    if (specs.length === 0) return null;
    return this.apply(specs, this.reconciler.appliedCommit() ?? '');
  }

  appliedSpecs(): ServiceSpec[] {
    return this.reconciler.appliedSpecs();
  }

  /** A short text of what failed or was blocked in the last apply ('' when nothing). */
  problems(): string {
    const r = this.last;
    if (!r) return '';
    return [...r.failed.map((f) => `service ${f.name}: ${f.action} failed: ${f.error}`), ...r.blocked.map((b) => `service ${b.name}: blocked by ${b.blockedBy}: ${b.reason}`)].join('; ');
  }

  /** Every service the runtime runs or the specs name (a failed first deploy shows too). */
  async status(): Promise<ServiceStatus[]> {
    const states = new Map<string, ServiceState>((await this.runtime.getCurrentState()).map((s) => [s.name, s]));
    const specs = new Map(this.reconciler.appliedSpecs().map((s) => [s.name, s]));
    const names = [...new Set([...specs.keys(), ...states.keys()])].sort();
    return names.map((name) => {
      const st = states.get(name);
      const spec = specs.get(name);
      const out: ServiceStatus = { name, version: st?.version ?? spec?.version ?? '', status: st?.status ?? 'stopped', health: st?.health ?? 'unknown' };
      if (st?.message) out.message = st.message;
      if (spec?.route) out.route = spec.route;
      return out;
    });
  }

  /** Whether the runtime or the applied specs know this service (for its logs). */
  async knows(name: string): Promise<boolean> {
    return this.reconciler.appliedSpecs().some((s) => s.name === name) || (await this.runtime.getCurrentState()).some((s) => s.name === name);
  }

  private readonly handles = new Map<string, LoadedFunction>();

  /** A LoadedFunction-shaped handle the gateway streams to: the service's current healthy process. */
  routeHandle(name: string): LoadedFunction {
    let h = this.handles.get(name);
    if (!h) {
      h = {
        invoke: () => Promise.reject(new ZvError('FUNCTION_UNAVAILABLE', `service ${name} is reached through the proxy only`)),
        upstream: () => this.runtime.upstream(name),
        dispose: async () => undefined,
      };
      this.handles.set(name, h);
    }
    return h;
  }

  /** Route → handle for the specs that declare a route. */
  routes(specs: readonly ServiceSpec[]): Map<string, { name: string; handle: LoadedFunction }> {
    return new Map(specs.filter((s) => s.route).map((s) => [s.route as string, { name: s.name, handle: this.routeHandle(s.name) }]));
  }

  /**
   * Drift repair of services (PRODUCT.md §11), in dependency order. Gone = an applied service the
   * runtime does not list, or lists as `failed` or `stopped` (no supervised process): it is
   * deployed again from its applied spec (ready version folders are reused). A `crashed` or
   * `crash-loop` process is the supervisor's: it restarts it with back-off, and a repair would only
   * fight it; `starting` is an operation under way. Run it in the application's sync queue, never
   * beside an apply (a repair deploys the applied spec, which an apply under way may be replacing).
   */
  async repairDrift(): Promise<DriftRepair[]> {
    const specs = this.appliedSpecs();
    if (specs.length === 0) return [];
    const states = new Map((await this.runtime.getCurrentState()).map((s) => [s.name, s]));
    const gone = (name: string): string | null => {
      const st = states.get(name);
      if (!st) return 'process gone';
      return st.status === 'failed' || st.status === 'stopped' ? `process ${st.status}` : null;
    };
    const byName = new Map(specs.map((s) => [s.name, s]));
    const ordered = orderServices(specs);
    const names = 'order' in ordered ? ordered.order : specs.map((s) => s.name);
    const out: DriftRepair[] = [];
    for (const name of names) {
      const spec = byName.get(name);
      const problem = gone(name);
      if (!spec || !problem) continue;
      this.o.logger.warn({ namespace: this.o.namespace, app: this.o.app, service: name, problem }, 'repairing a drifted service');
      try {
        await this.runtime.deploy(spec);
        const now = (await this.runtime.getCurrentState()).find((s) => s.name === name);
        if (!now || now.status === 'failed' || now.status === 'stopped') {
          throw new ZvError('SERVICE_START_FAILED', `service ${name}: still ${now?.status ?? 'not running'} after the repair${now?.message ? `: ${now.message}` : ''}`);
        }
        out.push({ kind: 'service', target: name, problem, result: 'repaired' });
      } catch (e) {
        out.push({ kind: 'service', target: name, problem, result: 'failed', message: e instanceof Error ? e.message : String(e) });
      }
    }
    return out;
  }

  /** Reads the applied specs from the Store (cheap; no process is started). */
  load(): Promise<void> {
    return this.reconciler.load();
  }

  /** Stops and removes every service of the application. */
  async removeAll(): Promise<void> {
    this.reconciler.interrupt();
    await this.apply([], '');
    await this.runtime.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * At shutdown: makes an apply under way stop after the action it is in, and that action not wait
   * out the old process's drain after a takeover (close() follows and stops every process anyway; a
   * shutdown that waited 15 s per upgrade outlasted supervisors' stop timeouts).
   */
  interruptApply(): void {
    this.reconciler.interrupt();
    this.runtime.beginShutdown?.();
  }

  async close(): Promise<void> {
    this.reconciler.interrupt();
    await this.runtime.close();
  }
}
