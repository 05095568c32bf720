// createGitOps: the bc_gitops facade of PRODUCT.md §8, for embedding without the HTTP server.
// A thin composition of the pieces the server uses: the same Reconciler (one poller, one keyed
// queue, the sync's named steps, retries with backoff), the same Store (SQLite), the same git
// source and the same service applier. It registers one application: the `apps/` folder of one
// repository branch, applied through one ServiceRuntime (default: the Node runtime, loaded only
// when no runtime is given).
//
// Layout under <dataDir>/gitops/<key>/ (key: hash of repository, branch and apps folder):
//   git/        the GitSource's bare clone and per-commit trees
//   state.db    the Store: the application, its history and its applied service specs
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { ServiceRuntime, ServiceSpec, ServiceState } from '../core/services/types.js';
import { normalizeRelPath } from '../core/names.js';
import { ZvError } from '../errors/registry.js';
import { GitSource, classifyRepoUrl, redactUrl, validateBranchName } from '../sources/git/index.js';
import { findServiceSpecs } from '../sources/tree/apps.js';
import type { DesiredRead, DesiredReader } from '../sources/types.js';
import type { Snapshot } from '../sources/snapshot.js';
import { openSqliteStore } from '../store/sqlite/store.js';
import { FsBlobStore } from '../store/blobs/fs.js';
import type { AppRecord, Store } from '../store/types.js';
import { ServingTable } from '../serving/table.js';
import { Reconciler } from '../reconciler/reconciler.js';
import { isReady } from '../apply/services/health.js';
import { importAppliedFile } from '../apply/services/state-file.js';
import type { HostedServiceRuntime } from '../apply/services/host.js';
import { problemText, type ServiceLogger, type ServiceReconcileResult } from '../apply/services/applier.js';
import type { Logger } from '../telemetry/log.js';

export interface GitOpsOptions {
  repoUrl: string;
  branch?: string;
  /** The folder of service specs, relative to the repository root (default `apps`). */
  appsDir?: string;
  /** Milliseconds between branch-head checks (default 60 000). */
  reconcileInterval?: number;
  /** Default: the Node runtime (`NodeServiceRuntime`) on `dataDir`. */
  runtime?: ServiceRuntime;
  /** Where clones, the applied state and the default runtime's files go (default `./.zerverless`). */
  dataDir?: string;
  /** Accept file:// URLs and local paths. */
  allowFileRepos?: boolean;
  logger?: ServiceLogger;
  /** How long a dependent waits for a dependency to become healthy (default 120 000 ms). */
  healthTimeout?: number;
}

export type GitOpsStatusValue = 'pending' | 'synced' | 'degraded' | 'error';

export interface GitOpsStatus {
  /** pending: never reconciled; error: the last reconcile threw; degraded: a service failed, is blocked or is not healthy. */
  status: GitOpsStatusValue;
  /** The commit last reconciled (kept across restarts). */
  lastCommit: string | null;
  appCount: number;
  healthyCount: number;
  /** Why, when status is error. */
  error?: string;
  /** A background retry is scheduled (the status stays error / degraded meanwhile). */
  retry?: { attempt: number; nextAt: string };
}

export interface AppStatus {
  name: string;
  /** The spec last applied, else the one from git; null when only the runtime knows the name. */
  spec: ServiceSpec | null;
  /** What the runtime reports; null when it does not know the name. */
  state: ServiceState | null;
  healthy: boolean;
  /** Why the last reconcile could not apply it (failed or blocked). */
  error?: string;
}

/** A spec for deploy(): bc_gitops-style, only name and version are needed. */
export type ServiceSpecInput = Pick<ServiceSpec, 'name' | 'version'> & Partial<ServiceSpec>;

export interface GitOps {
  /** The first reconcile (its failure shows in status()), then a head check every reconcileInterval. */
  start(): Promise<void>;
  /** Ends the loop after the work under way; with the default runtime, also stops its processes. */
  stop(): Promise<void>;
  reconcile(): Promise<ServiceReconcileResult>;
  sync(): Promise<ServiceReconcileResult>;
  status(): Promise<GitOpsStatus>;
  getDesiredState(): Promise<ServiceSpec[]>;
  getCurrentState(): Promise<ServiceState[]>;
  getAppStatus(name: string): Promise<AppStatus | null>;
  deploy(spec: ServiceSpecInput): Promise<ServiceReconcileResult>;
  remove(name: string): Promise<ServiceReconcileResult>;
  upgrade(name: string, version: string): Promise<ServiceReconcileResult>;
}

