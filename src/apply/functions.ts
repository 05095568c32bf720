// The apply side of a sync: loads function code into runtimes (building docker images), stores
// static blobs (prepare, which may fail and then changes nothing), then publishes the new slice and
// retires what it replaced (commit). Also restores the last deployed state at start without git.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ZvError, toZvError } from '../errors/registry.js';
import type { DeployedState, DesiredFunction, StaticFileEntry } from '../core/desired.js';
import type { FunctionOverlay } from '../core/status.js';
import type { Plan } from '../core/plan/index.js';
import { DrainingFunction } from '../serving/drain.js';
import type { FunctionLogger, LogStream, FunctionRuntime, FunctionSource, LoadedFunction, RuntimeName } from '../runtimes/types.js';
import type { BlobStore } from '../store/types.js';
import type { AppSlice, ServedFunction, ServingTable } from '../serving/table.js';
import type { Logger } from '../telemetry/log.js';
import { traced } from '../telemetry/events.js';
import type { DesiredRead } from '../sources/types.js';
import type { RuntimeSet } from '../runtimes/types.js';
import { mergeEnv, redactSecrets, type SecretsKeyring } from '../core/secrets.js';
import type { DriftRepair } from './drift.js';
import { DEFAULT_FUNCTION_IDLE_MS, LazyFunction } from './lazy.js';

export interface AppIdentity {
  key: string;
  name: string;
  namespace: string;
}

export interface Prepared {
  slice: AppSlice;
  /** Handles created by this sync (disposed if the sync is abandoned). */
  created: DrainingFunction[];
  /** Functions the new slice no longer uses (retired after the switch). */
  replaced: ServedFunction[];
}

/** Build inputs of the docker functions of one sync, by path: written to disk only for a build. */
type BuildDirs = ReadonlyMap<string, Pick<NonNullable<FunctionSource['docker']>, 'contextFiles' | 'materialise'>>;

/** Service routes of an application: route → a handle whose upstream() is the healthy process. */
export type ServiceRoutes = ReadonlyMap<string, { name: string; handle: LoadedFunction }>;

/** How long the gateway waits for a service's answer. */
const SERVICE_TIMEOUT_MS = 60_000;

const BUILD_LOG_LINES = 200;

/** Drift (PRODUCT.md §11): a served function or static file that differs from what was deployed. */
export interface DriftFound {
  kind: 'function' | 'static';
  /** The function's path (`/api/hello`) or the static file's path (`css/site.css`). */
  target: string;
  /** In a few words: `container removed`, `container stopped`, `blob missing`, `blob corrupt`. */
  problem: string;
  detail?: string;
  /** Static: the entry whose blob is missing or corrupt (other files with the same content share it). */
  entry?: StaticFileEntry;
}

/** The bytes of a static file as deployed (from the artifact of the deployed commit). */
export type RestoreBlob = (entry: StaticFileEntry) => Promise<Uint8Array>;

/** New static blobs written at once by a sync when the blob store has no putMany (each put is fsynced; these overlap). */
const BLOB_WRITE_CONCURRENCY = 16;

/** Blobs hashed at once by a drift check (each is streamed: memory stays small for 20k files). */
const VERIFY_CONCURRENCY = 8;

/** What a blob file looked like when it was last found intact: unchanged, it is not hashed again. */
interface BlobStamp {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    const s = createReadStream(path);
    s.on('data', (c) => h.update(c));
    s.on('error', reject);
    s.on('end', () => resolve(h.digest('hex')));
  });
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export interface DeployerOptions {
  /**
   * Lua, JS and Python functions are unloaded after this long without a call and loaded again by
   * the next one (lazy.ts); 0: never unloaded (default 5 minutes).
   */
  functionIdleMs?: number;
  /**
   * Also told every line a function prints (the kept logs, src/logs/), with the values of its
   * secret env vars so they can be hidden. Must not throw or block.
   */
  functionOutput?: (fn: { namespace: string; app: string; path: string; secrets: readonly string[] }, stream: LogStream, line: string) => void;
}

