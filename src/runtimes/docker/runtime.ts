// The docker runtime: builds a function's image through the Engine API (tagged by content, built
// once), runs one container per loaded function and keeps track of it through the engine's event
// stream. Containers carry labels so that a restarted platform adopts its running containers instead
// of starting duplicates, and never touches containers that are not its own.
import type { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { ZvError } from '../../errors/registry.js';
import { silentLogger } from '../../telemetry/log.js';
import type { FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction } from '../types.js';
import { buildImage, IMAGE_REPO, imageTag, readJsonLines } from './build.js';
import { createOptions, fnHash, LABELS } from './container.js';
import type { Limits } from './container.js';
import { DockerFunction } from './function.js';
import type { DockerFunctionSource, StartMode } from './function.js';

export interface DockerRuntimeOptions {
  /** The engine client; default: DOCKER_HOST or /var/run/docker.sock. */
  docker?: Dockerode;
  /** Time limit of one image build (default 10 min). */
  buildTimeoutMs?: number;
  /** How long a new container may take to answer HTTP on its port (default 60 s). */
  readyTimeoutMs?: number;
  /** CPUs per container (default 1). */
  cpus?: number;
  /** Processes per container (default 256). */
  pidsLimit?: number;
  log?: Logger;
  /**
   * Set when several platform instances share one engine: containers get the label
   * `zerverless.instance=<instance>`, and adoption and removeOrphans only see those.
   */
  instance?: string;
  /** How often loaded containers are re-inspected besides the event stream (default 10 s). */
  refreshIntervalMs?: number;
  /** pruneImages keeps images younger than this (default 10 min): another server may be about to run one. */
  imageGraceMs?: number;
}

interface EngineEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string };
  timeNano?: number;
}

interface Build {
  promise: Promise<string>;
  lines: string[];
  listeners: Set<(line: string) => void>;
}

const statusOf = (e: unknown): number | undefined => (e as { statusCode?: number } | null)?.statusCode;
function errText(e: unknown): string {
  const j = (e as { json?: { message?: string } } | null)?.json;
  if (j && typeof j.message === 'string') return j.message;
  return e instanceof Error ? e.message : String(e);
}
const ADOPTABLE = ['running', 'created', 'exited'];

export class DockerRuntime implements FunctionRuntime {
  readonly name = 'docker' as const;
  readonly docker: Dockerode;
  private readonly buildTimeoutMs: number;
  private readonly readyTimeoutMs: number;
  private readonly limits: Limits;
  private readonly logger: Logger;
  private readonly instance: string | undefined;
  private readonly imageGraceMs: number;
  private readonly refreshIntervalMs: number;
  private builds = 0;
  private readonly building = new Map<string, Build>();
  /** Containers reserved by a load under way or owned by a live function of this runtime. */
  private readonly held = new Set<string>();
  private readonly fns = new Map<string, DockerFunction>();
  /** Image tags a load under way or a live function uses: never pruned. */
  private readonly pinned = new Map<string, number>();
  private events: Readable | undefined;
  private watching: Promise<void> | undefined;
  private rewatch: NodeJS.Timeout | undefined;
  private sweep: NodeJS.Timeout | undefined;
  private engineOk = false;
  private closed = false;

  constructor(opts: DockerRuntimeOptions = {}) {
    this.docker = opts.docker ?? new Dockerode();
    this.buildTimeoutMs = opts.buildTimeoutMs ?? 10 * 60_000;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
    this.limits = { cpus: opts.cpus ?? 1, pidsLimit: opts.pidsLimit ?? 256 };
    this.logger = opts.log ?? silentLogger;
    this.instance = opts.instance;
    this.imageGraceMs = opts.imageGraceMs ?? 10 * 60_000;
    this.refreshIntervalMs = opts.refreshIntervalMs ?? 10_000;
  }

  /** Image builds this runtime started (a load that found its image builds nothing). */
  get buildCount(): number {
    return this.builds;
  }