/** Loaded only when no runtime is given, so that a custom runtime needs nothing of it. */
async function nodeRuntime(dataDir: string, allowFileRepos: boolean): Promise<ServiceRuntime & { close(): Promise<void> }> {
  const { NodeServiceRuntime } = await import('../runtimes/node-service/index.js');
  // allowFileRepos covers the services' own git sources too, as --allow-file-repos does for the server.
  return new NodeServiceRuntime({ dataDir, allowFileRepos });
}

const NOOP_LOGGER: ServiceLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The facade's logger (info/warn/error) as the pino-shaped logger the pieces take. */
function asLogger(l: ServiceLogger, bindings: object = {}): Logger {
  const at = (fn: (obj: object, msg?: string) => void) => (obj: unknown, msg?: string) =>
    fn(typeof obj === 'object' && obj !== null ? { ...bindings, ...obj } : { ...bindings, msg: obj }, msg);
  const logger = {
    level: 'info',
    child: (more: object) => asLogger(l, { ...bindings, ...more }),
    trace: () => undefined,
    debug: () => undefined,
    info: at(l.info.bind(l)),
    warn: at(l.warn.bind(l)),
    error: at(l.error.bind(l)),
    fatal: at(l.error.bind(l)),
    silent: () => undefined,
    isLevelEnabled: (lvl: string) => lvl !== 'trace' && lvl !== 'debug',
  };
  return logger as unknown as Logger;
}

/**
 * A runtime as the service host takes it. bc_gitops makes `getCurrentState` optional: without it,
 * the applied specs stand for what runs, taken as healthy (nothing is redeployed for want of a
 * state, and dependents do not wait for a health the runtime cannot report).
 */
function hosted(rt: ServiceRuntime, applied: () => ServiceSpec[], close: () => Promise<void>): HostedServiceRuntime {
  const partial = rt as Partial<ServiceRuntime>;
  return {
    deploy: (s) => rt.deploy(s),
    upgrade: (s, from) => rt.upgrade(s, from),
    reconfigure: (s) => rt.reconfigure(s),
    remove: (n) => rt.remove(n),
    getCurrentState: async () => (typeof partial.getCurrentState === 'function'
      ? partial.getCurrentState.call(rt)
      : applied().map((s): ServiceState => ({ name: s.name, version: s.version, status: 'running', health: 'healthy', restarts: 0 }))),
    upstream: () => null,
    logs: () => [],
    close,
  };
}

function completeSpec(s: ServiceSpecInput): ServiceSpec {
  if (typeof s?.name !== 'string' || s.name === '' || typeof s.version !== 'string' || s.version === '') {
    throw new ZvError('VALIDATION_FAILED', 'a service spec needs a name and a version');
  }
  return {
    name: s.name, version: s.version, source: s.source ?? { type: 'npm' }, env: s.env ?? {}, health: s.health ?? null,
    dependsOn: s.dependsOn ?? [], route: s.route ?? null, port: s.port ?? null, file: s.file ?? '(deployed through the API)',
  };
}

/** The read step for the facade: the apps folder only (no zerverless.yaml); any problem in it is an error. */
class AppsReader implements DesiredReader {
  /** The specs of the last commit read. */
  last: ServiceSpec[] | null = null;

  constructor(private readonly appsDir: string, private readonly repo: string, private readonly log: ServiceLogger) {}

  async read(snapshot: Snapshot, opts: { commit: string }): Promise<DesiredRead> {
    const found = await findServiceSpecs(snapshot, this.appsDir);
    if (!found.found) throw new ZvError('MANIFEST_NOT_FOUND', `${this.appsDir}/ does not exist in commit ${opts.commit.slice(0, 12)} of ${this.repo}`);
    for (const w of found.warnings) this.log.warn({ repo: this.repo, commit: opts.commit, warning: problemText(w) }, 'gitops: spec warning');
    if (found.errors.length) {
      const texts = found.errors.map(problemText);
      throw new ZvError(found.code ?? 'MANIFEST_INVALID', `invalid service specs: ${texts.join('; ')}`, { errors: texts });
    }
    this.last = found.specs;
    return { state: { commit: opts.commit, functions: [], static: null, warnings: [] }, staticFiles: [], docker: [], services: found.specs };
  }
}

/** The pieces, made on first use and again after stop(). */
interface Parts {
  store: Store;
  /** The git source: its cat-file readers are closed on stop. */
  source: GitSource;
  reconciler: Reconciler;
  app: AppRecord;
  runtime: ServiceRuntime;
}

const APP = { namespace: 'gitops', name: 'apps' } as const;

class GitOpsController implements GitOps {
  private readonly branch: string;
  private readonly appsDir: string;
  private readonly interval: number;
  private readonly dataDir: string;
  private readonly home: string;
  private readonly log: ServiceLogger;
  private readonly reader: AppsReader;
  private partsP: Promise<Parts> | undefined;
  /** The Node runtime when this facade made it (then stop() closes it). */
  private ownRuntime: (ServiceRuntime & { close(): Promise<void> }) | undefined;

