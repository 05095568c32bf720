// createGitOps: the bc_gitops facade of PRODUCT.md §8, for embedding without the HTTP server.
// One repository branch, one `apps/` folder of service specs, one ServiceRuntime (default: the
// Node runtime, loaded only when no runtime is given). The loop polls the branch head only
// (`git ls-remote`) and reconciles when it moved, or when the last reconcile did not fully succeed.
//
// Layout under <dataDir>/gitops/<key>/ (key: hash of repository, branch and apps folder):
//   git/           the GitSource's bare clone and per-commit trees
//   applied.json   the last applied specs and commit, so a restart diffs against them
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { ServiceRuntime, ServiceSpec, ServiceState } from '../core/services/types.js';
import { normalizeRelPath } from '../core/names.js';
import { ZvError } from '../errors/registry.js';
import { GitSource, classifyRepoUrl, redactUrl, validateBranchName } from '../sources/git/index.js';
import { findServiceSpecs } from '../sources/tree/apps.js';
import type { RepoRef } from '../sources/types.js';
import { traced } from '../telemetry/events.js';
import { isReady } from '../apply/services/health.js';
import {
  ServiceReconciler, problemText, type ServiceLogger, type ServiceReconcileResult,
} from '../apply/services/applier.js';

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
async function nodeRuntime(dataDir: string): Promise<ServiceRuntime & { close(): Promise<void> }> {
  const { NodeServiceRuntime } = await import('../runtimes/node-service/index.js');
  return new NodeServiceRuntime({ dataDir });
}

const NOOP_LOGGER: ServiceLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function completeSpec(s: ServiceSpecInput): ServiceSpec {
  if (typeof s?.name !== 'string' || s.name === '' || typeof s.version !== 'string' || s.version === '') {
    throw new ZvError('VALIDATION_FAILED', 'a service spec needs a name and a version');
  }
  return {
    name: s.name, version: s.version, source: s.source ?? { type: 'npm' }, env: s.env ?? {}, health: s.health ?? null,
    dependsOn: s.dependsOn ?? [], route: s.route ?? null, port: s.port ?? null, file: s.file ?? '(deployed through the API)',
  };
}

class GitOpsController implements GitOps {
  private readonly ref: RepoRef;
  private readonly appsDir: string;
  private readonly interval: number;
  private readonly dataDir: string;
  private readonly home: string;
  private readonly source: GitSource;
  private readonly log: ServiceLogger;
  private readonly meta: Record<string, unknown>;
  private runtimeP: Promise<ServiceRuntime> | undefined;
  /** The Node runtime when this facade made it (then stop() closes it). */
  private ownRuntime: { close(): Promise<void> } | undefined;
  private reconcilerP: Promise<ServiceReconciler> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private desired: ServiceSpec[] | null = null;
  private last: { result: ServiceReconcileResult } | { error: string } | null = null;
  private lastCommit: string | null = null;

  constructor(private readonly opts: GitOpsOptions) {
    const branch = opts.branch ?? 'main';
    classifyRepoUrl(opts.repoUrl, { allowFileRepos: opts.allowFileRepos ?? false });
    validateBranchName(branch);
    const apps = normalizeRelPath(opts.appsDir ?? 'apps');
    if ('error' in apps) throw new ZvError('VALIDATION_FAILED', `appsDir ${apps.error}`);
    this.ref = { repoURL: opts.repoUrl, branch };
    this.appsDir = apps.path;
    this.interval = opts.reconcileInterval ?? 60_000;
    this.dataDir = resolve(opts.dataDir ?? './.zerverless');
    const key = createHash('sha256').update(`${opts.repoUrl}\n${branch}\n${this.appsDir}`).digest('hex').slice(0, 16);
    this.home = join(this.dataDir, 'gitops', key);
    this.source = new GitSource({ dataDir: this.home, allowFileRepos: opts.allowFileRepos ?? false, headCacheMs: 0 });
    this.log = opts.logger ?? NOOP_LOGGER;
    this.meta = { repo: redactUrl(opts.repoUrl), branch };
  }

  private runtime(): Promise<ServiceRuntime> {
    this.runtimeP ??= (this.opts.runtime ? Promise.resolve(this.opts.runtime) : nodeRuntime(this.dataDir).then((rt) => {
      this.ownRuntime = rt;
      return rt;
    })).catch((e: unknown) => {
      this.runtimeP = undefined;
      throw e;
    });
    return this.runtimeP;
  }

  private reconciler(): Promise<ServiceReconciler> {
    this.reconcilerP ??= this.runtime().then(async (runtime) => {
      const rec = new ServiceReconciler({
        runtime, statePath: join(this.home, 'applied.json'), meta: this.meta, logger: this.log,
        ...(this.opts.healthTimeout !== undefined ? { healthTimeoutMs: this.opts.healthTimeout } : {}),
      });
      await rec.load();
      this.lastCommit ??= rec.appliedCommit();
      return rec;
    }).catch((e: unknown) => {
      this.reconcilerP = undefined;
      throw e;
    });
    return this.reconcilerP;
  }

