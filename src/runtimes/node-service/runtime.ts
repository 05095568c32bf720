// The default runtime for services (PRODUCT.md §8): fetches a spec's source (npm, git, release) into a
// folder per version, installs and builds it, runs it as a supervised child process on a loopback
// PORT, checks its health, and replaces it without downtime on upgrade/reconfigure (the new process
// starts beside the old and takes over `upstream()` once healthy). One runtime per namespace.
//
// Decisions: without a health spec a process counts as healthy once it has run `livenessDelayMs`
// (default 1 s). deploy/upgrade/reconfigure resolve once the new process is healthy and reject with a
// ZvError otherwise (a first deploy keeps its unhealthy process supervised; a replacement is stopped and
// the old process keeps serving). Service processes run in their own process groups; `close()` stops
// them all. After a restart the caller re-deploys the last synced specs (or calls `adopt`): ready
// version folders are reused, and leftover processes of a server that died are stopped first (each
// service's pids.json records every process the runtime started, from its spawn until it is stopped:
// a new version starting beside the old one, an old one draining after a takeover).
// A version folder is keyed by version and source: a git branch is resolved when the folder is first
// prepared, so new commits on it reach a running service with a version bump (or a changed ref).
// One runtime per dataDir and namespace: it owns `<dataDir>/services[/<namespace>]/`.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ServiceRuntime, ServiceSpec, ServiceState } from '../../core/services/types.js';
import { silentLogger } from '../../telemetry/log.js';
import { serviceError } from './errors.js';
import { toolEnv } from './exec.js';
import { prepareVersion, pruneVersions, serviceNames, stopLeftovers, writePids } from './folders.js';
import { Instance } from './instance.js';
import type { Backoff, HealthTiming } from './instance.js';
import { LogBuffer } from './log.js';
import { PortPool } from './ports.js';

export interface NodeServiceRuntimeOptions {
  dataDir: string;
  /** Given: folders go under `<dataDir>/services/<namespace>/`, and events carry it. */
  namespace?: string;
  /** The application the services belong to: events carry it as `application` (GET /api/events). */
  application?: string;
  logger?: Logger;
  /** Registry for `npm` sources (default: whatever the host's npm uses). */
  npmRegistry?: string;
  /** Ports assigned to service processes (default [40000, 44999]). */
  portRange?: [number, number];
  /** A pool shared with other runtimes of the same server (then `portRange` is ignored). */
  ports?: PortPool;
  healthDefaults?: Partial<HealthTiming>;
  /** Between SIGTERM and SIGKILL of a process group (default 10 s). */
  gracePeriodMs?: number;
  /** Log kept per service (default 1 MiB). */
  maxLogBytes?: number;
  /** Also told every line of every service's log (the server keeps them on disk: src/logs/). Must not throw or block. */
  onLog?: (service: string, stream: 'stdout' | 'stderr' | 'system', text: string) => void;
  backoff?: Partial<Backoff>;
  /** How long a new process may take to become healthy (default max(60 s, 3 × health interval)). */
  readyTimeoutMs?: number;
  /** After a takeover, how long the old process keeps running for requests already sent to it (default 1 s). */
  drainMs?: number;
  /** Accept file:// and absolute-path git URLs (tests, local setups; default false). */
  allowFileRepos?: boolean;
  gitTimeoutMs?: number;
  /** npm pack and release downloads (default 5 min). */
  downloadTimeoutMs?: number;
  maxDownloadBytes?: number;
  /** Each of install and build (default 10 min). */
  installTimeoutMs?: number;
}

