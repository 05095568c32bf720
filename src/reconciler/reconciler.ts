// The reconciler: the one loop of PRODUCT.md §7 and §11 for every kind of application. One poller
// reads branch heads; one keyed queue runs one sync per application at a time (sync.ts: head →
// artifact → read → ownership → plan → prepare → commit → apply services → finish). A sync that
// failed for a passing reason is retried with backoff (retry.ts); what runs is compared with what
// was deployed every drift interval (drift.ts). On start it serves every application's last
// deployed state, without git. The HTTP server and the createGitOps facade both compose this class.
import { ZvError, isCommitFault, toZvError } from '../errors/registry.js';
import type { DeployedState } from '../core/desired.js';
import { buildStatus, type AppStatus } from '../core/status.js';
import type { DesiredReader, Source } from '../sources/types.js';
import type { AppRecord, AppSource, BlobStore, NewApp, Store, SyncCause } from '../store/types.js';
import type { CommitVerification } from '../core/commit-policy.js';
import type { ServingTable } from '../serving/table.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { CHANNELS, publish, traced, type EventMeta } from '../telemetry/events.js';
import { Deployer, type DeployerOptions } from '../apply/functions.js';
import type { RuntimeSet } from '../runtimes/types.js';
import type { SecretsKeyring } from '../core/secrets.js';
import { ServiceHost, type HostedServiceRuntime } from '../apply/services/host.js';
import type { ServiceReconcileResult } from '../apply/services/index.js';
import type { ServiceSpec } from '../core/services/types.js';
import { isNoop } from '../core/plan/index.js';
import { SerialRunner } from './serial.js';
import { Semaphore } from '../core/semaphore.js';
import { Poller } from './poller.js';
import { DEFAULT_RETRY, RetrySchedule, type RetryPolicy, type RetryState } from './retry.js';
import { SyncRun, appKey, identity, type SyncEnv, type SyncOutcome } from './sync.js';
import { describeRepairs, repairDrift, type DriftRepair } from './drift.js';
import { previewPlan, type PlanPreview } from './preview.js';
import { appChanged } from './monorepo.js';
import { transitionEvent, type NotifyEventName } from '../core/notify.js';
import { rollbackReason, runRollback } from './rollback.js';

export { appKey };

export interface ReconcilerDeps {
  store: Store;
  source: Source;
  reader: DesiredReader;
  runtimes: RuntimeSet;
  serving: ServingTable;
  blobs: BlobStore;
  logger: Logger;
  metrics?: Metrics;
  pollIntervalMs: number;
  /** How often what runs is checked against what was deployed and repaired (reconciler/drift.ts); 0: never. */
  driftIntervalMs?: number;
  now?: () => Date;
  /** Where services keep their folders. */
  dataDir: string;
  /** Makes the service runtime of one application (default: none, and apps/ folders are refused). */
  serviceRuntime?: (dir: string, namespace: string, app: string) => HostedServiceRuntime;
  /** Decrypts functions' envFrom files when they are loaded (the reader gets it too). */
  secrets?: SecretsKeyring;
  /** Backoff of background retries (default 10 s doubling to 10 min). */
  retry?: RetryPolicy;
  /** The metadata of an application's telemetry events (default: app, namespace, repo, branch). */
  eventMeta?: (app: AppRecord) => EventMeta;
  /** How long a service waits for each of its dependencies to be ready (default 120 s). */
  healthTimeoutMs?: number;
  /** Syncs running at once across applications (--max-syncs, default 4); the others wait their turn, shown as `syncing`. */
  maxSyncs?: number;
  /** Lua, JS and Python functions are unloaded after this long without a call (default 5 min); 0: never. */
  functionIdleMs?: number;
  /**
   * Told of each notification event (PRODUCT.md §11): a status transition of a sync, or a rollback
   * (`notify`). Must not throw or block: delivery is queued elsewhere (src/notify/).
   */
  onNotify?: (app: AppRecord, event: NotifyEvent) => void;
  /** Deployed revisions kept per application for rollback (PRODUCT.md §11; default 20). */
  revisionsKept?: number;
  /** Told every line a function prints (the kept logs); see DeployerOptions.functionOutput. */
  functionOutput?: DeployerOptions['functionOutput'];
  /** Removes the kept logs of an application being removed. */
  removeLogs?: (app: { namespace: string; name: string }) => Promise<void>;
}

/** Revisions kept per application when nothing else is configured. */
export const DEFAULT_REVISIONS_KEPT = 20;

/** One notification: what happened to the application, at which commit, and its status after. */
export interface NotifyEvent {
  event: NotifyEventName;
  commit: string | null;
  status: string;
  message: string;
  at: string;
}

/** Syncs the loop starts by itself, which leave a suspended application alone (PRODUCT.md §11). */
const AUTOMATIC: ReadonlySet<SyncCause['trigger']> = new Set(['poll', 'webhook', 'retry', 'drift']);