  async available(): Promise<{ ok: true } | { ok: false; reason: string }> {
    if (this.engineOk) return { ok: true };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.docker.ping(),
        new Promise((_r, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
        }),
      ]);
      this.engineOk = true;
      return { ok: true };
    } catch (e) {
      return { ok: false, reason: `no Docker engine answers at ${this.address()}: ${e instanceof Error ? e.message : String(e)}` };
    } finally {
      clearTimeout(timer);
    }
  }

  async load(source: FunctionSource, log: FunctionLogger): Promise<LoadedFunction> {
    if (this.closed) throw new ZvError('RUNTIME_UNAVAILABLE', 'docker: the runtime is closed');
    if (source.runtime !== 'docker' || !source.docker) throw new ZvError('INTERNAL', `${source.id}: not a docker function`);
    const a = await this.available();
    if (!a.ok) throw new ZvError('RUNTIME_UNAVAILABLE', `docker: ${a.reason}`);
    const src = source as DockerFunctionSource;
    const d = src.docker;
    const tag = imageTag(d.build);
    this.pin(tag);
    let fn: DockerFunction | undefined;
    try {
      await this.watch();
      let imageId = await this.imageId(tag);
      if (imageId === null && d.contextDir && d.dockerfilePath) imageId = await this.build(tag, src);
      const hash = fnHash(tag, src, this.limits);
      const got = await this.acquire(src, tag, hash, imageId !== null);
      if (!got) {
        throw new ZvError('RUNTIME_UNAVAILABLE',
          `${d.build.dockerfile}: the image ${tag} of ${source.id} is no longer in the Docker engine and there is no build context to rebuild it from; the next sync rebuilds it`);
      }
      const id = got.id;
      fn = new DockerFunction({
        docker: this.docker, source: src, log, logger: this.logger, tag, imageId: imageId ?? got.imageId, containerId: id,
        readyTimeoutMs: this.readyTimeoutMs,
        release: () => {
          this.fns.delete(id);
          this.held.delete(id);
          this.unpin(tag);
        },
      });
      this.fns.set(id, fn);
      if (got.mode === 'adopted') this.logger.info({ fn: source.id, container: id }, 'adopting a running container');
      await fn.start(got.mode);
    } catch (e) {
      if (fn) await fn.dispose();
      else this.unpin(tag);
      throw e instanceof ZvError ? e : new ZvError('RUNTIME_UNAVAILABLE', `docker: ${source.id}: ${errText(e)}`, undefined, { cause: e });
    }
    if (this.closed) {
      fn.detach();
      throw new ZvError('RUNTIME_UNAVAILABLE', 'docker: the runtime is closed');
    }
    return fn;
  }

  /** Stops following containers and events. Containers keep running: the next start adopts them. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    clearTimeout(this.rewatch);
    this.events?.destroy();
    this.events = undefined;
    for (const fn of this.fns.values()) fn.detach();
  }

  /** After a restore or a sync: containers and images no live function uses go. */
  async gc(live: LoadedFunction[]): Promise<void> {
    const keepContainers = new Set<string>();
    const keepTags = new Set<string>();
    for (const f of live) {
      const facts = f.describe?.();
      if (facts?.container) keepContainers.add(facts.container);
      if (facts?.image) keepTags.add(facts.image);
    }
    await this.removeOrphans(keepContainers);
    await this.pruneImages(keepTags);
  }

  /**
   * Removes the containers labelled as ours (and of this instance, when one is set) that are not in
   * `keep` and not held by a loaded function. Returns how many were removed.
   */
  async removeOrphans(keep: Set<string>): Promise<number> {
    const list = await this.docker.listContainers({ all: true, filters: { label: this.scope() } });
    const kept = (id: string): boolean => keep.has(id) || [...keep].some((k) => k.length >= 12 && id.startsWith(k));
    let n = 0;
    for (const c of list) {
      if (c.Labels?.[LABELS.managed] !== 'true' || (this.instance && c.Labels[LABELS.instance] !== this.instance)) continue;
      if (kept(c.Id) || this.held.has(c.Id)) continue;
      try {
        await this.docker.getContainer(c.Id).remove({ force: true });
        n++;
      } catch (e) {
        if (statusOf(e) !== 404 && statusOf(e) !== 409) this.logger.warn({ err: e, container: c.Id }, 'removing an orphan container failed');
      }
    }
    if (n) this.logger.info({ removed: n }, 'removed orphan function containers');
    return n;
  }

  /**
   * Removes `zerverless-fn:*` tags not in `keep`, not used by a load under way or a loaded function,
   * and whose image no container (running or stopped) uses. Returns how many tags were removed.
   */
  async pruneImages(keep: Set<string>): Promise<number> {
    const [images, containers] = await Promise.all([this.docker.listImages(), this.docker.listContainers({ all: true })]);
    const used = new Set(containers.flatMap((c) => [c.ImageID, c.Image]));
    let n = 0;
    // Another server on the same engine may have just built an image it is about to run.
    const youngerThan = (Date.now() - this.imageGraceMs) / 1000;
    for (const img of images) {
      if (used.has(img.Id) || img.Created > youngerThan) continue;
      for (const tag of img.RepoTags ?? []) {
        if (!tag.startsWith(`${IMAGE_REPO}:`) || keep.has(tag) || this.pinned.has(tag) || used.has(tag)) continue;
        try {
          await this.docker.getImage(tag).remove();
          n++;
        } catch (e) {
          if (statusOf(e) !== 404 && statusOf(e) !== 409) this.logger.warn({ err: e, image: tag }, 'removing an unused image failed');
        }
      }
    }
    return n;
  }

  private address(): string {
    const m = this.docker.modem as unknown as { socketPath?: string; host?: string; port?: number | string };
    if (m.socketPath) return String(m.socketPath);
    return m.host ? `${m.host}${m.port ? `:${m.port}` : ''}` : '/var/run/docker.sock';
  }

  private scope(): string[] {
    return [`${LABELS.managed}=true`, ...(this.instance ? [`${LABELS.instance}=${this.instance}`] : [])];
  }

  private pin(tag: string): void {
    this.pinned.set(tag, (this.pinned.get(tag) ?? 0) + 1);
  }

  private unpin(tag: string): void {
    const n = (this.pinned.get(tag) ?? 1) - 1;
    if (n > 0) this.pinned.set(tag, n);
    else this.pinned.delete(tag);
  }

  private async imageId(tag: string): Promise<string | null> {
    try {
      return (await this.docker.getImage(tag).inspect()).Id;
    } catch (e) {
      if (statusOf(e) === 404) return null;
      throw new ZvError('RUNTIME_UNAVAILABLE', `docker: cannot inspect the image ${tag}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Builds `tag` once: concurrent loads of the same content share the build and its log. */
  private build(tag: string, src: DockerFunctionSource): Promise<string> {
    const d = src.docker;
    let b = this.building.get(tag);
    if (!b) {
      this.builds++;
      const nb: Build = { lines: [], listeners: new Set(), promise: Promise.resolve('') };
      nb.promise = buildImage(this.docker, {
        tag, build: d.build, contextDir: d.contextDir ?? '', dockerfilePath: d.dockerfilePath ?? '', timeoutMs: this.buildTimeoutMs,
        onLine: (line) => {
          nb.lines.push(line);
          if (nb.lines.length > 200) nb.lines.shift();
          for (const l of nb.listeners) l(line);
        },
      }).finally(() => this.building.delete(tag));
      this.building.set(tag, nb);
      b = nb;
      this.logger.info({ fn: src.id, image: tag }, 'building a function image');
    } else {
      for (const line of b.lines) d.buildLog?.(line);
    }
    const listener = d.buildLog;
    if (listener) b.listeners.add(listener);
    return b.promise.finally(() => {
      if (listener) b.listeners.delete(listener);
    });
  }

  /**
   * A container for the function: a container of ours with the same hash that no live function
   * holds (running first, else a stopped one), or a new one when `canCreate`. Marks it held.
   */
  private async acquire(src: DockerFunctionSource, tag: string, hash: string, canCreate: boolean): Promise<{ id: string; mode: StartMode; imageId: string } | null> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [...this.scope(), `${LABELS.fnhash}=${hash}`] } });
    const candidates = list
      .filter((c) => ADOPTABLE.includes(c.State) && c.Labels?.[LABELS.fnhash] === hash)
      .sort((a, b) => Number(b.State === 'running') - Number(a.State === 'running') || b.Created - a.Created);
    const pick = candidates.find((c) => !this.held.has(c.Id));
    if (pick) {
      this.held.add(pick.Id);
      return { id: pick.Id, mode: 'adopted', imageId: pick.ImageID };
    }
    if (!canCreate) return null;
    let c: Dockerode.Container;
    try {
      c = await this.docker.createContainer(createOptions(src, tag, hash, this.limits, this.instance));
    } catch (e) {
      // 400: the engine refuses what the manifest asks for (e.g. an unknown capability).
      if (statusOf(e) === 400) throw new ZvError('FUNCTION_COMPILE_ERROR', `${src.docker.build.dockerfile}: the Docker engine refused the container: ${errText(e)}`);
      throw e;
    }
    this.held.add(c.id);
    return { id: c.id, mode: 'created', imageId: '' };
  }

  /** Follows the engine's container events (ours only); reconnects while functions are loaded. */
  private async watch(): Promise<void> {
    if (this.events || this.closed) return;
    this.watching ??= (async () => {
      try {
        const s = (await this.docker.getEvents({ filters: { type: ['container'], label: [`${LABELS.managed}=true`] } })) as unknown as Readable;
        if (this.closed) {
          s.destroy();
          return;
        }
        this.events = s;
        void readJsonLines<EngineEvent>(s, (e) => this.dispatch(e))
          .catch(() => {})
          .finally(() => {
            if (this.events === s) this.events = undefined;
            this.scheduleRewatch();
          });
      } catch (e) {
        this.logger.warn({ err: e }, 'cannot follow Docker events; retrying');
        this.scheduleRewatch();
      } finally {
        this.watching = undefined;
      }
    })();
    await this.watching;
    if (!this.sweep && !this.closed) {
      this.sweep = setInterval(() => this.refreshAll(), this.refreshIntervalMs);
      this.sweep.unref();
    }
  }

  private scheduleRewatch(): void {
    if (this.closed || this.fns.size === 0 || this.rewatch) return;
    this.rewatch = setTimeout(() => {
      this.rewatch = undefined;
      void this.watch().then(() => this.refreshAll());
    }, 1000);
    this.rewatch.unref();
  }

  private dispatch(e: EngineEvent): void {
    if (e.Type && e.Type !== 'container') return;
    const id = e.Actor?.ID ?? e.id;
    const action = e.Action ?? e.status;
    if (!id || !action) return;
    this.fns.get(id)?.onEvent(action, e.timeNano);
  }

  private refreshAll(): void {
    for (const fn of this.fns.values()) void fn.refresh();
  }
}
