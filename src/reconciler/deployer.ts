// The apply side of a sync: loads function code into runtimes and stores static blobs (prepare,
// which may fail and then changes nothing), then publishes the new slice and retires what it
// replaced (commit). Also restores the last deployed state at start without reaching git.
import { readFile } from 'node:fs/promises';
import { ZvError, toZvError } from '../errors/registry.js';
import type { DeployedState, DesiredFunction } from '../core/model.js';
import type { FunctionState } from '../core/status.js';
import type { Plan } from '../core/plan.js';
import { DrainingFunction } from '../runtimes/drain.js';
import type { FunctionLogger, RuntimeName } from '../runtimes/types.js';
import type { BlobStore } from '../store/types.js';
import type { AppSlice, ServedFunction, ServingTable } from '../gateway/serving.js';
import type { Logger } from '../telemetry/log.js';
import type { DesiredRead, RuntimeSet } from './ports.js';

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

/** In-flight requests may run up to the function's own timeout: wait that long before disposing. */
function retire(f: ServedFunction): Promise<void> {
  return f.handle.retire(f.timeoutMs + 5_000);
}

export class Deployer {
  /** Per app key, per function path: state when not simply ready. */
  readonly functionStates = new Map<string, Map<string, { status: FunctionState; message?: string }>>();

  constructor(
    private readonly runtimes: RuntimeSet,
    private readonly blobs: BlobStore,
    private readonly serving: ServingTable,
    private readonly logger: Logger,
  ) {}

  private functionLogger(app: AppIdentity, path: string): FunctionLogger {
    const log = this.logger.child({ component: 'function', namespace: app.namespace, app: app.name, function: path });
    return (stream, line) => (stream === 'stderr' ? log.warn({ stream }, line) : log.info({ stream }, line));
  }

  private async load(app: AppIdentity, f: DesiredFunction): Promise<ServedFunction> {
    const runtime = this.runtimes.get(f.runtime);
    if (!runtime) throw new ZvError('RUNTIME_UNAVAILABLE', `${f.filename}: runtime '${f.runtime}' for ${f.path} is not available on this server`);
    const loaded = await runtime.load(
      {
        id: `${app.namespace}/${app.name}${f.path}@${f.hash.slice(0, 8)}`,
        runtime: f.runtime as RuntimeName,
        language: f.language,
        code: f.code,
        filename: f.filename,
        lineOffset: f.lineOffset,
        timeoutMs: f.timeoutMs,
        memoryMb: f.memoryMb,
        env: f.env,
      },
      this.functionLogger(app, f.path),
    );
    return { appKey: app.key, path: f.path, runtime: f.runtime, handle: new DrainingFunction(loaded), timeoutMs: f.timeoutMs };
  }

  /** Loads new and changed functions and stores static blobs. Throws (having undone its work) on any failure. */
  async prepare(app: AppIdentity, read: DesiredRead, plan: Plan): Promise<Prepared> {
    const current = this.serving.getApp(app.key);
    const changes = new Map(plan.functions.map((c) => [c.path, c.action]));
    const functions = new Map<string, ServedFunction>();
    const created: DrainingFunction[] = [];
    const toLoad: DesiredFunction[] = [];
    for (const f of read.state.functions) {
      const old = current?.functions.get(f.path);
      if (changes.get(f.path) === 'unchanged' && old) functions.set(f.path, old);
      else toLoad.push(f);
    }
    const results = await Promise.allSettled(toLoad.map((f) => this.load(app, f)));
    const failures: string[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        functions.set(r.value.path, r.value);
        created.push(r.value.handle);
      } else failures.push(toZvError(r.reason).message || `${toLoad[i]?.path}: failed to load`);
    });
    if (failures.length) {
      await Promise.all(created.map((h) => h.retire(0)));
      const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      const code = first ? toZvError(first.reason).code : 'FUNCTION_COMPILE_ERROR';
      throw new ZvError(code, failures.join('; '));
    }

    try {
      for (const { entry, absPath } of read.staticFiles) {
        if (await this.blobs.has(entry.hash)) continue;
        const hash = await this.blobs.put(await readFile(absPath));
        if (hash !== entry.hash) throw new ZvError('INTERNAL', `static file ${entry.path} changed while it was read`);
      }
    } catch (e) {
      await Promise.all(created.map((h) => h.retire(0)));
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
      static: site ? { appKey: app.key, files: new Map(site.files.map((f) => [f.path, f])) } : null,
    };
    return { slice, created, replaced };
  }

  /** Switches traffic to the prepared slice, then drains and disposes what it replaced. */
  commit(app: AppIdentity, prepared: Prepared): void {
    this.serving.setApp(app.key, prepared.slice);
    this.functionStates.delete(app.key);
    for (const f of prepared.replaced) void retire(f);
  }

  async abandon(prepared: Prepared): Promise<void> {
    await Promise.all(prepared.created.map((h) => h.retire(0)));
  }

  /** Serves a stored deployed state (after a restart). Functions that cannot load are marked failed. */
  async restore(app: AppIdentity, deployed: DeployedState): Promise<void> {
    const functions = new Map<string, ServedFunction>();
    const states = new Map<string, { status: FunctionState; message?: string }>();
    await Promise.all(
      deployed.functions.map(async (f) => {
        try {
          functions.set(f.path, await this.load(app, f));
        } catch (e) {
          const err = toZvError(e);
          states.set(f.path, { status: 'failed', message: err.message });
          this.logger.error({ namespace: app.namespace, app: app.name, function: f.path, code: err.code }, `could not restore function: ${err.message}`);
        }
      }),
    );
    const site = deployed.static;
    this.serving.setApp(app.key, {
      namespace: app.namespace,
      functions,
      static: site ? { appKey: app.key, files: new Map(site.files.map((f) => [f.path, f])) } : null,
    });
    if (states.size) this.functionStates.set(app.key, states);
  }

  /** Stops serving the application; its functions are disposed once their in-flight requests end. */
  remove(app: AppIdentity): void {
    const slice = this.serving.getApp(app.key);
    this.serving.removeApp(app.key);
    this.functionStates.delete(app.key);
    for (const f of slice?.functions.values() ?? []) void retire(f);
  }
}
