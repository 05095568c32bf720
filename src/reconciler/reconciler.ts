// The reconciler: for each application, pull → read → plan → apply, one sync at a time, on the poll
// or on request. A sync is all or nothing: any failure leaves the last good revision serving and
// records the error. On start it serves every application's last deployed state, without git.
import { ZvError, isCommitFault, toZvError } from '../errors/registry.js';
import type { DeployedState } from '../core/desired.js';
import { planApplication, type Plan } from '../core/plan/index.js';
import { buildStatus, type AppStatus } from '../core/status.js';
import type { Source } from '../sources/types.js';
import { summariseVerify } from '../sources/git/verify-policy.js';
import type { AppRecord, BlobStore, NewApp, Store, SyncCause } from '../store/types.js';
import type { ServingTable } from '../serving/table.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { traced } from '../telemetry/events.js';
import { Deployer, type AppIdentity } from '../apply/functions.js';
import { SerialRunner } from './serial.js';
import { Poller } from './poller.js';
import type { DesiredReader } from '../sources/types.js';
import type { RuntimeSet } from '../runtimes/types.js';
import type { SecretsKeyring } from '../core/secrets.js';
import { ServiceHost, type HostedServiceRuntime } from '../apply/services/host.js';

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
  /** Where services keep their folders and applied specs. */
  dataDir: string;
  /** Makes the service runtime of one application (default: none, and apps/ folders are refused). */
  serviceRuntime?: (dir: string, namespace: string) => HostedServiceRuntime;
  /** Decrypts functions' envFrom files when they are loaded (the reader gets it too). */
  secrets?: SecretsKeyring;
}

export const appKey = (namespace: string, name: string): string => `${namespace}/${name}`;
const identity = (a: AppRecord): AppIdentity => ({ key: appKey(a.namespace, a.name), name: a.name, namespace: a.namespace });

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