  /** One reconcile or manual operation at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.reconcile();
    } catch (e) {
      this.log.error({ ...this.meta, err: message(e) }, 'gitops: reconcile failed');
    }
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    (await this.reconcilerP?.catch(() => undefined))?.interrupt();
    await this.queue;
    const own = this.ownRuntime;
    if (own) {
      // Its processes would outlive us otherwise; the next start() deploys them again from applied.json.
      this.ownRuntime = undefined;
      this.runtimeP = undefined;
      this.reconcilerP = undefined;
      await own.close();
    }
  }

  private schedule(): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), this.interval);
  }

  private async tick(): Promise<void> {
    try {
      const head = await this.source.head(this.ref, { maxAgeMs: 0 });
      const settled = this.last !== null && 'result' in this.last && !this.last.result.failed.length && !this.last.result.blocked.length;
      if (this.running && (head !== this.lastCommit || !settled)) await this.reconcileAt(head);
    } catch (e) {
      this.log.error({ ...this.meta, err: message(e) }, 'gitops: reconcile failed');
    }
  }

  reconcile(): Promise<ServiceReconcileResult> {
    return this.reconcileAt();
  }

  /** A reconcile at `known` (the head the poll just read), or at the head asked for now. */
  private reconcileAt(known?: string): Promise<ServiceReconcileResult> {
    return this.exclusive(() => traced('reconcile', { ...this.meta }, async (more) => {
      try {
        const rec = await this.reconciler();
        const head = known ?? (await this.source.head(this.ref, { maxAgeMs: 0 }));
        more.commit = head;
        const desired = await this.read(head);
        this.desired = desired;
        const result = await rec.apply(desired, { commit: head });
        Object.assign(more, { applied: result.applied.length, failed: result.failed.length, blocked: result.blocked.length });
        this.last = { result };
        this.lastCommit = head;
        await this.source.prune(new Set([head])).catch(() => undefined);
        return result;
      } catch (e) {
        this.last = { error: message(e) };
        throw e;
      }
    }));
  }

  sync(): Promise<ServiceReconcileResult> {
    return this.reconcile();
  }

  /** The specs in the apps folder of `commit`; any problem in them is an error (nothing is applied). */
  private async read(commit: string): Promise<ServiceSpec[]> {
    const art = await this.source.artifact(this.ref, commit);
    const found = await findServiceSpecs(art.dir, this.appsDir);
    if (!found.found) throw new ZvError('MANIFEST_NOT_FOUND', `${this.appsDir}/ does not exist in commit ${commit.slice(0, 12)} of ${this.meta.repo as string}`);
    for (const w of found.warnings) this.log.warn({ ...this.meta, commit, warning: problemText(w) }, 'gitops: spec warning');
    if (found.errors.length) {
      const texts = found.errors.map(problemText);
      throw new ZvError(found.code ?? 'MANIFEST_INVALID', `invalid service specs: ${texts.join('; ')}`, { errors: texts });
    }
    return found.specs;
  }

  async status(): Promise<GitOpsStatus> {
    const rec = await this.reconciler();
    const specs = this.desired ?? rec.appliedSpecs();
    const states = new Map((await (await this.runtime()).getCurrentState()).map((s) => [s.name, s]));
    const healthyCount = specs.filter((s) => isReady(states.get(s.name), s)).length;
    const out: GitOpsStatus = { status: 'pending', lastCommit: this.lastCommit, appCount: specs.length, healthyCount };
    if (this.last && 'error' in this.last) {
      out.status = 'error';
      out.error = this.last.error;
    } else if (this.last) {
      const r = this.last.result;
      out.status = r.failed.length || r.blocked.length || healthyCount < specs.length ? 'degraded' : 'synced';
    }
    return out;
  }

  async getDesiredState(): Promise<ServiceSpec[]> {
    return [...(this.desired ?? [])];
  }

  async getCurrentState(): Promise<ServiceState[]> {
    return (await this.runtime()).getCurrentState();
  }

  async getAppStatus(name: string): Promise<AppStatus | null> {
    const rec = await this.reconciler();
    const spec = rec.appliedSpecs().find((s) => s.name === name) ?? this.desired?.find((s) => s.name === name) ?? null;
    const state = (await (await this.runtime()).getCurrentState()).find((s) => s.name === name) ?? null;
    if (!spec && !state) return null;
    const out: AppStatus = { name, spec, state, healthy: spec ? isReady(state ?? undefined, spec) : state?.health === 'healthy' };
    if (this.last && 'result' in this.last) {
      const failed = this.last.result.failed.find((f) => f.name === name);
      const blocked = this.last.result.blocked.find((b) => b.name === name);
      if (failed) out.error = `${failed.action} failed: ${failed.error}`;
      else if (blocked) out.error = `${blocked.action} blocked: ${blocked.reason}`;
    }
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
      const base = applied.find((s) => s.name === name) ?? this.desired?.find((s) => s.name === name);
      if (!base) throw new ZvError('APP_NOT_FOUND', `no service named ${name}`);
      return [...applied.filter((s) => s.name !== name), completeSpec({ ...base, version })];
    });
  }

  /** A change outside git: applied on top of the last applied specs; git wins again at the next reconcile that reads a new commit. */
  private manual(name: string, what: string, next: (applied: ServiceSpec[]) => ServiceSpec[]): Promise<ServiceReconcileResult> {
    return this.exclusive(async () => {
      const rec = await this.reconciler();
      const result = await rec.apply(next(rec.appliedSpecs()));
      const failed = result.failed.find((f) => f.name === name);
      const blocked = result.blocked.find((b) => b.name === name);
      if (failed || blocked) {
        throw new ZvError('INTERNAL', `${what} ${name}: ${failed ? failed.error : blocked?.reason}`, { result });
      }
      return result;
    });
  }
}

/** The bc_gitops facade over one repository branch; nothing runs until start() or a call. */
export function createGitOps(opts: GitOpsOptions): GitOps {
  return new GitOpsController(opts);
}
