// One sync of one application, as named steps in the style of Flux's reconcilers:
//
//   head → snapshot → read → ownership → plan → prepare → commit → apply services → finish
//
// Each step does one thing and hands its result to the next, or throws. Nothing is served from the
// new commit before `commit` (functions and static files switch atomically there); services follow
// in dependency order. `finish(outcome)` is the one place that writes the sync record and the
// application's status, whatever happened before it.
import { ZvError, isCommitFault, toZvError } from '../errors/registry.js';
import type { DeployedState } from '../core/desired.js';
import { planApplication, type Plan } from '../core/plan/index.js';
import type { CommitSnapshot, DesiredRead, DesiredReader, RepoRef, Source } from '../sources/types.js';
import type { AppRecord, AppStatusPatch, CommitInfo, Store, SyncCause } from '../store/types.js';
import type { ServingTable } from '../serving/table.js';
import type { Deployer, AppIdentity, Prepared } from '../apply/functions.js';
import type { ServiceHost } from '../apply/services/host.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { CHANNELS, publish, traced, type EventMeta } from '../telemetry/events.js';
import type { SerialRunner } from './serial.js';

/** What a sync needs of the reconciler that runs it. */
export interface SyncEnv {
  store: Store;
  source: Source;
  reader: DesiredReader;
  serving: ServingTable;
  deployer: Deployer;
  log: Logger;
  metrics?: Metrics | undefined;
  now(): Date;
  /** The metadata of the application's telemetry events. */
  eventMeta(app: AppRecord): EventMeta;
  /** Deployed state per app id, mirrored from the store. */
  deployed: Map<number, DeployedState>;
  /** Serialises the ownership check → store → switch of the commit step per namespace. */
  namespaceLock: SerialRunner;
  /** The application's service host; `create` makes one when there is none. */
  host(app: AppRecord, create: boolean): ServiceHost | null;
  /** Closes and forgets the host of an application that no longer has services. */
  dropHost(app: AppRecord): Promise<void>;
}

/** How a sync ended; `finish` turns it into the sync record and the status. */
export type SyncOutcome =
  | { ok: true; commit: string; plan: Plan; /** '' when every service applied, else what failed or was blocked */ problems: string }
  | { ok: false; error: ZvError; commit: string | null; plan: Plan | null };

export interface SyncResult {
  record: AppRecord;
  outcome: SyncOutcome;
}

export const appKey = (namespace: string, name: string): string => `${namespace}/${name}`;
export const identity = (a: AppRecord): AppIdentity => ({ key: appKey(a.namespace, a.name), name: a.name, namespace: a.namespace });

/** The deployed state as the plan should see it: unavailable functions (a stopped container) count as changed, so a sync reloads them. */
function withUnavailable(deployed: DeployedState | null, unavailable: Set<string>): DeployedState | null {
  if (!deployed || unavailable.size === 0) return deployed;
  return { ...deployed, functions: deployed.functions.map((f) => (unavailable.has(f.path) ? { ...f, hash: `${f.hash}+unavailable` } : f)) };
}

/** Services run as host processes: only a registration by a token with `services: true` may deploy them. */
function servicesForbidden(app: AppRecord): ZvError {
  const by = app.createdBy === null ? 'a token' : `token '${app.createdBy}'`;
  return new ZvError('FORBIDDEN',
    `the repository has an apps/ folder of services (host processes), and the application was registered by ${by} without services: true; nothing was deployed`);
}

/**
 * The snapshot step's work, shared with the plan preview (preview.ts): a commit not signed by a
 * trusted key is refused before anything of it is read, then its tree is read from the source's
 * store (fetched when missing). Writes nothing but the source's clone.
 */
export async function readSnapshot(env: Pick<SyncEnv, 'source'>, app: AppRecord, ref: RepoRef, commit: string): Promise<CommitSnapshot> {
  if (app.source.verify) await env.source.verifyCommit(ref, commit, app.source.verify);
  return env.source.snapshot(ref, commit);
}

/** The read step's work, shared with the plan preview: the desired state and service specs of one snapshot. */
export async function readDesired(env: Pick<SyncEnv, 'reader' | 'deployed'>, app: AppRecord, snap: CommitSnapshot): Promise<{ read: DesiredRead; routes: string[] }> {
  const read = await env.reader.read(snap, {
    path: app.source.path, namespace: app.namespace, commit: snap.revision, repoURL: app.source.repoURL, branch: app.source.branch,
    // Unchanged static files and folders are reused from what is deployed, unread.
    deployed: env.deployed.get(app.id) ?? null,
  });
  if (read.services.length && !app.allowServices) throw servicesForbidden(app);
  return { read, routes: read.services.filter((s) => s.route).map((s) => s.route as string) };
}