export class Deployer {
  /** Per app key, per function path: what the status shows beside (or instead of) the deployed state. */
  readonly overlays = new Map<string, Map<string, FunctionOverlay>>();
  /** Every loaded function not yet disposed: serving, draining, or being prepared. */
  private readonly live = new Map<DrainingFunction, FunctionRuntime>();
  private readonly functionIdleMs: number;
  private readonly functionOutput: DeployerOptions['functionOutput'];
  /** Per `${app key}\0${path}`: values of the function's secret env vars, hidden in its output. */
  private readonly secretValues = new Map<string, string[]>();

  constructor(
    private readonly runtimes: RuntimeSet,
    private readonly blobs: BlobStore,
    private readonly serving: ServingTable,
    private readonly logger: Logger,
    /** Decrypts functions' envFrom files when they are loaded (never stored in plain text). */
    private readonly secrets?: SecretsKeyring,
    options: DeployerOptions = {},
  ) {
    this.functionIdleMs = Math.max(0, options.functionIdleMs ?? DEFAULT_FUNCTION_IDLE_MS);
    this.functionOutput = options.functionOutput;
  }

  /**
   * The env a function runs with: its envFrom files decrypted from the stored ciphertext, then its
   * explicit env on top. Works after a restart without git. SECRET_DECRYPT_FAILED names the file.
   */
  private async envOf(f: DesiredFunction): Promise<Record<string, string>> {
    if (!f.secrets?.length) return f.env;
    const keyring = this.secrets;
    if (!keyring) throw new ZvError('SECRET_DECRYPT_FAILED', `${f.secrets[0]!.file}: this server has no age key to decrypt envFrom files`);
    const files = await Promise.all(f.secrets.map(async (s) => (await keyring.decryptEnv(s.file, Buffer.from(s.data, 'base64'))).env));
    return mergeEnv(f.env, files);
  }

  private functionLogger(app: AppIdentity, path: string): FunctionLogger {
    const log = this.logger.child({ component: 'function', namespace: app.namespace, app: app.name, function: path });
    const key = `${app.key}\0${path}`;
    return (stream, raw) => {
      // Secret values never reach the server log or the kept logs (set by sourceOf, read per line).
      const secrets = this.secretValues.get(key) ?? [];
      const line = redactSecrets(raw, secrets);
      if (stream === 'stderr') log.warn({ stream }, line);
      else log.info({ stream }, line);
      this.functionOutput?.({ namespace: app.namespace, app: app.name, path, secrets }, stream, raw);
    };
  }

  private overlay(app: AppIdentity): Map<string, FunctionOverlay> {
    let m = this.overlays.get(app.key);
    if (!m) this.overlays.set(app.key, (m = new Map()));
    return m;
  }

  private retire(f: { handle: DrainingFunction; timeoutMs: number }): Promise<void> {
    // In-flight requests may run up to the function's own timeout: wait that long before disposing.
    return f.handle.retire(f.timeoutMs + 5_000).finally(() => this.live.delete(f.handle));
  }

  private runtimeOf(f: DesiredFunction): FunctionRuntime {
    const runtime = this.runtimes.get(f.runtime);
    if (!runtime) throw new ZvError('RUNTIME_UNAVAILABLE', `${f.filename}: runtime '${f.runtime}' for ${f.path} is not available on this server`);
    return runtime;
  }

  private async sourceOf(app: AppIdentity, f: DesiredFunction): Promise<FunctionSource> {
    const env = await this.envOf(f);
    // Values that came from envFrom files (an explicit env value is not a secret).
    const secrets = Object.entries(env).filter(([k, v]) => f.env[k] !== v).map(([, v]) => v);
    if (secrets.length > 0) this.secretValues.set(`${app.key}\0${f.path}`, secrets);
    else this.secretValues.delete(`${app.key}\0${f.path}`);
    return {
      id: `${app.namespace}/${app.name}${f.path}@${f.hash.slice(0, 8)}`,
      runtime: f.runtime as RuntimeName,
      language: f.language,
      code: f.code,
      filename: f.filename,
      lineOffset: f.lineOffset,
      timeoutMs: f.timeoutMs,
      memoryMb: f.memoryMb,
      env,
    };
  }