  constructor(private readonly opts: GitOpsOptions) {
    this.branch = opts.branch ?? 'main';
    classifyRepoUrl(opts.repoUrl, { allowFileRepos: opts.allowFileRepos ?? false });
    validateBranchName(this.branch);
    const apps = normalizeRelPath(opts.appsDir ?? 'apps');
    if ('error' in apps) throw new ZvError('VALIDATION_FAILED', `appsDir ${apps.error}`);
    this.appsDir = apps.path;
    this.interval = opts.reconcileInterval ?? 60_000;
    this.dataDir = resolve(opts.dataDir ?? './.zerverless');
    const key = createHash('sha256').update(`${opts.repoUrl}\n${this.branch}\n${this.appsDir}`).digest('hex').slice(0, 16);
    this.home = join(this.dataDir, 'gitops', key);
    this.log = opts.logger ?? NOOP_LOGGER;
    this.reader = new AppsReader(this.appsDir, redactUrl(opts.repoUrl), this.log);
  }

  private parts(): Promise<Parts> {
    this.partsP ??= this.compose().catch((e: unknown) => {
      this.partsP = undefined;
      throw e;
    });
    return this.partsP;
  }

  private async compose(): Promise<Parts> {
    const runtime = this.opts.runtime ?? (this.ownRuntime ??= await nodeRuntime(this.dataDir, this.opts.allowFileRepos ?? false));
    await mkdir(this.home, { recursive: true });
    const store = openSqliteStore(join(this.home, 'state.db'));
    const logger = asLogger(this.log);
    const repo = redactUrl(this.opts.repoUrl);
    let reconciler: Reconciler | null = null;
    const source = new GitSource({ dataDir: this.home, allowFileRepos: this.opts.allowFileRepos ?? false, headCacheMs: 0 });
    try {
      reconciler = new Reconciler({
        store,
        source,
        reader: this.reader,
        runtimes: new Map(),
        serving: new ServingTable(),
        blobs: new FsBlobStore(join(this.home, 'blobs')),
        logger,
        pollIntervalMs: this.interval,
        // A service process that is gone is started again, as by the server (PRODUCT.md §11).
        driftIntervalMs: 60_000,
        dataDir: this.home,
        // The facade's telemetry names the repository, not an application (bc_gitops' events).
        eventMeta: () => ({ repo, branch: this.branch }),
        ...(this.opts.healthTimeout !== undefined ? { healthTimeoutMs: this.opts.healthTimeout } : {}),
        serviceRuntime: () => hosted(runtime, () => reconciler?.services(app.id)?.applied ?? [], async () => {
          // Only a runtime this facade made is closed; a given one belongs to the caller.
          const own = this.ownRuntime;
          this.ownRuntime = undefined;
          await own?.close();
        }),
      });
      const app = (await store.getApp(APP.namespace, APP.name)) ?? (await store.createApp({
        ...APP, source: { repoURL: this.opts.repoUrl, branch: this.branch, path: '' }, allowServices: true, createdBy: null,
      }));
      // Data dirs of earlier versions kept the applied specs in applied.json: into the store, once.
      await importAppliedFile(join(this.home, 'applied.json'), (a) => store.saveAppliedServices(app.id, a),
        async () => (await store.getAppliedServices(app.id)) !== null, this.log);
      // The applied specs come back: a runtime that lost them (e.g. the Node runtime after a restart) redeploys.
      await reconciler.restore();
      return { store, source, reconciler, app, runtime };
    } catch (e) {
      await reconciler?.stop().catch(() => undefined);
      await source.close();
      await store.close().catch(() => undefined);
      throw e;
    }
  }

  async start(): Promise<void> {
    const { reconciler } = await this.parts();
    try {
      await this.reconcile();
    } catch (e) {
      this.log.error({ repo: redactUrl(this.opts.repoUrl), branch: this.branch, err: (e as Error).message }, 'gitops: reconcile failed');
    }
    await reconciler.startPolling();
  }

  async stop(): Promise<void> {
    const p = this.partsP;
    this.partsP = undefined;
    const parts = await p?.catch(() => undefined);
    if (!parts) return;
    // Ends the poll, the retries and the work under way; closes the hosts (and so a runtime we made).
    await parts.reconciler.stop();
    await parts.source.close();
    await parts.store.close();
  }

  async reconcile(): Promise<ServiceReconcileResult> {
    const { reconciler, app } = await this.parts();
    await reconciler.sync(app.id, { cause: { trigger: 'api', actor: null } });
    const outcome = reconciler.lastOutcome(app.id);
    if (outcome && !outcome.ok) throw outcome.error;
    return reconciler.services(app.id)?.last ?? { commit: outcome?.commit ?? null, plan: [], applied: [], failed: [], blocked: [] };
  }