/** The plan step's work, shared with the plan preview: one plan against what is deployed (`host`: the application's service host, if any). */
export function planAgainstDeployed(env: Pick<SyncEnv, 'deployed' | 'deployer'>, app: AppRecord, read: DesiredRead, host: ServiceHost | null): Plan {
  return planApplication(
    { state: read.state, services: read.services },
    { state: withUnavailable(env.deployed.get(app.id) ?? null, env.deployer.unavailable(identity(app))), services: host?.appliedSpecs() ?? [] },
  );
}

/** Throws OWNERSHIP_CONFLICT when another application of the namespace serves a path this one wants. */
export function checkOwnership(serving: ServingTable, app: AppIdentity, state: DeployedState, serviceRoutes: readonly string[]): void {
  const problems: string[] = [];
  const owner = (key: string): string => key.split('/')[1] ?? key;
  for (const f of state.functions) {
    const o = serving.functionOwner(app.namespace, f.path, app.key);
    if (o) problems.push(`function path ${f.path} is owned by application '${owner(o)}' in namespace '${app.namespace}'`);
  }
  for (const route of serviceRoutes) {
    const o = serving.functionOwner(app.namespace, route, app.key);
    if (o) problems.push(`service route ${route} is owned by application '${owner(o)}' in namespace '${app.namespace}'`);
  }
  if (state.static) {
    const o = serving.staticOwner(app.namespace, app.key);
    if (o) problems.push(`the static site of namespace '${app.namespace}' is owned by application '${owner(o)}'`);
  }
  if (problems.length) throw new ZvError('OWNERSHIP_CONFLICT', problems.join('; '));
}

export class SyncRun {
  private readonly id: AppIdentity;
  private readonly ref: RepoRef;
  private readonly meta: EventMeta;
  // What the steps found, in order.
  private commit: string | null = null;
  private snapshot: CommitSnapshot | null = null;
  private read: DesiredRead | null = null;
  private routes: string[] = [];
  private host: ServiceHost | null = null;
  private before: DeployedState | null = null;
  private plan: Plan | null = null;
  private prepared: Prepared | null = null;

  constructor(
    private readonly env: SyncEnv,
    private readonly app: AppRecord,
    private readonly syncId: number,
    private readonly opts: { revision?: string | undefined; cause: SyncCause },
  ) {
    this.id = identity(app);
    // The namespace picks the credential of a private repository.
    this.ref = { ...app.source, namespace: app.namespace };
    this.meta = env.eventMeta(app);
  }

  /** Runs every step, then finish; never throws for a failure of the sync itself (it is the outcome). */
  async run(): Promise<SyncResult> {
    let outcome: SyncOutcome;
    try {
      outcome = await traced('reconcile', this.meta, async (more) => {
        more.commit = await this.step('head', () => this.headStep());
        await this.step('snapshot', () => this.snapshotStep());
        await this.step('read', () => this.readStep());
        await this.step('ownership', async () => this.ownershipStep());
        more.plan = (await this.step('plan', async () => this.planStep())).summary;
        await this.step('prepare', () => this.prepareStep());
        await this.step('commit', () => this.commitStep());
        const problems = await this.step('services', () => this.applyServicesStep());
        const services = this.host?.lastResult();
        if (services) Object.assign(more, { applied: services.applied.length, failed: services.failed.length, blocked: services.blocked.length });
        return { ok: true, commit: this.commit as string, plan: this.plan as Plan, problems } satisfies SyncOutcome;
      });
    } catch (e) {
      outcome = { ok: false, error: toZvError(e, 'INTERNAL'), commit: this.commit, plan: this.plan };
    }
    return { record: await this.step('finish', () => this.finish(outcome)), outcome };
  }