  /**
   * The served handle of a Lua, JS or Python function: loaded on its first call (or `loaded`
   * already), unloaded after --function-idle without a call. A load that fails shows in the status
   * (an overlay, `failed`) while the handle is served; one that succeeds clears it.
   */
  private lazy(app: AppIdentity, f: DesiredFunction, runtime: FunctionRuntime, source: FunctionSource | null, loaded?: LoadedFunction): LazyFunction {
    const log = this.logger.child({ namespace: app.namespace, app: app.name, function: f.path });
    const served = () => this.serving.getApp(app.key)?.functions.get(f.path)?.handle.fn === lazy;
    const lazy: LazyFunction = new LazyFunction({
      runtime,
      // envOf decrypts envFrom files: after a restart only when the function is first called.
      source: source ?? (async () => (source ??= await this.sourceOf(app, f))),
      log: this.functionLogger(app, f.path),
      idleMs: this.functionIdleMs,
      ...(loaded ? { loaded } : {}),
      onLoad: (ms) => {
        if (served() && this.overlays.get(app.key)?.get(f.path)?.status === 'failed') this.overlays.get(app.key)?.delete(f.path);
        log.debug({ ms: Math.round(ms * 10) / 10 }, 'function loaded');
      },
      onLoadError: (err) => {
        if (served()) this.overlay(app).set(f.path, { runtime: f.runtime, status: 'failed', message: err.message });
        log.error({ code: err.code }, `could not load function: ${err.message}`);
      },
      onEvict: () => log.debug('function unloaded after idle time'),
    });
    return lazy;
  }

  private async load(app: AppIdentity, f: DesiredFunction, dirs: BuildDirs, lazily = false): Promise<ServedFunction> {
    const runtime = this.runtimeOf(f);
    // A rollback: the code compiled when it was first deployed, so it loads on its first call.
    if (lazily && f.runtime !== 'docker') return this.served(app, f, runtime, this.lazy(app, f, runtime, null));
    const source = await this.sourceOf(app, f);
    let loaded: LoadedFunction;
    if (f.runtime === 'docker') {
      if (!f.build) throw new ZvError('INTERNAL', `${f.path}: a docker function without build inputs`);
      const buildLog: string[] = [];
      const log = this.logger.child({ component: 'build', namespace: app.namespace, app: app.name, function: f.path });
      source.docker = {
        build: f.build,
        ...dirs.get(f.path),
        port: f.port, // none: the runtime uses the port the image EXPOSEs, else 8080
        owner: { namespace: app.namespace, app: app.name, path: f.path },
        buildLog: (line) => {
          buildLog.push(line);
          if (buildLog.length > BUILD_LOG_LINES) buildLog.shift();
          log.debug(line);
        },
      };
      const overlay = this.overlay(app);
      overlay.set(f.path, { runtime: 'docker', status: 'building' });
      try {
        loaded = await traced('build', { app: app.name, namespace: app.namespace, path: f.path, context: f.build.context, dockerfile: f.build.dockerfile }, () =>
          runtime.load(source, this.functionLogger(app, f.path)));
        overlay.delete(f.path);
      } catch (e) {
        overlay.set(f.path, { runtime: 'docker', status: 'failed', message: toZvError(e).message, buildLog: buildLog.join('\n') });
        throw e;
      }
    } else {
      // Compiled now (a commit whose code does not compile fails its sync), then served lazily; a
      // runtime that can compile without loading (python) starts nothing until the first call.
      if (runtime.compile) {
        await runtime.compile(source, this.functionLogger(app, f.path));
        loaded = this.lazy(app, f, runtime, source);
      } else loaded = this.lazy(app, f, runtime, source, await runtime.load(source, this.functionLogger(app, f.path)));
    }
    return this.served(app, f, runtime, loaded);
  }

