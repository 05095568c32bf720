// The service reconciler: applies the plan from the last applied specs to the desired ones through
// a ServiceRuntime, in dependency order (PRODUCT.md §8).
//
//   1. validate the dependency graph (a cycle or an unknown dependency: error, nothing is called);
//   2. plan (planServices) against the recorded specs; a service the runtime does not know at all
//      is deployed again whatever the plan says (a runtime that lost it, e.g. after a restart);
//   3. removals, dependents first; a failed removal keeps its dependencies (they are blocked);
//   4. deploy / upgrade / reconfigure / apply, dependencies first; before a service is touched,
//      each of its dependencies must be ready (runtime state polled, with a time limit).
// A failed action marks its service failed and blocks its dependents; nothing that was running is
// stopped because of it. The recorded specs (memory + the optional state port, e.g. the Store) only
// take what applied.
import type { ServiceAction, ServiceChange, ServiceRuntime, ServiceSpec } from '../../core/services/types.js';
import { planServices } from '../../core/plan/services.js';
import { orderServices, removalOrder } from '../../core/services/spec/graph.js';
import { ZvError } from '../../errors/registry.js';
import { traced, type EventMeta } from '../../telemetry/events.js';
import { waitReady } from './health.js';
import type { AppliedServices } from '../../store/types.js';

export type { AppliedServices };

/** Enough of a logger (pino's fits). */
export interface ServiceLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Where the last applied specs are kept between runs (the server: the Store, per application). */
export interface AppliedServicesPort {
  /** Null when nothing was ever saved. */
  load(): Promise<AppliedServices | null>;
  /** Replaces what was saved. */
  save(applied: AppliedServices): Promise<void>;
}

export interface ServiceReconcilerOptions {
  runtime: ServiceRuntime;
  /** Keeps the last applied specs between runs; without it they are kept in memory only. */
  state?: AppliedServicesPort;
  /** How long a dependent waits for each dependency to be ready (default 120 s). */
  healthTimeoutMs?: number;
  /** How often the runtime state is polled meanwhile (default 250 ms). */
  healthPollMs?: number;
  /** Added to every telemetry event (e.g. `repo`, `branch`). */
  meta?: EventMeta;
  logger?: ServiceLogger;
}

export interface FailedService {
  name: string;
  action: ServiceAction;
  error: string;
}

export interface BlockedService {
  name: string;
  action: ServiceAction;
  /** The dependency (or, for removals, the dependent) that held it back. */
  blockedBy: string;
  reason: string;
}

export interface ServiceReconcileResult {
  commit: string | null;
  /** Every service, sorted by name, as it was acted on (see step 2 above). */
  plan: ServiceChange[];
  /** The changes that went through, in the order they were applied. */
  applied: ServiceChange[];
  failed: FailedService[];
  blocked: BlockedService[];
}

const NOOP_LOGGER: ServiceLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const STOPPING = 'the reconciler is stopping';
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** One line for a problem from the spec readers or the graph: a string or a diagnostic. */
export function problemText(e: unknown): string {
  if (typeof e === 'string') return e;
  const d = e as { file?: unknown; line?: unknown; col?: unknown; field?: unknown; message?: unknown };
  const pos = typeof d.line === 'number' ? `:${d.line}${typeof d.col === 'number' ? `:${d.col}` : ''}` : '';
  const where = typeof d.file === 'string' ? `${d.file}${pos}: ` : '';
  return `${where}${typeof d.field === 'string' ? `${d.field}: ` : ''}${String(d.message ?? JSON.stringify(e))}`;
}

/**
 * Throws MANIFEST_INVALID naming every problem when the specs cannot be ordered (a cycle). A
 * depends_on name no spec declares is ignored here (the reader reports it as a warning).
 */
export function dependencyOrder(specs: readonly ServiceSpec[]): string[] {
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new ZvError('MANIFEST_INVALID', `two specs are named ${s.name}`, { service: s.name });
    names.add(s.name);
  }
  const r = orderServices([...specs]);
  if ('errors' in r) {
    const texts = r.errors.map(problemText);
    throw new ZvError('MANIFEST_INVALID', `services cannot be ordered: ${texts.join('; ')}`, { errors: texts });
  }
  return r.order;
}