export class Reconciler {
  private readonly runner = new SerialRunner();
  /** Serialises the check-ownership → store → switch step per namespace. */
  private readonly namespaceLock = new SerialRunner();
  private readonly deployer: Deployer;
  private readonly poller: Poller;
  /** Deployed state per app id, mirrored from the store for planning and ownership checks. */
  private readonly deployed = new Map<number, DeployedState>();
  /** Head commit whose sync failed because of the commit, so the poll does not retry it. */
  private readonly failedHead = new Map<number, string>();
  private readonly now: () => Date;
  private readonly log: Logger;
  private stopping = false;
  /** The service host of each application that has (or had) an apps/ folder. */
  private readonly hosts = new Map<number, ServiceHost>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.log = deps.logger.child({ component: 'reconciler' });
    this.deployer = new Deployer(deps.runtimes, deps.blobs, deps.serving, deps.logger, deps.secrets);
    this.now = deps.now ?? (() => new Date());
    deps.metrics?.countApplications(async () => (await deps.store.listApps({ limit: Number.MAX_SAFE_INTEGER })).apps.map((a) => a.status));
    this.poller = new Poller({
      store: deps.store,
      source: deps.source,
      intervalMs: deps.pollIntervalMs,
      log: this.log,
      onHead: (app, head) => void this.headSeen(app.id, head),
      onHeadError: (app, err) => void this.headFailed(app, err),
    });
  }

  private host(app: AppRecord): ServiceHost {
    let h = this.hosts.get(app.id);
    if (!h) {
      const make = this.deps.serviceRuntime;
      if (!make) throw new ZvError('RUNTIME_UNAVAILABLE', 'this server does not run services from apps/ folders');
      h = new ServiceHost({ dataDir: this.deps.dataDir, appId: app.id, namespace: app.namespace, app: app.name, logger: this.deps.logger, createRuntime: (dir) => make(dir, app.namespace), store: this.deps.store });
      this.hosts.set(app.id, h);
    }
    return h;
  }

  private wantsSync(app: AppRecord, head: string): boolean {
    if (head === this.failedHead.get(app.id)) return false;
    // A moved branch; the branch back on the served commit while the status says error; or a
    // function that could not be restored (e.g. its image was removed), which a sync rebuilds.
    const overlays = this.deployer.overlays.get(appKey(app.namespace, app.name));
    const failed = [...(overlays?.values() ?? [])].some((o) => o.status === 'failed') || this.deployer.unavailable(identity(app)).size > 0;
    // Services not at the served commit (e.g. the server stopped while applying them) or left
    // failed or blocked by the last apply (e.g. the registry was down) are tried again.
    const host = this.hosts.get(app.id);
    const services = host !== undefined && (host.hasProblems() || (host.appliedSpecs().length > 0 && host.appliedCommit() !== app.commit));
    return head !== app.commit || app.status === 'error' || failed || services;
  }

  /**
   * The poll read a branch head. The record the poll listed may be older than the head check (a sync
   * may have finished meanwhile), so the decision is made on a fresh one: no redundant sync.
   */
  private async headSeen(appId: number, head: string): Promise<void> {
    const app = await this.deps.store.getAppById(appId).catch(() => null);
    if (!app || this.stopping || this.polledHead.get(app.id) === head) return;
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
   * The poll could not read the branch head (repository deleted, unreachable, credentials refused):
   * the last good revision keeps serving, and the status says so instead of staying `synced`. The
   * next poll that reads the head syncs again (status `error` → sync) and clears it.
   */
  private async headFailed(app: AppRecord, err: ZvError): Promise<void> {
    if (this.stopping || this.isSyncing(app.id)) return;
    const message = `${err.code}: the branch head cannot be read: ${err.message}`;
    const now = await this.deps.store.getAppById(app.id);
    if (!now || (now.status === 'error' && now.message === message)) return;
    await this.deps.store.updateApp(app.id, { status: 'error', message }).catch(() => undefined);
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

  startPolling(): Promise<void> {
    return this.poller.start();
  }

  /** Stops polling, refuses new syncs and waits for the running ones. */
  async stop(): Promise<void> {
    this.stopping = true;
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
    this.poller.watch(app.source.repoURL, app.source.branch);
    return app;
  }

  isSyncing(appId: number): boolean {
    return this.runner.isBusy(String(appId));
  }

  /** Runs a sync now (asking the remote for the head), or joins the one queued. Resolves with the record after it. */
  sync(appId: number, opts: { revision?: string; cause?: SyncCause } = {}): Promise<AppRecord> {
    if (this.stopping) return Promise.reject(new ZvError('NOT_READY', 'the server is shutting down'));
    return this.runner.run(String(appId), () => this.syncOnce(appId, opts.revision, opts.cause));
  }

  private async syncOnce(appId: number, revision?: string, cause?: SyncCause): Promise<AppRecord> {
    while (this.gcRunning) await this.gcRunning;
    this.activeSyncs++;
    try {
      return await this.syncSteps(appId, revision, cause);
    } finally {
      this.activeSyncs--;
    }
  }

  private async syncSteps(appId: number, revision?: string, cause: SyncCause = { trigger: 'poll', actor: null }): Promise<AppRecord> {
    const { store, source, reader } = this.deps;
    const app = await store.getAppById(appId);
    if (!app) throw new ZvError('APP_NOT_FOUND', `application ${appId} no longer exists`);
    const id = identity(app);
    const syncId = await store.startSync(app.id, this.now().toISOString(), cause);
    let commit: string | null = null;
    let plan: Plan | null = null;
    const meta = { app: app.name, namespace: app.namespace, repo: app.source.repoURL, branch: app.source.branch };
    try {
      return await traced('reconcile', meta, async (more) => {
        // The namespace picks the credential of a private repository.
        const ref = { ...app.source, namespace: app.namespace };
        const head = revision ?? (await source.head(ref, { maxAgeMs: 0 }));
        commit = head;
        more.commit = head;
        // A commit not signed by a trusted key is refused before its tree is even written out.
        if (app.source.verify) await source.verifyCommit(ref, head, app.source.verify);
        const artifact = await source.artifact(ref, head);
        const read = await reader.read(artifact.dir, { path: app.source.path, namespace: app.namespace, commit: artifact.revision, repoURL: app.source.repoURL, branch: app.source.branch });
        if (read.services.length && !app.allowServices) throw servicesForbidden(app);
        const routes = read.services.filter((s) => s.route).map((s) => s.route as string);
        this.checkOwnership(id, read.state, routes);
        const host = read.services.length || this.hosts.has(app.id) ? this.host(app) : null;
        const before = this.deployed.get(app.id) ?? null;
        const p = planApplication({ state: read.state, services: read.services }, { state: withUnavailable(before, this.deployer.unavailable(id)), services: host?.appliedSpecs() ?? [] });
        plan = p;
        more.plan = p.summary;
        const prepared = await traced('deploy', { ...meta, commit: head, to_version: head, from_version: before?.commit ?? null }, () =>
          this.deployer.prepare(id, read, p, host ? host.routes(read.services) : new Map()));
        const record = await this.namespaceLock.after(app.namespace, async () => {
          try {
            // Another application of the namespace may have taken a path while we prepared.
            this.checkOwnership(id, read.state, routes);
            await store.commitDeployed(app.id, read.state);
            const finishedAt = this.now().toISOString();
            const saved = await store.finishSync(syncId, { commit: artifact.revision, finishedAt, result: 'success', message: '', plan: p },
              { status: 'synced', message: '', lastSync: finishedAt });
            this.deployed.set(app.id, read.state);
            this.deployer.commit(id, prepared);
            return saved;
          } catch (e) {
            await this.deployer.abandon(prepared);
            throw e;
          }
        });
        this.failedHead.delete(app.id);
        let final = record;
        if (host) {
          // Services are applied one by one in dependency order; a failure leaves the others (and
          // what was running) in place and marks the application degraded.
          await host.apply(read.services, artifact.revision);
          const problems = host.problems();
          if (problems) final = await store.updateApp(app.id, { status: 'degraded', message: problems });
          if (read.services.length === 0 && host.appliedSpecs().length === 0) {
            await host.close();
            this.hosts.delete(app.id);
          }
        }
        this.deps.metrics?.syncs.inc({ result: 'success' });
        this.log.info({ ...meta, commit: artifact.revision, plan: p.summary }, 'sync finished');
        this.collectGarbage();
        return final;
      });
    } catch (e) {
      const err = toZvError(e, 'INTERNAL');
      const finishedAt = this.now().toISOString();
      if (commit && isCommitFault(err.code)) this.failedHead.set(app.id, commit);
      const message = `${err.code}: ${err.message}`;
      const record = await store.finishSync(syncId, { commit, finishedAt, result: 'error', message, plan }, { status: 'error', message, lastSync: finishedAt });
      this.deps.metrics?.syncs.inc({ result: 'error' });
      this.log.warn({ ...meta, commit, code: err.code }, `sync failed: ${err.message}`);
      return record;
    }
  }

  private checkOwnership(app: AppIdentity, state: DeployedState, serviceRoutes: string[] = []): void {
    const { serving } = this.deps;
    const problems: string[] = [];
    for (const f of state.functions) {
      const owner = serving.functionOwner(app.namespace, f.path, app.key);
      if (owner) problems.push(`function path ${f.path} is owned by application '${owner.split('/')[1]}' in namespace '${app.namespace}'`);
    }
    for (const route of serviceRoutes) {
      const owner = serving.functionOwner(app.namespace, route, app.key);
      if (owner) problems.push(`service route ${route} is owned by application '${owner.split('/')[1]}' in namespace '${app.namespace}'`);
    }
    if (state.static) {
      const owner = serving.staticOwner(app.namespace, app.key);
      if (owner) problems.push(`the static site of namespace '${app.namespace}' is owned by application '${owner.split('/')[1]}'`);
    }
    if (problems.length) throw new ZvError('OWNERSHIP_CONFLICT', problems.join('; '));
  }

  /** Removes everything the application deployed, then the application. */
  async remove(app: AppRecord): Promise<void> {
    await this.runner.after(String(app.id), () =>
      traced('remove', { app: app.name, namespace: app.namespace }, async () => {
        await this.deps.store.deleteApp(app.id);
        this.deployed.delete(app.id);
        this.failedHead.delete(app.id);
        this.deployer.remove(identity(app));
        const host = this.hosts.get(app.id);
        this.hosts.delete(app.id);
        await host?.removeAll();
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

  /** `settled`: the record is the end of a sync the caller waited for; do not show a queued one as `syncing`. */
  async status(app: AppRecord, opts: { settled?: boolean } = {}): Promise<AppStatus> {
    const host = this.hosts.get(app.id);
    const services = host ? await host.status() : [];
    const s = buildStatus({
      name: app.name,
      namespace: app.namespace,
      // The signed-commit policy shows as its key fingerprints, not the keys.
      source: { repoURL: app.source.repoURL, branch: app.source.branch, path: app.source.path, ...(app.source.verify ? { verify: summariseVerify(app.source.verify) } : {}) },
      commit: app.commit,
      lastSync: app.lastSync,
      status: app.status,
      message: app.message,
      warnings: app.warnings,
      deployed: this.deployed.get(app.id) ?? null,
      overlays: this.deployer.overlays.get(appKey(app.namespace, app.name)),
      facts: this.deployer.describe(identity(app)),
      services,
    });
    if (!opts.settled && this.isSyncing(app.id)) s.status = 'syncing';
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
      await this.deps.blobs.gc(keepBlobs);
      await this.deps.source.prune(keepCommits);
      await this.deployer.collectGarbage();
    } catch (e) {
      this.log.warn({ err: toZvError(e).message }, 'garbage collection failed');
    }
  }

}