  private served(app: AppIdentity, f: DesiredFunction, runtime: FunctionRuntime, fn: LoadedFunction): ServedFunction {
    const handle = new DrainingFunction(fn);
    this.live.set(handle, runtime);
    return { appKey: app.key, path: f.path, runtime: f.runtime, handle, timeoutMs: f.timeoutMs };
  }

  private addRoutes(app: AppIdentity, functions: Map<string, ServedFunction>, routes: ServiceRoutes): void {
    const current = this.serving.getApp(app.key);
    for (const [route, { name, handle }] of routes) {
      if (functions.has(route) && functions.get(route)?.runtime !== 'service') {
        throw new ZvError('MANIFEST_INVALID', `service ${name}: route ${route} is also the path of a function in zerverless.yaml`);
      }
      const old = current?.functions.get(route);
      // Keep the handle of an unchanged route: nothing to drain.
      if (old?.runtime === 'service' && old.handle.fn === handle) functions.set(route, old);
      else functions.set(route, { appKey: app.key, path: route, runtime: 'service', handle: new DrainingFunction(handle), timeoutMs: SERVICE_TIMEOUT_MS });
    }
  }

  /**
   * Loads new and changed functions and stores static blobs. Throws (having undone its work) on any
   * failure. `lazy` (a rollback to a kept revision): Lua, JS and Python functions are not compiled
   * now but load on their first call, as after a restart.
   */
  async prepare(app: AppIdentity, read: DesiredRead, plan: Plan, routes: ServiceRoutes = new Map(), opts: { lazy?: boolean } = {}): Promise<Prepared> {
    const current = this.serving.getApp(app.key);
    const changes = new Map(plan.functions.map((c) => [c.path, c.action]));
    // Docker contexts are written out of the commit only if an image has to be built (materialise).
    const dirs: BuildDirs = new Map(read.docker.map((d) => [d.path, { contextFiles: d.contextFiles, materialise: d.materialise }]));
    const functions = new Map<string, ServedFunction>();
    const created: DrainingFunction[] = [];
    const toLoad: DesiredFunction[] = [];
    for (const f of read.state.functions) {
      const old = current?.functions.get(f.path);
      if (changes.get(f.path) === 'unchanged' && old) functions.set(f.path, old);
      else toLoad.push(f);
    }
    const results = await Promise.allSettled(toLoad.map((f) => this.load(app, f, dirs, opts.lazy)));
    const failures: string[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        functions.set(r.value.path, r.value);
        created.push(r.value.handle);
      } else failures.push(toZvError(r.reason).message || `${toLoad[i]?.path}: failed to load`);
    });
    const undo = () => Promise.all(created.map((h) => this.retire({ handle: h, timeoutMs: 0 })));
    if (failures.length) {
      await undo();
      const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      throw new ZvError(first ? toZvError(first.reason).code : 'FUNCTION_COMPILE_ERROR', failures.join('; '));
    }
    try {
      this.addRoutes(app, functions, routes);
    } catch (e) {
      await undo();
      throw e;
    }

    try {
      // Only the files the read hashed (new content ids); files with unchanged ids have their blob.
      await this.putBlobs(read.staticFiles);
    } catch (e) {
      await undo();
      throw e;
    }

    const replaced: ServedFunction[] = [];
    for (const [path, old] of current?.functions ?? []) {
      if (functions.get(path) !== old) replaced.push(old);
    }
    const site = read.state.static;
    const slice: AppSlice = {
      namespace: app.namespace,
      functions,
      static: site ? { appKey: app.key, files: this.servedFiles(site.files) } : null,
    };
    return { slice, created, replaced };
  }

  /**
   * Stores the blobs of `files` that the store does not have: through the store's putMany (one
   * durable flush per batch, see FsBlobStore) or else BLOB_WRITE_CONCURRENCY puts at a time (each
   * put is fsynced: one after another, 20,000 new files took over a minute). The first failure stops
   * the other writers; it is thrown once every write under way has ended.
   */
  private async putBlobs(files: DesiredRead['staticFiles']): Promise<void> {
    // One durable flush per batch instead of an fsync per file (see FsBlobStore.putMany).
    if (this.blobs.putMany) {
      await this.blobs.putMany(files.map(({ entry, read }) => ({ hash: entry.hash, read, label: `static file ${entry.path}` })));
      return;
    }
    let next = 0;
    let failure: { e: unknown } | null = null;
    const writer = async (): Promise<void> => {
      while (failure === null && next < files.length) {
        const { entry, read } = files[next++] as DesiredRead['staticFiles'][number];
        try {
          if (await this.blobs.has(entry.hash)) continue;
          const hash = await this.blobs.put(await read());
          if (hash !== entry.hash) throw new ZvError('INTERNAL', `static file ${entry.path} changed while it was read`);
        } catch (e) {
          failure ??= { e };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(BLOB_WRITE_CONCURRENCY, files.length) }, writer));
    if (failure) throw (failure as { e: unknown }).e;
  }

  /** The served map of a site's file list, built once per list (an unchanged site is the same list). */
  private readonly staticMaps = new WeakMap<readonly StaticFileEntry[], ReadonlyMap<string, StaticFileEntry>>();

  private servedFiles(files: readonly StaticFileEntry[]): ReadonlyMap<string, StaticFileEntry> {
    let m = this.staticMaps.get(files);
    if (!m) this.staticMaps.set(files, (m = new Map(files.map((f) => [f.path, f]))));
    return m;
  }

  /** Switches traffic to the prepared slice, then drains and disposes what it replaced. */
  commit(app: AppIdentity, prepared: Prepared): void {
    this.serving.setApp(app.key, prepared.slice);
    this.overlays.delete(app.key);
    for (const f of prepared.replaced) void this.retire(f);
  }

  async abandon(prepared: Prepared): Promise<void> {
    await Promise.all(prepared.created.map((h) => this.retire({ handle: h, timeoutMs: 0 })));
  }

  /**
   * Serves a stored deployed state (after a restart). Lua, JS and Python functions load on their
   * first call (nothing is loaded here: the server listens at once); docker functions adopt or start
   * their containers now. Functions that cannot load are marked failed (a lazy one when it is called).
   */
  async restore(app: AppIdentity, deployed: DeployedState | null, routes: ServiceRoutes = new Map()): Promise<void> {
    const functions = new Map<string, ServedFunction>();
    deployed ??= { commit: '', functions: [], static: null, warnings: [] };
    await Promise.all(
      deployed.functions.map(async (f) => {
        try {
          if (f.runtime === 'docker') functions.set(f.path, await this.load(app, f, new Map()));
          else {
            const runtime = this.runtimeOf(f);
            functions.set(f.path, this.served(app, f, runtime, this.lazy(app, f, runtime, null)));
          }
        } catch (e) {
          const err = toZvError(e);
          this.overlay(app).set(f.path, { runtime: f.runtime, status: 'failed', message: err.message });
          this.logger.error({ namespace: app.namespace, app: app.name, function: f.path, code: err.code }, `could not restore function: ${err.message}`);
        }
      }),
    );
    const site = deployed.static;
    try {
      this.addRoutes(app, functions, routes);
    } catch (e) {
      this.logger.error({ namespace: app.namespace, app: app.name }, `could not restore service routes: ${toZvError(e).message}`);
    }
    this.serving.setApp(app.key, {
      namespace: app.namespace,
      functions,
      static: site ? { appKey: app.key, files: this.servedFiles(site.files) } : null,
    });
  }

  /** Stops serving the application; its functions are disposed once their in-flight requests end. */
  remove(app: AppIdentity): void {
    const slice = this.serving.getApp(app.key);
    this.serving.removeApp(app.key);
    this.overlays.delete(app.key);
    for (const k of [...this.secretValues.keys()]) if (k.startsWith(`${app.key}\0`)) this.secretValues.delete(k);
    for (const f of slice?.functions.values() ?? []) void this.retire(f);
  }

  /** Status facts of the served functions of an application (e.g. image and container ids). */
  describe(app: AppIdentity): Map<string, Record<string, string>> {
    const out = new Map<string, Record<string, string>>();
    for (const [path, f] of this.serving.getApp(app.key)?.functions ?? []) {
      const described = f.handle.fn.describe?.();
      let facts = described ? { ...described } : undefined;
      // A proxied function without an upstream (e.g. its container was stopped) answers 503: say so.
      if (f.handle.fn.upstream && f.handle.fn.upstream() === null) facts = { ...facts, available: 'no' };
      if (facts) out.set(path, facts);
    }
    return out;
  }

  /** Paths of served functions that cannot take requests now (a stopped container): a sync reloads them. */
  unavailable(app: AppIdentity): Set<string> {
    const out = new Set<string>();
    for (const [path, facts] of this.describe(app)) if (facts.available === 'no') out.add(path);
    // A lazy function whose last load failed (e.g. after a restart): a sync loads it anew.
    for (const [path, f] of this.serving.getApp(app.key)?.functions ?? []) if (f.handle.fn instanceof LazyFunction && f.handle.fn.lastError) out.add(path);
    return out;
  }

  /**
   * Drift check of one application (PRODUCT.md §11): its served functions whose runtime can drift
   * (docker: a container removed, stopped or paused by hand), and each blob of its static site
   * (missing, or its sha256 no longer matches). Looks only. A blob is hashed again only when its
   * file changed (inode, size, mtime or ctime) since this server last found it intact, so a pass
   * over a large site costs a stat per file; decay that leaves the file's metadata untouched is
   * not seen.
   */
  async checkDrift(app: AppIdentity): Promise<DriftFound[]> {
    const slice = this.serving.getApp(app.key);
    if (!slice) return [];
    const out: DriftFound[] = [];
    for (const [path, f] of slice.functions) {
      if (!f.handle.fn.check) continue;
      try {
        const found = await f.handle.fn.check();
        if (found) out.push({ kind: 'function', target: path, problem: found.problem, ...(found.detail ? { detail: found.detail } : {}) });
      } catch (e) {
        this.logger.warn({ namespace: app.namespace, app: app.name, function: path, err: toZvError(e).message }, 'drift check of a function failed');
      }
    }
    if (slice.static) out.push(...(await this.checkBlobs([...slice.static.files.values()])));
    return out;
  }

  /**
   * Checks (as `checkDrift`) and repairs: functions through their runtime (`repair`), static blobs
   * from `restoreBlob` (its bytes must hash to the entry's hash; a corrupt blob is replaced). Each
   * finding comes back with its result; a failed repair is reported, never thrown. The caller runs it
   * in the application's sync queue, never beside a sync of the same application.
   */
  async repairDrift(app: AppIdentity, restoreBlob: RestoreBlob): Promise<DriftRepair[]> {
    const found = await this.checkDrift(app);
    const out: DriftRepair[] = [];
    for (const d of found) {
      try {
        if (d.kind === 'function') {
          const fn = this.serving.getApp(app.key)?.functions.get(d.target)?.handle.fn;
          if (!fn?.repair) throw new ZvError('INTERNAL', `${d.target}: the function is no longer served or cannot be repaired`);
          await fn.repair();
          const left = await fn.check?.();
          if (left) throw new ZvError('FUNCTION_UNAVAILABLE', `${d.target}: still ${left.problem} after the repair`);
        } else if (d.entry) {
          await this.restoreBlob(d.entry, restoreBlob);
        }
        out.push({ kind: d.kind, target: d.target, problem: d.problem, result: 'repaired', ...(d.detail ? { detail: d.detail } : {}) });
      } catch (e) {
        out.push({ kind: d.kind, target: d.target, problem: d.problem, result: 'failed', message: toZvError(e).message, ...(d.detail ? { detail: d.detail } : {}) });
      }
    }
    return out;
  }

  /** Blob files last found intact, by hash (shared by every application: blobs are by content). */
  private readonly intact = new Map<string, BlobStamp>();

  private async checkBlobs(files: StaticFileEntry[]): Promise<DriftFound[]> {
    const byHash = new Map<string, StaticFileEntry[]>();
    for (const f of files) {
      const l = byHash.get(f.hash);
      if (l) l.push(f);
      else byHash.set(f.hash, [f]);
    }
    const out: DriftFound[] = [];
    await eachLimited([...byHash.values()], VERIFY_CONCURRENCY, async (entries) => {
      const entry = entries[0] as StaticFileEntry;
      const problem = await this.blobProblem(entry);
      if (!problem) return;
      const also = entries.length > 1 ? ` (also ${entries.slice(1).map((e) => e.path).join(', ')})` : '';
      out.push({ kind: 'static', target: entry.path, problem: problem.problem, detail: `${problem.detail}${also}`, entry });
    });
    return out.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  }

  private async blobProblem(entry: StaticFileEntry): Promise<{ problem: string; detail: string } | null> {
    const path = this.blobs.path(entry.hash);
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
      this.intact.delete(entry.hash);
      return { problem: 'blob missing', detail: `blob ${entry.hash.slice(0, 12)} is not in the blob store` };
    }
    const stamp: BlobStamp = { ino: Number(st.ino), size: Number(st.size), mtimeMs: Number(st.mtimeMs), ctimeMs: Number(st.ctimeMs) };
    const seen = this.intact.get(entry.hash);
    if (seen && seen.ino === stamp.ino && seen.size === stamp.size && seen.mtimeMs === stamp.mtimeMs && seen.ctimeMs === stamp.ctimeMs) return null;
    this.intact.delete(entry.hash);
    const corrupt = { problem: 'blob corrupt', detail: `blob ${entry.hash.slice(0, 12)} no longer hashes to its name` };
    if (!st.isFile() || stamp.size !== entry.size) return corrupt;
    let got: string;
    try {
      got = await sha256File(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { problem: 'blob missing', detail: `blob ${entry.hash.slice(0, 12)} is not in the blob store` };
      throw e;
    }
    if (got !== entry.hash) return corrupt;
    this.intact.set(entry.hash, stamp);
    return null;
  }

  private async restoreBlob(entry: StaticFileEntry, restore: RestoreBlob): Promise<void> {
    const bytes = await restore(entry);
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (hash !== entry.hash) throw new ZvError('INTERNAL', `static file ${entry.path}: the deployed commit's bytes hash to ${hash.slice(0, 12)}, not ${entry.hash.slice(0, 12)}`);
    await this.blobs.put(bytes, { replace: true });
    const left = await this.blobProblem(entry);
    if (left) throw new ZvError('INTERNAL', `static file ${entry.path}: ${left.problem} after the restore`);
  }

  /** Lets each runtime drop what no live function uses (orphan containers, unused images). */
  async collectGarbage(): Promise<void> {
    for (const runtime of this.runtimes.values()) {
      if (!runtime.gc) continue;
      const mine = [...this.live].filter(([, rt]) => rt === runtime).map(([h]) => h.fn);
      try {
        await runtime.gc(mine);
      } catch (e) {
        this.logger.warn({ runtime: runtime.name, err: toZvError(e).message }, 'runtime garbage collection failed');
      }
    }
  }
}