  sync(): Promise<ServiceReconcileResult> {
    return this.reconcile();
  }

  private async applied(): Promise<ServiceSpec[]> {
    const { reconciler, app } = await this.parts();
    return reconciler.services(app.id)?.applied ?? [];
  }

  private async states(): Promise<Map<string, ServiceState>> {
    const { runtime } = await this.parts();
    const list = typeof (runtime as Partial<ServiceRuntime>).getCurrentState === 'function' ? await runtime.getCurrentState() : [];
    return new Map(list.map((s) => [s.name, s]));
  }

  async status(): Promise<GitOpsStatus> {
    const { reconciler, store, app } = await this.parts();
    const record = (await store.getAppById(app.id)) ?? app;
    const specs = this.reader.last ?? (await this.applied());
    const states = await this.states();
    const healthyCount = specs.filter((s) => isReady(states.get(s.name), s)).length;
    const out: GitOpsStatus = { status: 'pending', lastCommit: record.commit, appCount: specs.length, healthyCount };
    const outcome = reconciler.lastOutcome(app.id);
    if (outcome && !outcome.ok) {
      out.status = 'error';
      out.error = outcome.error.message;
    } else if (outcome) {
      out.status = outcome.problems || healthyCount < specs.length ? 'degraded' : 'synced';
    }
    // (not reconciler.status(): that would ask the runtime for its state a second time)
    const retry = reconciler.retryOf(app.id);
    if (retry) out.retry = retry;
    return out;
  }

  async getDesiredState(): Promise<ServiceSpec[]> {
    return [...(this.reader.last ?? [])];
  }

  async getCurrentState(): Promise<ServiceState[]> {
    return [...(await this.states()).values()];
  }

  async getAppStatus(name: string): Promise<AppStatus | null> {
    const { reconciler, app } = await this.parts();
    const spec = (await this.applied()).find((s) => s.name === name) ?? this.reader.last?.find((s) => s.name === name) ?? null;
    const state = (await this.states()).get(name) ?? null;
    if (!spec && !state) return null;
    const out: AppStatus = { name, spec, state, healthy: spec ? isReady(state ?? undefined, spec) : state?.health === 'healthy' };
    const last = reconciler.services(app.id)?.last;
    const failed = last?.failed.find((f) => f.name === name);
    const blocked = last?.blocked.find((b) => b.name === name);
    if (failed) out.error = `${failed.action} failed: ${failed.error}`;
    else if (blocked) out.error = `${blocked.action} blocked: ${blocked.reason}`;
    return out;
  }

  deploy(input: ServiceSpecInput): Promise<ServiceReconcileResult> {
    const spec = completeSpec(input);
    return this.manual(spec.name, 'deploy', (applied) => [...applied.filter((s) => s.name !== spec.name), spec]);
  }

  remove(name: string): Promise<ServiceReconcileResult> {
    return this.manual(name, 'remove', (applied) => {
      if (!applied.some((s) => s.name === name)) throw new ZvError('APP_NOT_FOUND', `no service named ${name}`);
      const dependents = applied.filter((s) => s.dependsOn.includes(name)).map((s) => s.name);
      if (dependents.length) throw new ZvError('VALIDATION_FAILED', `cannot remove ${name}: ${dependents.join(', ')} depend on it`);
      return applied.filter((s) => s.name !== name);
    });
  }

  upgrade(name: string, version: string): Promise<ServiceReconcileResult> {
    return this.manual(name, 'upgrade', (applied) => {
      const base = applied.find((s) => s.name === name) ?? this.reader.last?.find((s) => s.name === name);
      if (!base) throw new ZvError('APP_NOT_FOUND', `no service named ${name}`);
      return [...applied.filter((s) => s.name !== name), completeSpec({ ...base, version })];
    });
  }

  /** A change outside git, through the same queue as syncs; git wins again at the next reconcile that reads a new commit. */
  private async manual(name: string, what: string, next: (applied: ServiceSpec[]) => ServiceSpec[]): Promise<ServiceReconcileResult> {
    const { reconciler, app } = await this.parts();
    const result = await reconciler.applyServices(app, next);
    const failed = result.failed.find((f) => f.name === name);
    const blocked = result.blocked.find((b) => b.name === name);
    if (failed || blocked) throw new ZvError('INTERNAL', `${what} ${name}: ${failed ? failed.error : blocked?.reason}`, { result });
    return result;
  }
}

/** The bc_gitops facade over one repository branch; nothing runs until start() or a call. */
export function createGitOps(opts: GitOpsOptions): GitOps {
  return new GitOpsController(opts);
}