interface Service {
  name: string;
  dir: string;
  spec: ServiceSpec;
  active: Instance | null;
  next: Instance | null;
  log: LogBuffer;
  /** The last operation's failure; cleared by the next success. */
  message: string | undefined;
  preparing: boolean;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function pinnedPort(spec: ServiceSpec): number | null {
  if (spec.port !== null && spec.port !== undefined) return spec.port;
  const env = spec.env.PORT ?? spec.env.port;
  return env !== undefined && /^\d+$/.test(env) ? Number(env) : null;
}

/** Whether two specs run the same process (only health, route or depends_on may differ). */
function sameProcess(a: ServiceSpec, b: ServiceSpec): boolean {
  const envKey = (s: ServiceSpec): string => JSON.stringify(Object.entries(s.env).map(([k, v]) => [k.toUpperCase(), v]).sort());
  return a.version === b.version && JSON.stringify(a.source) === JSON.stringify(b.source) && envKey(a) === envKey(b) && pinnedPort(a) === pinnedPort(b);
}

export class NodeServiceRuntime implements ServiceRuntime {
  private readonly root: string;
  private readonly logger: Logger;
  private readonly ports: PortPool;
  private readonly services = new Map<string, Service>();
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Every process this runtime started and has not stopped, with its service (pids.json lists a service's). */
  private readonly live = new Map<Instance, Service>();
  /** Ends the drains under way (see beginShutdown). */
  private readonly drains = new Set<() => void>();
  private shuttingDown = false;
  private readonly touched = new Set<string>();
  private readonly backoff: Backoff;
  private readonly timing: HealthTiming;
  private readonly grace: number;
  private closed = false;

  constructor(private readonly o: NodeServiceRuntimeOptions) {
    this.root = o.namespace ? join(o.dataDir, 'services', o.namespace) : join(o.dataDir, 'services');
    this.logger = (o.logger ?? silentLogger).child({ component: 'node-services', namespace: o.namespace });
    const [from, to] = o.portRange ?? [40000, 44999];
    this.ports = o.ports ?? new PortPool(from, to);
    this.backoff = { initialMs: 500, maxMs: 30_000, resetAfterMs: 30_000, loopCrashes: 3, loopWindowMs: 60_000, ...o.backoff };
    this.timing = { startupPollMs: 250, livenessDelayMs: 1000, ...o.healthDefaults };
    this.grace = o.gracePeriodMs ?? 10_000;
  }

  deploy(spec: ServiceSpec): Promise<void> {
    return this.apply(spec, 'deploy');
  }

  upgrade(spec: ServiceSpec, _oldVersion: string): Promise<void> {
    return this.apply(spec, 'upgrade');
  }

  reconfigure(spec: ServiceSpec): Promise<void> {
    return this.apply(spec, 'reconfigure');
  }

  /**
   * After a restart: stops leftover processes of every service folder, then deploys `specs` in the
   * given order (dependencies first), reusing ready folders. Resolves with each spec's outcome.
   */
  async adopt(specs: ServiceSpec[]): Promise<{ name: string; error?: Error }[]> {
    for (const name of await serviceNames(this.root)) await this.reap(name);
    const out: { name: string; error?: Error }[] = [];
    for (const spec of specs) {
      try {
        await this.deploy(spec);
        out.push({ name: spec.name });
      } catch (e) {
        out.push({ name: spec.name, error: e instanceof Error ? e : new Error(String(e)) });
      }
    }
    return out;
  }

  async remove(name: string): Promise<void> {
    this.checkName(name);
    await this.serial(name, async () => {
      const svc = this.services.get(name);
      await this.reap(name);
      if (svc) {
        await Promise.all(this.processesOf(svc).map((i) => this.stopInstance(i)));
        this.services.delete(name);
      }
      await rm(join(this.root, name), { recursive: true, force: true });
      this.logger.info({ app: name }, 'service removed');
    });
  }

  async getCurrentState(): Promise<ServiceState[]> {
    return [...this.services.values()].sort((a, b) => a.name.localeCompare(b.name)).map((svc) => this.stateOf(svc));
  }

  /** The loopback address of the service's current healthy process, or null. */
  upstream(name: string): { host: '127.0.0.1'; port: number } | null {
    const a = this.services.get(name)?.active;
    return a?.ready ? { host: '127.0.0.1', port: a.port } : null;
  }

  /** The service's kept log lines (`<ISO time> <stdout|stderr|system> <text>`), oldest first. */
  logs(name: string): string[] {
    return this.services.get(name)?.log.read() ?? [];
  }

  /**
   * The server is shutting down and close() follows: a drain under way ends now (the old process is
   * stopped at once instead of after `drainMs`), and a later one does not wait. A shutdown waits for
   * the operations under way; close() stops every process anyway.
   */
  beginShutdown(): void {
    this.shuttingDown = true;
    for (const end of [...this.drains]) end();
  }

  /** Stops every process this runtime started (gracefully); the runtime refuses work afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    this.beginShutdown();
    await Promise.all([...this.live.keys()].map((i) => this.stopInstance(i)));
  }

  private stateOf(svc: Service): ServiceState {
    const a = svc.active;
    if (!a) {
      return { name: svc.name, version: svc.spec.version, status: svc.preparing ? 'starting' : 'failed', health: 'unknown', restarts: 0,
        ...(svc.message ? { message: svc.message } : svc.preparing ? { message: `preparing ${svc.spec.version}` } : {}) };
    }
    const notes = [svc.message, svc.next ? `starting ${svc.next.version} beside it` : undefined, a.message].filter(Boolean);
    return {
      name: svc.name, version: a.version, status: a.status, health: a.health, port: a.port, restarts: a.restarts,
      ...(a.pid !== undefined ? { pid: a.pid } : {}), ...(notes.length ? { message: notes.join('; ') } : {}),
    };
  }

  private checkName(name: string): void {
    if (!NAME.test(name) || name === '.' || name === '..') throw serviceError('invalid-spec', `service name '${name}' is not valid`);
  }

  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(name) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(name, tail);
    void tail.then(() => {
      if (this.queues.get(name) === tail) this.queues.delete(name);
    });
    return run;
  }

  /** Stops leftovers of an earlier server in the service's folder, once per name and runtime. */
  private async reap(name: string): Promise<void> {
    if (this.touched.has(name)) return;
    this.touched.add(name);
    const stopped = await stopLeftovers(join(this.root, name), this.grace);
    if (stopped.length) this.logger.warn({ app: name, pgids: stopped.map((s) => s.pgid) }, 'stopped service processes left by an earlier server');
  }

  private async apply(spec: ServiceSpec, op: 'deploy' | 'upgrade' | 'reconfigure'): Promise<void> {
    this.checkName(spec.name);
    if (!spec.version) throw serviceError('invalid-spec', `service '${spec.name}' has no version`);
    return this.serial(spec.name, async () => {
      if (this.closed) throw serviceError('closed', 'the Node service runtime is closed');
      await this.reap(spec.name);
      let svc = this.services.get(spec.name);
      if (!svc) {
        svc = { name: spec.name, dir: join(this.root, spec.name), spec, active: null, next: null,
          log: new LogBuffer(this.o.maxLogBytes ?? 1024 * 1024, this.o.onLog ? (l) => this.o.onLog?.(spec.name, l.stream, l.text) : undefined),
          message: undefined, preparing: false };
        this.services.set(spec.name, svc);
      }
      svc.spec = spec;
      const cur = svc.active;
      if (cur && sameProcess(cur.spec, spec)) {
        if (JSON.stringify(cur.spec.health) !== JSON.stringify(spec.health)) cur.setHealth(spec);
        else cur.spec = spec;
        svc.message = undefined;
        return;
      }
      try {
        svc.preparing = true;
        const { dir } = await prepareVersion(svc.dir, spec, {
          namespace: this.o.namespace, application: this.o.application,
          fetch: {
            allowFileRepos: this.o.allowFileRepos ?? false, npmRegistry: this.o.npmRegistry, log: svc.log, env: toolEnv(spec.env),
            gitTimeoutMs: this.o.gitTimeoutMs ?? 5 * 60_000, downloadTimeoutMs: this.o.downloadTimeoutMs ?? 5 * 60_000,
            maxDownloadBytes: this.o.maxDownloadBytes ?? 512 * 1024 * 1024,
          },
          install: { env: toolEnv(spec.env), timeoutMs: this.o.installTimeoutMs ?? 10 * 60_000, log: svc.log },
        });
        svc.preparing = false;
        if (!cur) await this.startFresh(svc, spec, dir);
        else await this.replace(svc, cur, spec, dir, op);
        svc.message = undefined;
        await pruneVersions(svc.dir, [svc.active?.dir ?? dir]);
      } catch (e) {
        svc.preparing = false;
        const what = cur ? `${op} to ${spec.version} failed: ${errText(e)}; ${cur.version} keeps running` : `${op} of ${spec.version} failed: ${errText(e)}`;
        svc.message = what;
        svc.log.add('system', what);
        this.logger.warn({ app: spec.name, version: spec.version, op, err: errText(e) }, 'service operation failed');
        throw e;
      }
    });
  }

  private readyTimeout(spec: ServiceSpec): number {
    return this.o.readyTimeoutMs ?? Math.max(60_000, 3 * (spec.health?.interval ?? 0));
  }

  /** Creates and starts a supervised process; rejects (and stops it) when it cannot start at all. */
  private async launch(svc: Service, spec: ServiceSpec, dir: string): Promise<Instance> {
    if (this.closed) throw serviceError('closed', 'the Node service runtime is closed');
    const pinned = pinnedPort(spec);
    let port: number;
    if (pinned !== null) {
      port = pinned;
      if (!this.ports.hold(port)) throw serviceError('start', `${spec.name}: port ${port} is already used by another service of this server`);
    } else port = await this.ports.take();
    if (this.closed) {
      this.ports.release(port);
      throw serviceError('closed', 'the Node service runtime is closed');
    }
    const inst = new Instance({
      spec, namespace: this.o.namespace, application: this.o.application, dir, port, log: svc.log, logger: this.logger, gracePeriodMs: this.grace,
      backoff: this.backoff, timing: this.timing, onPid: () => this.savePids(svc),
    });
    // Recorded from its spawn on (onPid), whatever role it has then.
    this.live.set(inst, svc);
    try {
      await inst.start();
    } catch (e) {
      await this.stopInstance(inst);
      throw e;
    }
    return inst;
  }

  private async stopInstance(inst: Instance): Promise<void> {
    // Recorded until it is gone: a server that dies during the grace period leaves it to the restart.
    await inst.stop();
    const svc = this.live.get(inst);
    this.live.delete(inst);
    this.ports.release(inst.port);
    if (svc) this.savePids(svc);
  }

  /**
   * Every process started for the service and not yet stopped (active, next, one draining after a
   * takeover, a relaunch): what pids.json records, so that a restart after a crash stops them all.
   */
  private processesOf(svc: Service): Instance[] {
    const out: Instance[] = [];
    for (const [inst, of] of this.live) if (of === svc) out.push(inst);
    return out;
  }

  /** pids.json: every process group of the service this runtime runs, whatever its role (active, next, draining). */
  private savePids(svc: Service): void {
    const pids = this.processesOf(svc).flatMap((i) => (i.pid !== undefined ? [{ pgid: i.pid, version: i.version, port: i.port }] : []));
    writePids(svc.dir, pids);
  }

  /** Waits `ms`, or less when the runtime shuts down (beginShutdown, close). */
  private drain(ms: number): Promise<void> {
    if (this.shuttingDown) return Promise.resolve();
    return new Promise((resolve) => {
      const end = (): void => {
        clearTimeout(timer);
        this.drains.delete(end);
        resolve();
      };
      const timer = setTimeout(end, ms);
      this.drains.add(end);
    });
  }

  /** A first deploy (or one after a failed one): the process stays supervised even if it never gets healthy. */
  private async startFresh(svc: Service, spec: ServiceSpec, dir: string): Promise<void> {
    const inst = await this.launch(svc, spec, dir);
    svc.active = inst;
    this.savePids(svc);
    await inst.waitReady(this.readyTimeout(spec));
  }

  private async replace(svc: Service, cur: Instance, spec: ServiceSpec, dir: string, op: string): Promise<void> {
    const fixedPort = [spec, cur.spec].some((s) => pinnedPort(s) !== null || (s.health?.port ?? null) !== null);
    if (fixedPort) return this.stopThenStart(svc, cur, spec, dir);
    svc.log.add('system', `${op}: starting ${spec.version} beside ${cur.version}`);
    const next = await this.launch(svc, spec, dir);
    svc.next = next;
    try {
      await next.waitReady(this.readyTimeout(spec));
    } catch (e) {
      svc.next = null;
      await this.stopInstance(next);
      throw e;
    }
    // Take over: upstream() answers with the new process from here on.
    // `cur` stays in pids.json while it drains: a server killed meanwhile leaves it to the restart.
    svc.active = next;
    svc.next = null;
    svc.log.add('system', `${op}: ${spec.version} took over on port ${next.port}; stopping ${cur.version}`);
    await this.drain(this.o.drainMs ?? 1000);
    await this.stopInstance(cur);
  }

  /** A pinned port cannot be shared: stop the old process, start the new; on failure bring the old back. */
  private async stopThenStart(svc: Service, cur: Instance, spec: ServiceSpec, dir: string): Promise<void> {
    svc.log.add('system', `port is pinned: stopping ${cur.version} before starting ${spec.version}`);
    await this.stopInstance(cur);
    svc.active = null;
    svc.preparing = true; // reported as `starting` until the new process exists
    let next: Instance | undefined;
    try {
      next = await this.launch(svc, spec, dir);
      svc.active = next;
      svc.preparing = false;
      await next.waitReady(this.readyTimeout(spec));
    } catch (e) {
      svc.preparing = false;
      if (next) await this.stopInstance(next);
      svc.active = await this.launch(svc, cur.spec, cur.dir).catch((e2: unknown) => {
        svc.log.add('system', `could not restart ${cur.version}: ${errText(e2)}`);
        return null;
      });
      throw e;
    }
  }
}