export class ServiceReconciler {
  private readonly runtime: ServiceRuntime;
  private readonly opts: ServiceReconcilerOptions;
  private readonly log: ServiceLogger;
  private readonly specs = new Map<string, ServiceSpec>();
  private readonly state: AppliedServicesPort | undefined;
  private commit: string | null = null;
  private loading: Promise<void> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Bumped by interrupt(); a run that sees it change stops acting. */
  private generation = 0;

  constructor(opts: ServiceReconcilerOptions) {
    this.opts = opts;
    this.runtime = opts.runtime;
    this.log = opts.logger ?? NOOP_LOGGER;
    this.state = opts.state;
  }

  /** Reads the saved state once (also done by the first reconcile). */
  load(): Promise<void> {
    this.loading ??= (async () => {
      if (!this.state) return;
      const saved = await this.state.load();
      if (!saved) return;
      this.commit = saved.commit;
      for (const s of saved.specs) this.specs.set(s.name, s);
    })().catch((e: unknown) => {
      this.loading = undefined;
      throw new ZvError('INTERNAL', `cannot read the service state: ${message(e)}`, undefined, { cause: e });
    });
    return this.loading;
  }

  /** The specs last applied, sorted by name. */
  appliedSpecs(): ServiceSpec[] {
    return [...this.specs.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  appliedCommit(): string | null {
    return this.commit;
  }

  /** Ends the health waits and skips what is left of the runs under way or queued now; later runs are not affected. */
  interrupt(): void {
    this.generation++;
  }

  /** `apply` between `zerverless:reconcile:start` and `:stop` (`:error` when it throws). */
  reconcile(desired: readonly ServiceSpec[], opts: { commit?: string } = {}): Promise<ServiceReconcileResult> {
    return traced('reconcile', { ...this.opts.meta, commit: opts.commit ?? null }, async (more) => {
      const r = await this.apply(desired, opts);
      Object.assign(more, { applied: r.applied.length, failed: r.failed.length, blocked: r.blocked.length });
      return r;
    });
  }

  /** Takes the services to `desired`; one call at a time (calls queue). Throws before any runtime call on an invalid graph. */
  apply(desired: readonly ServiceSpec[], opts: { commit?: string } = {}): Promise<ServiceReconcileResult> {
    const gen = this.generation;
    const run = this.queue.then(() => this.run(desired, opts.commit ?? null, () => gen !== this.generation));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(desired: readonly ServiceSpec[], commit: string | null, cancelled: () => boolean): Promise<ServiceReconcileResult> {
    await this.load();
    const order = dependencyOrder(desired);
    const wanted = new Map(desired.map((s) => [s.name, s]));
    const present = new Set((await this.runtime.getCurrentState()).map((s) => s.name));
    const plan = planServices(desired, this.appliedSpecs()).map((c): ServiceChange => {
      if (c.action === 'deploy' || c.action === 'remove' || present.has(c.name)) return c;
      const out: ServiceChange = { name: c.name, action: 'deploy', toVersion: c.toVersion ?? '', changes: ['missing'] };
      if (c.fromVersion !== undefined) out.fromVersion = c.fromVersion;
      return out;
    });
    const byName = new Map(plan.map((c) => [c.name, c]));
    const result: ServiceReconcileResult = { commit, plan, applied: [], failed: [], blocked: [] };
    if (plan.some((c) => c.action !== 'unchanged')) this.log.info({ commit, plan: plan.filter((c) => c.action !== 'unchanged') }, 'services: applying plan');

    await this.removals(plan, result, cancelled);
    await this.changes(order, wanted, byName, result, cancelled);

    if (commit !== null) this.commit = commit;
    await this.save();
    return result;
  }

  private async removals(plan: ServiceChange[], result: ServiceReconcileResult, cancelled: () => boolean): Promise<void> {
    const names = plan.filter((c) => c.action === 'remove').map((c) => c.name);
    if (!names.length) return;
    const removing = new Map(names.map((n) => [n, this.specs.get(n) as ServiceSpec]));
    const held = new Set<string>(); // removals that failed or were blocked
    for (const name of removalOrder(names, [...removing.values()])) {
      const spec = removing.get(name) as ServiceSpec;
      const change = plan.find((c) => c.name === name) as ServiceChange;
      const dependent = [...held].find((h) => removing.get(h)?.dependsOn.includes(name));
      if (dependent !== undefined || cancelled()) {
        held.add(name);
        const by = dependent ?? name;
        result.blocked.push({ name, action: 'remove', blockedBy: by, reason: dependent === undefined ? STOPPING : `${by} (which depends on it) was not removed` });
        continue;
      }
      try {
        await traced('remove', { ...this.opts.meta, app: name, version: spec.version, action: 'remove' }, () => this.runtime.remove(name));
        this.specs.delete(name);
        result.applied.push(change);
        await this.save();
      } catch (e) {
        held.add(name);
        result.failed.push({ name, action: 'remove', error: message(e) });
        this.log.error({ service: name, err: message(e) }, 'services: remove failed');
      }
    }
  }

  private async changes(
    order: string[], wanted: Map<string, ServiceSpec>, plan: Map<string, ServiceChange>, result: ServiceReconcileResult,
    cancelled: () => boolean,
  ): Promise<void> {
    const bad = new Map<string, string>(); // name → why its dependents cannot go on
    const ready = new Set<string>();
    for (const name of order) {
      const spec = wanted.get(name) as ServiceSpec;
      const change = plan.get(name) as ServiceChange;
      if (change.action === 'unchanged') {
        this.specs.set(name, spec); // same content; keeps e.g. the file it was read from current
        continue;
      }
      const hold = cancelled() ? { by: name, reason: STOPPING } : await this.dependenciesReady(spec, wanted, bad, ready, cancelled);
      if (hold) {
        bad.set(name, `${name} is blocked`);
        result.blocked.push({ name, action: change.action, blockedBy: hold.by, reason: hold.reason });
        this.log.warn({ service: name, blockedBy: hold.by, reason: hold.reason }, 'services: blocked');
        continue;
      }
      try {
        await this.act(spec, change);
        this.specs.set(name, spec);
        result.applied.push(change);
        await this.save();
      } catch (e) {
        bad.set(name, `${name} failed to ${change.action}`);
        result.failed.push({ name, action: change.action, error: message(e) });
        this.log.error({ service: name, action: change.action, err: message(e) }, 'services: action failed');
      }
    }
  }

  /** Null when every dependency is ready; else which one holds `spec` back and why. */
  private async dependenciesReady(
    spec: ServiceSpec, wanted: Map<string, ServiceSpec>, bad: Map<string, string>, ready: Set<string>, cancelled: () => boolean,
  ): Promise<{ by: string; reason: string } | null> {
    for (const dep of spec.dependsOn) {
      const why = bad.get(dep);
      if (why !== undefined) return { by: dep, reason: why };
    }
    for (const dep of spec.dependsOn) {
      // A name no spec declares (a warning when read, as in bc_gitops): nothing to wait for.
      if (ready.has(dep) || !wanted.has(dep)) continue;
      const r = await waitReady(this.runtime, wanted.get(dep) as ServiceSpec, {
        timeoutMs: this.opts.healthTimeoutMs ?? 120_000,
        pollMs: this.opts.healthPollMs ?? 250,
        cancelled,
      });
      if (!r.ok) {
        bad.set(dep, r.reason);
        return { by: dep, reason: r.reason };
      }
      ready.add(dep);
    }
    return null;
  }

  private async act(spec: ServiceSpec, change: ServiceChange): Promise<void> {
    const meta = { ...this.opts.meta, app: spec.name, action: change.action };
    switch (change.action) {
      case 'deploy':
        return traced('deploy', { ...meta, version: spec.version }, () => this.runtime.deploy(spec));
      case 'upgrade': {
        const from = change.fromVersion ?? spec.version;
        return traced('upgrade', { ...meta, from_version: from, to_version: spec.version, changes: change.changes ?? [] },
          () => this.runtime.upgrade(spec, from));
      }
      case 'reconfigure':
      case 'apply':
        // Only depends_on changed: nothing runs differently, the new order is simply recorded.
        if (change.action === 'apply' && (change.changes ?? []).every((c) => c === 'depends_on')) return;
        return traced('upgrade', { ...meta, from_version: spec.version, to_version: spec.version, changes: change.changes ?? [] },
          () => this.runtime.reconfigure(spec));
      default:
        return;
    }
  }

  private async save(): Promise<void> {
    if (!this.state) return;
    try {
      await this.state.save({ commit: this.commit, specs: this.appliedSpecs() });
    } catch (e) {
      this.log.warn({ err: message(e) }, 'services: cannot save the applied state');
    }
  }
}