  /** Runs one named step between `zerverless:sync:step` events (start; end with duration and result). */
  private async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const base = { ...this.meta, syncId: this.syncId, trigger: this.opts.cause.trigger, step: name };
    publish(CHANNELS.syncStep, { ...base, commit: this.commit, phase: 'start' });
    try {
      const out = await fn();
      publish(CHANNELS.syncStep, { ...base, commit: this.commit, phase: 'end', result: 'ok', duration: performance.now() - started });
      return out;
    } catch (e) {
      publish(CHANNELS.syncStep, { ...base, commit: this.commit, phase: 'end', result: 'error', error: e instanceof Error ? e.message : String(e), duration: performance.now() - started });
      throw e;
    }
  }

  /** head: the commit to sync (asked of the remote unless the poll just read it). */
  private async headStep(): Promise<string> {
    this.commit = this.opts.revision ?? (await this.env.source.head(this.ref, { maxAgeMs: 0 }));
    return this.commit;
  }

  /**
   * snapshot: the commit's tree, read from the source's store without writing it out (fetched when
   * missing); a commit not signed by a trusted key is refused before anything of it is read.
   */
  private async snapshotStep(): Promise<void> {
    this.snapshot = await readSnapshot(this.env, this.app, this.ref, this.commit as string);
  }

  /** read: the desired state (functions, static site) and the service specs of the commit. */
  private async readStep(): Promise<void> {
    ({ read: this.read, routes: this.routes } = await readDesired(this.env, this.app, this.snapshot as CommitSnapshot));
  }

  /** ownership: no path, route or static site another application of the namespace serves. */
  private ownershipStep(): void {
    checkOwnership(this.env.serving, this.id, (this.read as DesiredRead).state, this.routes);
  }

  /** plan: one plan for functions, static files and services against what is deployed. */
  private planStep(): Plan {
    const read = this.read as DesiredRead;
    this.host = this.env.host(this.app, read.services.length > 0);
    this.before = this.env.deployed.get(this.app.id) ?? null;
    this.plan = planAgainstDeployed(this.env, this.app, read, this.host);
    return this.plan;
  }

  /** prepare: load new and changed functions (build images), store static blobs; serves nothing yet. */
  private async prepareStep(): Promise<void> {
    const read = this.read as DesiredRead;
    const host = this.host;
    const plan = this.plan as Plan;
    const prepare = () => this.env.deployer.prepare(this.id, read, plan, host ? host.routes(read.services) : new Map());
    // The functions and static wave; an application of services only has none (its routes are still prepared).
    const wave = plan.functions.length > 0 || plan.staticSite !== null;
    this.prepared = wave
      ? await traced('deploy', { ...this.meta, commit: this.commit, to_version: this.commit, from_version: this.before?.commit ?? null }, prepare)
      : await prepare();
  }

  /** commit: record the new deployed state, then switch functions and static files to it at once. */
  private async commitStep(): Promise<void> {
    const read = this.read as DesiredRead;
    const prepared = this.prepared as Prepared;
    await this.env.namespaceLock.after(this.app.namespace, async () => {
      try {
        // Another application of the namespace may have taken a path while this one prepared.
        checkOwnership(this.env.serving, this.id, read.state, this.routes);
        await this.env.store.commitDeployed(this.app.id, read.state);
      } catch (e) {
        await this.env.deployer.abandon(prepared);
        throw e;
      }
      this.env.deployed.set(this.app.id, read.state);
      this.env.deployer.commit(this.id, prepared);
    });
  }

  /**
   * apply services: one by one in dependency order. A failure leaves the others (and what was
   * running) in place; it is returned as problems, which make the application degraded.
   */
  private async applyServicesStep(): Promise<string> {
    const host = this.host;
    if (!host) return '';
    const read = this.read as DesiredRead;
    await host.apply(read.services, (this.snapshot as CommitSnapshot).revision);
    if (read.services.length === 0 && host.appliedSpecs().length === 0) await this.env.dropHost(this.app);
    return host.problems();
  }

  /**
   * The commit's message (first line), author and time for the history; only once the commit is
   * in the source's store (a failed fetch is not tried again for it). Null when unknown.
   */
  private async commitInfo(): Promise<CommitInfo | null> {
    if (!this.commit || !this.snapshot) return null;
    try {
      const info = this.snapshot.commitInfo;
      return { message: (info.message.split('\n')[0] ?? '').slice(0, 200), author: info.author, time: info.time ?? info.committedAt };
    } catch {
      return null;
    }
  }

  /** finish: the one write of the sync record and the status. */
  private async finish(outcome: SyncOutcome): Promise<AppRecord> {
    const { store, metrics, log } = this.env;
    const commitInfo = await this.commitInfo();
    const finishedAt = this.env.now().toISOString();
    if (outcome.ok) {
      const status: AppStatusPatch = outcome.problems
        ? { status: 'degraded', message: outcome.problems, lastSync: finishedAt }
        : { status: 'synced', message: '', lastSync: finishedAt };
      const record = await store.finishSync(this.syncId, { commit: outcome.commit, finishedAt, result: 'success', message: outcome.problems, plan: outcome.plan, commitInfo }, status);
      metrics?.syncs.inc({ result: 'success' });
      log.info({ ...this.meta, commit: outcome.commit, plan: outcome.plan.summary, ...(outcome.problems ? { problems: outcome.problems } : {}) }, 'sync finished');
      return record;
    }
    const { error } = outcome;
    const message = `${error.code}: ${error.message}`;
    const record = await store.finishSync(this.syncId, { commit: outcome.commit, finishedAt, result: 'error', message, plan: outcome.plan, commitInfo }, { status: 'error', message, lastSync: finishedAt });
    metrics?.syncs.inc({ result: 'error' });
    log.warn({ ...this.meta, commit: outcome.commit, code: error.code, retried: !isCommitFault(error.code) }, `sync failed: ${error.message}`);
    return record;
  }
}