/** Syncs running at once when nothing else is configured. */
export const DEFAULT_MAX_SYNCS = 4;

const defaultEventMeta = (app: AppRecord): EventMeta => ({ app: app.name, namespace: app.namespace, repo: app.source.repoURL, branch: app.source.branch });

/** Triggers of syncs the loop starts by itself: a retry of one never shows as `syncing` (the failure stays visible). */
const BACKGROUND: ReadonlySet<SyncCause['trigger']> = new Set(['retry']);

export class Reconciler {
  /** The keyed queue: one sync (or removal, or repair) per application at a time. */
  private readonly runner = new SerialRunner();
  /** Serialises the check-ownership → store → switch step per namespace. */
  private readonly namespaceLock = new SerialRunner();
  private readonly deployer: Deployer;
  private readonly poller: Poller;
  private readonly retries: RetrySchedule;
  /** Deployed state per app id, mirrored from the store for planning and ownership checks. */
  private readonly deployed = new Map<number, DeployedState>();
  /** Head commit whose sync failed because of the commit, so the poll does not retry it. */
  private readonly failedHead = new Map<number, string>();
  /** What started the sync running now, per app id. */
  private readonly running = new Map<number, SyncCause>();
  /** How the last sync of each application ended (since this process started). */
  private readonly outcomes = new Map<number, SyncOutcome>();
  private readonly now: () => Date;
  private readonly log: Logger;
  private readonly env: SyncEnv;
  private stopping = false;
  /** The service host of each application that has (or had) an apps/ folder. */
  private readonly hosts = new Map<number, ServiceHost>();
  /** The cap on syncs running at once, shared by explicit syncs, registrations, polls and retries. */
  private readonly syncSlots: Semaphore;
  /** Per app id, the sync queued that waits for a slot (and what asked for it); a new request joins it. */
  private readonly waitingSyncs = new Map<number, { run: Promise<AppRecord>; cause: SyncCause; abort: AbortController }>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.log = deps.logger.child({ component: 'reconciler' });
    this.deployer = new Deployer(deps.runtimes, deps.blobs, deps.serving, deps.logger, deps.secrets, { functionIdleMs: deps.functionIdleMs, functionOutput: deps.functionOutput });
    this.now = deps.now ?? (() => new Date());
    this.syncSlots = new Semaphore(deps.maxSyncs ?? DEFAULT_MAX_SYNCS);
    deps.metrics?.countApplications(async () => (await deps.store.listApps({ limit: Number.MAX_SAFE_INTEGER })).apps.map((a) => a.status));
    this.poller = new Poller({
      store: deps.store,
      source: deps.source,
      intervalMs: deps.pollIntervalMs,
      log: this.log,
      onHead: (app, head) => void this.headSeen(app.id, head),
      onHeadError: (app, err) => void this.headFailed(app, err),
      onRound: (r) => deps.metrics?.pollLateness.set(r.latenessMs / 1000),
    });
    this.retries = new RetrySchedule(deps.retry ?? DEFAULT_RETRY, this.now, (id) => {
      void this.sync(id, { cause: { trigger: 'retry', actor: null } }).catch(() => undefined);
    });
    this.env = {
      store: deps.store,
      source: deps.source,
      reader: deps.reader,
      serving: deps.serving,
      deployer: this.deployer,
      log: this.log,
      metrics: deps.metrics,
      now: this.now,
      eventMeta: deps.eventMeta ?? defaultEventMeta,
      deployed: this.deployed,
      namespaceLock: this.namespaceLock,
      host: (app, create) => (create || this.hosts.has(app.id) ? this.host(app) : null),
      dropHost: async (app) => {
        const h = this.hosts.get(app.id);
        this.hosts.delete(app.id);
        await h?.close();
      },
    };
  }

  private host(app: AppRecord): ServiceHost {
    let h = this.hosts.get(app.id);
    if (!h) {
      const make = this.deps.serviceRuntime;
      if (!make) throw new ZvError('RUNTIME_UNAVAILABLE', 'this server does not run services from apps/ folders');
      h = new ServiceHost({ dataDir: this.deps.dataDir, appId: app.id, namespace: app.namespace, app: app.name, logger: this.deps.logger, createRuntime: (dir) => make(dir, app.namespace, app.name), store: this.deps.store,
        ...(this.deps.eventMeta ? { meta: this.deps.eventMeta(app) } : {}),
        ...(this.deps.healthTimeoutMs !== undefined ? { healthTimeoutMs: this.deps.healthTimeoutMs } : {}),
      });
      this.hosts.set(app.id, h);
    }
    return h;
  }

  private wantsSync(app: AppRecord, head: string): boolean {
    if (head === this.failedHead.get(app.id)) return false;
    // A moved branch syncs at once, unless this head was seen to change nothing of the application (monorepos).
    if (head !== app.commit && head !== this.seenHead.get(app.id)) return true;
    // A passing failure is retried by its backoff schedule, not by every poll.
    if (this.retries.get(app.id)) return false;
    // The status says error (e.g. the head could not be read before); or a function that could not
    // be restored (e.g. its image was removed), which a sync rebuilds.
    const overlays = this.deployer.overlays.get(appKey(app.namespace, app.name));
    const failed = [...(overlays?.values() ?? [])].some((o) => o.status === 'failed') || this.deployer.unavailable(identity(app)).size > 0;
    // Services not at the served commit (e.g. the server stopped while applying them) or left
    // failed or blocked by their restore are tried again.
    const host = this.hosts.get(app.id);
    const services = host !== undefined && (host.hasProblems() || (host.appliedSpecs().length > 0 && host.appliedCommit() !== app.commit));
    return app.status === 'error' || failed || services;
  }

  /**
   * The poll read a branch head. The record the poll listed may be older than the head check (a sync
   * may have finished meanwhile), so the decision is made on a fresh one: no redundant sync.
   */
  private async headSeen(appId: number, head: string): Promise<void> {
    const app = await this.deps.store.getAppById(appId).catch(() => null);
    if (!app || this.stopping || app.suspended || this.polledHead.get(app.id) === head) return;
    if (!this.wantsSync(app, head)) return;
    // Remembered while that sync is queued or running, so that polls meanwhile do not queue it again.
    this.polledHead.set(app.id, head);
    try {
      await this.sync(app.id, { revision: head });
    } catch {
      // recorded in the status by the sync itself
    } finally {
      if (this.polledHead.get(app.id) === head) this.polledHead.delete(app.id);
    }
  }

  private readonly polledHead = new Map<number, string>();

  /**
   * Monorepos (PRODUCT.md §11): per app id, the newest branch head a poll or webhook saw that changed
   * nothing the application reads (its folder, or its `paths` globs). It is not synced; the status
   * shows it as `source.seenCommit`. Kept in memory: after a restart the first poll compares again.
   */
  private readonly seenHead = new Map<number, string>();

  /**
   * Whether a poll or webhook sync of `app` to `head` can be skipped: the application is synced and
   * whole, and nothing it reads differs between the served commit and `head` (monorepo.ts). Any
   * doubt (a commit that cannot be read) means a sync.
   */
  private async unchangedFor(app: AppRecord, head: string): Promise<boolean> {
    if (!app.commit || head === app.commit || app.status !== 'synced' || this.retries.get(app.id) || this.wantsSync(app, app.commit)) return false;
    // An application of the whole repository reads every commit (an empty one too): no comparison.
    if (app.source.path === '' && !app.source.paths?.length) return false;
    try {
      const ref = { ...app.source, namespace: app.namespace };
      const [from, to] = await Promise.all([this.deps.source.snapshot(ref, app.commit), this.deps.source.snapshot(ref, head)]);
      return !(await appChanged(from, to, app.source.path, app.source.paths));
    } catch (e) {
      this.log.debug({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'monorepo check failed; syncing');
      return false;
    }
  }

  /**
   * The poll could not read the branch head (repository deleted, unreachable, credentials refused):
   * the last good revision keeps serving, and the status says so instead of staying `synced`. The
   * next poll that reads the head syncs again (status `error` → sync) and clears it.
   */
  private async headFailed(app: AppRecord, err: ZvError): Promise<void> {
    if (this.stopping || this.isSyncing(app.id)) return;
    const message = `${err.code}: the branch head cannot be read: ${err.message}`;
    const now = await this.deps.store.getAppById(app.id);
    if (!now || now.suspended || (now.status === 'error' && now.message === message)) return;
    const updated = await this.deps.store.updateApp(app.id, { status: 'error', message }).catch(() => null);
    if (updated && transitionEvent(now, updated)) this.notify(updated, 'error');
    this.log.warn({ namespace: app.namespace, app: app.name, code: err.code }, 'the branch head cannot be read; the last good revision keeps serving');
  }

  /** Serves every application's last synced revision, from the store only (no git). */
  async restore(): Promise<void> {
    const { apps } = await this.deps.store.listApps({ limit: Number.MAX_SAFE_INTEGER });
    await Promise.all(
      apps.map(async (app) => {
        const [last] = await this.deps.store.listSyncs(app.id, 1);
        if (last?.result === 'running') {
          await this.deps.store.finishSync(last.id, { commit: last.commit, finishedAt: this.now().toISOString(), result: 'error', message: 'INTERNAL: the server stopped during this sync', plan: last.plan }, {});
        }
        const deployed = await this.deps.store.getDeployed(app.id);
        if (deployed) this.deployed.set(app.id, deployed);
        if (deployed) await this.keepFirstRevision(app, deployed);
        // Services: their applied specs are on disk; routes are served at once, processes come back
        // in the background (reusing fetched and installed versions).
        let host: ServiceHost | null = null;
        if (this.deps.serviceRuntime) {
          host = this.host(app);
          try {
            await host.load();
          } catch (e) {
            this.log.error({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'the applied service specs cannot be read; a sync will redeploy them');
          }
          if (host.appliedSpecs().length === 0) host = null;
        }
        if (!deployed && !host) return;
        await this.deployer.restore(identity(app), deployed, host ? host.routes(host.appliedSpecs()) : new Map());
        if (host) {
          const h = host;
          void h.restore().then((r) => {
            if (r && (r.failed.length || r.blocked.length)) this.log.warn({ namespace: app.namespace, app: app.name, problems: h.problems() }, 'some services did not come back');
          }, (e: unknown) => this.log.error({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'services could not be restored'));
        }
      }),
    );
    this.log.info({ apps: apps.length }, 'restored deployed state');
    // Containers of functions no longer deployed (e.g. removed while the server was down) go now.
    await this.deployer.collectGarbage();
  }

  /**
   * An application deployed before revisions were kept (or whose revisions are gone) gets its
   * deployed state as its first revision, with the commit info of the sync that deployed it.
   */
  private async keepFirstRevision(app: AppRecord, deployed: DeployedState): Promise<void> {
    try {
      if ((await this.deps.store.listRevisions(app.id)).length > 0) return;
      const syncs = await this.deps.store.listSyncs(app.id);
      const by = syncs.find((s) => s.result === 'success' && s.commit === deployed.commit);
      const applied = await this.deps.store.getAppliedServices(app.id);
      await this.deps.store.addRevision(app.id, {
        state: deployed, services: applied ? applied.specs : null, commitInfo: by?.commitInfo ?? null,
        deployedAt: by?.finishedAt ?? app.lastSync ?? this.now().toISOString(), cause: by ? { trigger: by.trigger, actor: by.actor } : { trigger: 'poll', actor: null },
      }, this.deps.revisionsKept ?? DEFAULT_REVISIONS_KEPT);
    } catch (e) {
      this.log.warn({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'the deployed revision could not be kept');
    }
  }

  /** Starts the poll and, every `driftIntervalMs`, drift repair. */
  startPolling(): Promise<void> {
    this.scheduleDrift();
    return this.poller.start();
  }

  private driftTimer: NodeJS.Timeout | null = null;

  private scheduleDrift(): void {
    const every = this.deps.driftIntervalMs ?? 0;
    if (every <= 0 || this.stopping || this.driftTimer) return;
    this.driftTimer = setTimeout(() => {
      void this.driftPass().finally(() => {
        this.driftTimer = null;
        this.scheduleDrift();
      });
    }, every);
    this.driftTimer.unref();
  }

  /** One drift pass over every application (each in its queue, never beside its sync). */
  private async driftPass(): Promise<void> {
    try {
      const { apps } = await this.deps.store.listApps({ limit: Number.MAX_SAFE_INTEGER });
      for (const app of apps) {
        if (this.stopping) return;
        // A sync under way puts everything in place itself; a suspended application is left alone.
        if (this.isSyncing(app.id) || app.suspended) continue;
        await this.repairDrift(app.id).catch((e: unknown) => this.log.warn({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'drift repair failed'));
      }
    } catch (e) {
      this.log.warn({ err: toZvError(e).message }, 'drift pass failed');
    }
  }

  /**
   * Checks what runs against what was deployed for one application and puts it back (PRODUCT.md
   * §11): containers, service processes, static blobs. A pass that found something is an entry in
   * the history (trigger `drift`). Resolves with the repairs made or tried.
   */
  repairDrift(appId: number): Promise<DriftRepair[]> {
    if (this.stopping) return Promise.reject(new ZvError('NOT_READY', 'the server is shutting down'));
    return this.runner.after(String(appId), async () => {
      const app = await this.deps.store.getAppById(appId);
      if (!app || app.suspended) return [];
      const deployed = this.deployed.get(app.id) ?? null;
      const host = this.hosts.get(app.id) ?? null;
      if (!deployed && !host) return [];
      const repairs = await repairDrift({ ...identity(app), source: app.source, namespace: app.namespace }, {
        deployer: this.deployer, host, source: this.deps.source, deployed, logger: this.log,
      });
      if (repairs.length) {
        const at = this.now().toISOString();
        const syncId = await this.deps.store.startSync(app.id, at, { trigger: 'drift', actor: null });
        const failed = repairs.some((r) => r.result === 'failed');
        await this.deps.store.finishSync(syncId, { commit: app.commit, finishedAt: this.now().toISOString(), result: failed ? 'error' : 'success', message: describeRepairs(repairs), plan: null }, {});
      }
      return repairs;
    });
  }

  /** Stops polling, retries and repairs, refuses new syncs and waits for the running ones. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of this.waitingSyncs.values()) w.abort.abort(new ZvError('NOT_READY', 'the server is shutting down'));
    this.retries.close();
    if (this.driftTimer) clearTimeout(this.driftTimer);
    this.driftTimer = null;
    await this.poller.stop();
    for (const h of this.hosts.values()) h.interruptApply();
    await this.runner.idle();
    await Promise.all([...this.hosts.values()].map((h) => h.close()));
    if (this.gcTimer) clearTimeout(this.gcTimer);
    this.gcTimer = null;
    await this.gcRunning;
  }

  async register(input: NewApp, cause: SyncCause = { trigger: 'register', actor: null }): Promise<AppRecord> {
    if (this.stopping) throw new ZvError('NOT_READY', 'the server is shutting down');
    const app = await this.deps.store.createApp(input);
    void this.sync(app.id, { cause }).catch(() => undefined);
    this.poller.add(app);
    return app;
  }

  isSyncing(appId: number): boolean {
    return this.runner.isBusy(String(appId));
  }

  /** Runs a sync now (asking the remote for the head), or joins the one queued. Resolves with the record after it. */
  sync(appId: number, opts: { revision?: string; cause?: SyncCause } = {}): Promise<AppRecord> {
    if (this.stopping) return Promise.reject(new ZvError('NOT_READY', 'the server is shutting down'));
    // A sync that still waits for a slot has read nothing yet: joining it is joining the one queued.
    const cause = opts.cause ?? { trigger: 'poll', actor: null };
    const waiting = this.waitingSyncs.get(appId);
    if (waiting) {
      // An explicit request joining a queued automatic one makes it explicit: it then runs even for
      // a suspended application, and the history says who asked.
      if (AUTOMATIC.has(waiting.cause.trigger) && !AUTOMATIC.has(cause.trigger)) waiting.cause = cause;
      return waiting.run;
    }
    // Removing the application or stopping the server ends the wait.
    const abort = new AbortController();
    const run: Promise<AppRecord> = this.runner.run(String(appId), async () => {
      let release: () => void;
      let asked = cause;
      try {
        release = await this.syncSlots.acquire(abort.signal);
      } finally {
        const w = this.waitingSyncs.get(appId);
        if (w?.run === run) {
          asked = w.cause;
          this.waitingSyncs.delete(appId);
        }
      }
      // From the slot on, the cause is known to status(): a background retry never shows `syncing`.
      this.running.set(appId, asked);
      try {
        if (this.stopping) throw new ZvError('NOT_READY', 'the server is shutting down');
        return await this.syncOnce(appId, opts.revision, asked);
      } finally {
        this.running.delete(appId);
        release();
      }
    });
    if (!this.waitingSyncs.has(appId)) this.waitingSyncs.set(appId, { run, cause, abort });
    return run;
  }

  /**
   * Pauses the application's automatic syncs (PRODUCT.md §11): polls, webhooks, retries and drift
   * repair leave it alone until `resume`; an explicit sync still runs. `untilSync` (a rollback): an
   * explicit sync that succeeds ends it too. Suspending a suspended application keeps the first time.
   */
  async suspend(app: AppRecord, s: { by: string | null; reason: string; untilSync?: boolean }): Promise<AppRecord> {
    const at = app.suspended && !app.suspended.untilSync === !s.untilSync ? app.suspended.at : this.now().toISOString();
    const record = await this.deps.store.updateApp(app.id, { suspended: { at, by: s.by, reason: s.reason, ...(s.untilSync ? { untilSync: true } : {}) } });
    this.retries.clear(app.id);
    this.log.info({ namespace: app.namespace, app: app.name, by: s.by, reason: s.reason }, 'automatic syncs suspended');
    publish(CHANNELS.appSuspend, { app: app.name, namespace: app.namespace, by: s.by, reason: s.reason, untilSync: s.untilSync === true });
    return record;
  }

  /** Ends a suspension; the branch is checked at once, and a head that moved meanwhile syncs. */
  async resume(app: AppRecord, by: string | null): Promise<AppRecord> {
    const record = await this.deps.store.updateApp(app.id, { suspended: null });
    if (app.suspended) this.log.info({ namespace: app.namespace, app: app.name, by }, 'automatic syncs resumed');
    publish(CHANNELS.appResume, { app: app.name, namespace: app.namespace, by });
    if (!this.stopping) this.poller.add(record, 0);
    return record;
  }

  /** Sends a notification event of the application (e.g. `rolledBack`, from a rollback); never throws. */
  notify(app: AppRecord, event: NotifyEventName, more: { commit?: string | null; message?: string } = {}): void {
    try {
      this.deps.onNotify?.(app, { event, commit: more.commit ?? app.commit, status: app.status, message: more.message ?? app.message, at: this.now().toISOString() });
    } catch (e) {
      this.log.warn({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'notification not queued');
    }
  }

  /** The background retry scheduled for the application, if any. */
  retryOf(appId: number): RetryState | undefined {
    return this.retries.get(appId);
  }

  /**
   * What a sync of `revision` (a branch or a full commit SHA; default the branch head) would do,
   * against what is deployed now; changes nothing (preview.ts). Outside the application's queue.
   */
  preview(app: AppRecord, revision?: string): Promise<PlanPreview> {
    if (this.stopping) return Promise.reject(new ZvError('NOT_READY', 'the server is shutting down'));
    return previewPlan(this.env, app, revision);
  }

  /** How the last sync of the application ended in this process (null before one). */
  lastOutcome(appId: number): SyncOutcome | null {
    return this.outcomes.get(appId) ?? null;
  }

  private async syncOnce(appId: number, revision: string | undefined, cause: SyncCause): Promise<AppRecord> {
    while (this.gcRunning) await this.gcRunning;
    const app = await this.deps.store.getAppById(appId);
    if (!app) throw new ZvError('APP_NOT_FOUND', `application ${appId} no longer exists`);
    // Polls, webhooks and retries leave a suspended application alone; an explicit sync runs.
    if (app.suspended && AUTOMATIC.has(cause.trigger)) {
      this.retries.clear(appId);
      return app;
    }
    // Monorepos: a poll or webhook whose head changes nothing the application reads records it as
    // seen and restarts nothing (no history entry); an explicit sync always runs.
    if ((cause.trigger === 'poll' || cause.trigger === 'webhook') && app.commit) {
      const head = revision ?? (await this.deps.source.head({ ...app.source, namespace: app.namespace }, { maxAgeMs: 0 }).catch(() => undefined));
      if (head !== undefined && (await this.unchangedFor(app, head))) {
        if (this.seenHead.get(appId) !== head) this.log.info({ namespace: app.namespace, app: app.name, commit: head }, 'the new head changes nothing of the application; recorded as seen');
        this.seenHead.set(appId, head);
        return app;
      }
      revision = head;
    }
    // A poll queued while another sync ran (and moved the application to this head) has nothing left to do.
    if (cause.trigger === 'poll' && revision !== undefined && revision === app.commit && !this.retries.get(appId) && !this.wantsSync(app, revision)) return app;
    this.activeSyncs++;
    this.running.set(appId, cause);
    try {
      const syncId = await this.deps.store.startSync(app.id, this.now().toISOString(), cause);
      const { record: after, outcome } = await new SyncRun(this.env, app, syncId, { revision, cause }).run();
      let record = after;
      this.outcomes.set(appId, outcome);
      if (outcome.ok) await this.recordRevision(app, record, outcome, cause);
      this.afterSync(app, outcome);
      // A rollback's suspension ends with an explicit sync that succeeded (a suspend only with resume).
      if (outcome.ok && record.suspended?.untilSync && !AUTOMATIC.has(cause.trigger) && cause.trigger !== 'rollback') {
        record = await this.deps.store.updateApp(appId, { suspended: null });
      }
      const event = transitionEvent(app, record);
      if (event) this.notify(record, event, { commit: outcome.commit });
      return record;
    } finally {
      // Kept while the sync ran, so that polls meanwhile do not queue another sync of the seen head.
      this.seenHead.delete(appId);
      this.activeSyncs--;
    }
  }

  /**
   * Keeps what a successful sync deployed as the newest revision (PRODUCT.md §11) when it changed
   * what is deployed (another commit, or any change of its plan). Never fails the sync.
   */
  private async recordRevision(before: AppRecord, after: AppRecord, outcome: Extract<SyncOutcome, { ok: true }>, cause: SyncCause): Promise<void> {
    const state = this.deployed.get(before.id);
    const { create, update, delete: removed } = outcome.plan.summary;
    if (!state || (before.commit === outcome.commit && create + update + removed === 0)) return;
    try {
      const [last] = await this.deps.store.listSyncs(before.id, 1);
      const host = this.hosts.get(before.id);
      // The source the sync read: a rollback after a PATCH may have to read a file of it again.
      const source = { repoURL: before.source.repoURL, branch: before.source.branch, path: before.source.path };
      await this.deps.store.addRevision(before.id, {
        state, services: host ? host.appliedSpecs() : null, source, commitInfo: last?.commitInfo ?? null, deployedAt: after.lastSync ?? this.now().toISOString(), cause,
      }, this.deps.revisionsKept ?? DEFAULT_REVISIONS_KEPT);
    } catch (e) {
      this.log.warn({ namespace: before.namespace, app: before.name, err: toZvError(e).message }, 'the deployed revision could not be kept');
    }
  }

  /**
   * Switches the application back to a kept revision without git (PRODUCT.md §11), in its queue
   * behind any sync under way, then suspends automatic syncs until a resume or an explicit sync.
   * `commit` is the revision's full commit id. REVISION_NOT_FOUND when it is not kept.
   */
  rollback(app: AppRecord, commit: string, actor: string | null): Promise<AppRecord> {
    if (this.stopping) return Promise.reject(new ZvError('NOT_READY', 'the server is shutting down'));
    // No wait for a garbage collection under way: a rollback stores nothing (but the blobs of its own
    // revision that went missing), and the collector keeps every blob a kept revision uses.
    return this.runner.after(String(app.id), async () => {
      const fresh = await this.deps.store.getAppById(app.id);
      if (!fresh) throw new ZvError('APP_NOT_FOUND', `application '${app.name}' in namespace '${app.namespace}' no longer exists`);
      const rev = await this.deps.store.getRevision(app.id, commit);
      if (!rev) throw new ZvError('REVISION_NOT_FOUND', `application '${app.name}' keeps no revision ${commit}`);
      const cause: SyncCause = { trigger: 'rollback', actor };
      this.activeSyncs++;
      this.running.set(app.id, cause);
      try {
        const syncId = await this.deps.store.startSync(app.id, this.now().toISOString(), cause);
        const { record, outcome } = await runRollback(this.env, this.deps.blobs, fresh, rev, syncId, cause);
        this.outcomes.set(app.id, outcome);
        if (!outcome.ok) throw outcome.error;
        this.retries.clear(app.id);
        this.failedHead.delete(app.id);
        this.notify(record, 'rolledBack', { commit: rev.commit, message: rollbackReason(rev) });
        publish(CHANNELS.appRollback, { app: app.name, namespace: app.namespace, commit: rev.commit, by: actor, from: fresh.commit });
        return record;
      } finally {
        this.running.delete(app.id);
        this.activeSyncs--;
      }
    });
  }

  /**
   * Changes where the application syncs from (PRODUCT.md §11, `PATCH`), in its queue, then syncs it.
   * Nothing is removed first: what it deployed serves until a sync of the new source succeeds.
   */
  async changeSource(app: AppRecord, source: AppSource, cause: SyncCause): Promise<AppRecord> {
    if (this.stopping) throw new ZvError('NOT_READY', 'the server is shutting down');
    const record = await this.runner.after(String(app.id), async () => {
      const moved = await this.deps.store.setSource(app.id, source);
      this.failedHead.delete(app.id);
      this.seenHead.delete(app.id);
      this.retries.clear(app.id);
      this.poller.forget(app.id);
      this.poller.add(moved);
      this.log.info({ namespace: app.namespace, app: app.name, by: cause.actor, repo: source.repoURL, branch: source.branch, path: source.path }, 'source changed');
      return moved;
    });
    void this.sync(app.id, { cause }).catch(() => undefined);
    return record;
  }

  /** What a sync's outcome means for the loop: wait for a new commit, retry with backoff, or nothing. */
  private afterSync(app: AppRecord, outcome: SyncOutcome): void {
    if (outcome.ok) {
      this.failedHead.delete(app.id);
      if (outcome.problems) this.scheduleRetry(app, outcome.problems);
      else this.retries.clear(app.id);
      // A sync that changed nothing served (e.g. an unmoved head) leaves no garbage: no pass over
      // every blob of every application after it.
      if (!isNoop(outcome.plan)) this.collectGarbage();
      return;
    }
    if (isCommitFault(outcome.error.code)) {
      // This commit is bad: nothing to retry until the branch moves.
      if (outcome.commit) this.failedHead.set(app.id, outcome.commit);
      this.retries.clear(app.id);
      return;
    }
    this.scheduleRetry(app, `${outcome.error.code}: ${outcome.error.message}`);
  }

  private scheduleRetry(app: AppRecord, why: string): void {
    const r = this.retries.failed(app.id);
    if (r) this.log.info({ namespace: app.namespace, app: app.name, attempt: r.attempt, nextAt: r.nextAt, why }, 'sync will be retried');
  }

  /** Removes everything the application deployed, then the application. */
  async remove(app: AppRecord): Promise<void> {
    // A sync still waiting for a slot is not run for an application about to go.
    this.waitingSyncs.get(app.id)?.abort.abort(new ZvError('APP_NOT_FOUND', `application '${app.name}' in namespace '${app.namespace}' was removed`));
    this.poller.forget(app.id);
    await this.runner.after(String(app.id), () =>
      traced('remove', { app: app.name, namespace: app.namespace }, async () => {
        await this.deps.store.deleteApp(app.id);
        this.deployed.delete(app.id);
        this.failedHead.delete(app.id);
        this.seenHead.delete(app.id);
        this.outcomes.delete(app.id);
        this.retries.clear(app.id);
        this.deployer.remove(identity(app));
        const host = this.hosts.get(app.id);
        this.hosts.delete(app.id);
        await host?.removeAll();
        await this.deps.removeLogs?.({ namespace: app.namespace, name: app.name }).catch((e: unknown) =>
          this.log.warn({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'could not remove the kept logs'));
      }),
    );
    this.collectGarbage();
  }

  /** The kept output of one service of the application (install, build and process lines). */
  async serviceLogs(app: AppRecord, service: string): Promise<string[]> {
    const host = this.hosts.get(app.id);
    if (!host || !(await host.knows(service))) {
      throw new ZvError('APP_NOT_FOUND', `application '${app.name}' in namespace '${app.namespace}' has no service '${service}'`);
    }
    return host.runtime.logs(service);
  }

  /** The services of the application (what the host applied and what its runtime runs). */
  services(appId: number): { applied: ServiceSpec[]; last: ServiceReconcileResult | null; host: ServiceHost } | null {
    const host = this.hosts.get(appId);
    return host ? { applied: host.appliedSpecs(), last: host.lastResult(), host } : null;
  }

  /**
   * Applies service specs outside git (the facade's deploy/remove/upgrade) through the same queue as
   * syncs: `next` gets the applied specs and returns the wanted ones. Git wins again at the next sync.
   */
  applyServices(app: AppRecord, next: (applied: ServiceSpec[]) => ServiceSpec[]): Promise<ServiceReconcileResult> {
    if (this.stopping) return Promise.reject(new ZvError('NOT_READY', 'the server is shutting down'));
    return this.runner.after(String(app.id), async () => {
      const host = this.host(app);
      return host.apply(next(host.appliedSpecs()), host.appliedCommit());
    });
  }

  private describeVerify(policy: CommitVerification): { type: CommitVerification['type']; keys: string[] } {
    return this.deps.source.describeVerify?.(policy) ?? { type: policy.type, keys: policy.keys.map(() => 'key') };
  }

  /** `settled`: the record is the end of a sync the caller waited for; do not show a queued one as `syncing`. */
  async status(app: AppRecord, opts: { settled?: boolean } = {}): Promise<AppStatus> {
    const host = this.hosts.get(app.id);
    const services = host ? await host.status() : [];
    const retry = this.retries.get(app.id);
    const s = buildStatus({
      name: app.name,
      namespace: app.namespace,
      // The signed-commit policy shows as its key fingerprints, not the keys.
      source: { repoURL: app.source.repoURL, branch: app.source.branch, path: app.source.path, ...(app.source.verify ? { verify: this.describeVerify(app.source.verify) } : {}) },
      commit: app.commit,
      lastSync: app.lastSync,
      status: app.status,
      message: app.message,
      warnings: app.warnings,
      deployed: this.deployed.get(app.id) ?? null,
      overlays: this.deployer.overlays.get(appKey(app.namespace, app.name)),
      facts: this.deployer.describe(identity(app)),
      services,
      ...(retry ? { retry } : {}),
      ...(app.suspended ? { suspended: app.suspended } : {}),
    });
    const seen = this.seenHead.get(app.id);
    if (seen !== undefined && seen !== app.commit) s.source.seenCommit = seen;
    if (app.source.paths?.length) s.source.paths = app.source.paths;
    // A background retry never hides the failure it retries (PRODUCT.md §11).
    const cause = this.running.get(app.id) ?? this.waitingSyncs.get(app.id)?.cause;
    if (!opts.settled && this.isSyncing(app.id) && !(cause && BACKGROUND.has(cause.trigger))) s.status = 'syncing';
    return s;
  }

  private activeSyncs = 0;
  private gcRunning: Promise<void> | null = null;
  private gcTimer: NodeJS.Timeout | null = null;

  /** Drops blobs and artifacts no application serves; never while a sync is writing them. */
  private collectGarbage(): void {
    if (this.gcTimer || this.stopping) return;
    this.gcTimer = setTimeout(() => {
      this.gcTimer = null;
      if (this.activeSyncs > 0 || this.gcRunning) return this.collectGarbage();
      this.gcRunning = this.gcOnce().finally(() => {
        this.gcRunning = null;
      });
    }, 1000);
    this.gcTimer.unref();
  }

  private async gcOnce(): Promise<void> {
    try {
      const keepBlobs = new Set<string>();
      const keepCommits = new Set<string>();
      for (const d of this.deployed.values()) {
        keepCommits.add(d.commit);
        for (const f of d.static?.files ?? []) keepBlobs.add(f.hash);
      }
      // Kept revisions' blobs stay, so a rollback needs nothing but the Store.
      for (const h of await this.deps.store.revisionBlobHashes()) keepBlobs.add(h);
      await this.deps.blobs.gc(keepBlobs);
      await this.deps.source.prune(keepCommits);
      await this.deployer.collectGarbage();
    } catch (e) {
      this.log.warn({ err: toZvError(e).message }, 'garbage collection failed');
    }
  }

}
