// The docker runtime: builds a function's image through the Engine API (tagged by content, built
// once), runs one container per loaded function and keeps track of it through the engine's event
// stream. Containers carry labels so that a restarted platform adopts its running containers instead
// of starting duplicates, and never touches containers that are not its own. Each namespace's
// containers sit on the namespace's own bridge network (made on demand, removed once unused); images
// no container uses are removed once they have been unused for a grace, and a failed build's layers
// at once.
import type { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { ZvError } from '../../errors/registry.js';
import { silentLogger } from '../../telemetry/log.js';
import type { DockerSource, FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction } from '../types.js';
import { buildImage, IMAGE_REPO, imageTag, readJsonLines } from './build.js';
import { createOptions, fnHash, LABELS, networkName, networkOptions } from './container.js';
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
  /**
   * pruneImages removes an image only once it has been seen unused for this long (default 10 min):
   * another server may be about to run it, or a rollback may want it back. Unused images are
   * removed when their grace ends, without waiting for another sync.
   */
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
/** The port of a docker function whose manifest sets none and whose image EXPOSEs none. */
export const DEFAULT_PORT = 8080;

/**
 * A function's port from its image's `Config.ExposedPorts` keys (`80/tcp`, `53/udp`): the single
 * TCP one, DEFAULT_PORT without any; several are refused with an error naming them.
 */
export function portFromExposed(keys: string[], fn: string): number {
  const ports = [...new Set(keys.flatMap((k) => {
    const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/.exec(k);
    return m && (m[2] ?? 'tcp') === 'tcp' ? [Number(m[1])] : [];
  }))].sort((a, b) => a - b);
  if (ports.length === 0) return DEFAULT_PORT;
  if (ports.length === 1) return ports[0]!;
  throw new ZvError('MANIFEST_INVALID',
    `${fn}: the image EXPOSEs several ports (${ports.join(', ')}) and the function sets no port: set port to the one it serves HTTP on`);
}

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
  /** When a prune first saw an image (by tag, or by id when untagged) unused. */
  private readonly unusedSince = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepAt = Infinity;
  /** Networks a load under way is about to use (by name), and networks being made. */
  private readonly netPins = new Map<string, number>();
  private readonly netMaking = new Map<string, Promise<void>>();
  /** Images committed by failed builds, removed once no build of this runtime runs (tries so far). */
  private leftovers: { id: string; tries: number }[] = [];

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
    const d = source.docker;
    const tag = imageTag(d.build);
    const network = networkName(d.owner.namespace, this.instance);
    this.pin(tag);
    this.pinNetwork(network, 1);
    let fn: DockerFunction | undefined;
    try {
      await this.watch();
      let imageId = await this.imageId(tag);
      if (imageId === null && ((d.contextDir && d.dockerfilePath) || d.materialise)) {
        if (!d.contextFiles) throw new ZvError('INTERNAL', `${source.id}: a build context without the list of its entries (docker.contextFiles)`);
        imageId = await this.build(tag, source.id, d);
      }
      // Without a port in the manifest: the one the image EXPOSEs (read once it is built).
      const src: DockerFunctionSource = { ...source, docker: { ...d, port: d.port ?? (await this.imagePort(tag, source.id)) } };
      const hash = fnHash(tag, src, this.limits, network);
      await this.ensureNetwork(network, d.owner.namespace);
      const got = await this.acquire(src, tag, hash, network, imageId !== null);
      if (!got) {
        throw new ZvError('RUNTIME_UNAVAILABLE',
          `${d.build.dockerfile}: the image ${tag} of ${source.id} is no longer in the Docker engine and there is no build context to rebuild it from; the next sync rebuilds it`);
      }
      let id = got.id;
      fn = new DockerFunction({
        docker: this.docker, source: src, log, logger: this.logger, tag, imageId: imageId ?? got.imageId, containerId: id,
        readyTimeoutMs: this.readyTimeoutMs,
        // Drift repair: the container was removed by hand; the function follows a new one.
        recreate: async () => {
          const made = await this.recreate(src, tag, hash, network);
          this.fns.delete(id);
          this.held.delete(id);
          id = made.id;
          if (fn) this.fns.set(id, fn);
          return made;
        },
        release: () => {
          this.fns.delete(id);
          this.held.delete(id);
          this.unpin(tag);
          // Its image and network may be unused now: look again shortly (the grace still applies).
          this.scheduleSweep(500);
        },
      });
      this.fns.set(id, fn);
      if (got.mode === 'adopted') this.logger.info({ fn: source.id, container: id }, 'adopting a running container');
      await fn.start(got.mode);
    } catch (e) {
      if (fn) await fn.dispose();
      else this.unpin(tag);
      throw e instanceof ZvError ? e : new ZvError('RUNTIME_UNAVAILABLE', `docker: ${source.id}: ${errText(e)}`, undefined, { cause: e });
    } finally {
      // From here on the container (running or not) keeps the network in use.
      this.pinNetwork(network, -1);
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
    clearTimeout(this.sweepTimer);
    this.events?.destroy();
    this.events = undefined;
    for (const fn of this.fns.values()) fn.detach();
  }

  /**
   * After a restore or a sync: containers no live function uses go, then the networks no container
   * is on, and images once they have been unused for the grace (a timer comes back for those).
   */
  async gc(live: LoadedFunction[]): Promise<void> {
    const keepContainers = new Set<string>();
    const keepTags = new Set<string>();
    for (const f of live) {
      const facts = f.describe?.();
      if (facts?.container) keepContainers.add(facts.container);
      if (facts?.image) keepTags.add(facts.image);
    }
    await this.removeOrphans(keepContainers);
    await this.pruneNetworks();
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
   * Removes our images that no container (running or stopped) uses, that are not in `keep` and not
   * used by a load under way or a loaded function, once a prune has seen them unused for the grace:
   * `zerverless-fn:*` tags, and untagged images carrying our labels (a tag built again elsewhere).
   * Ours: labelled `zerverless.managed`, and built by this instance (or by none, before images
   * carried it). Schedules itself for the images whose grace has not ended yet. Returns how many
   * tags or images were removed.
   */
  async pruneImages(keep: Set<string>): Promise<number> {
    const [images, containers] = await Promise.all([this.docker.listImages(), this.docker.listContainers({ all: true })]);
    const used = new Set(containers.flatMap((c) => [c.ImageID, c.Image]));
    const now = Date.now();
    const seen = new Set<string>();
    let next = Infinity;
    let n = 0;
    for (const img of images) {
      if (!this.ours(img.Labels)) continue;
      const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      // An untagged image of ours may be a build of this runtime that is about to be tagged.
      if (!tags.length && this.building.size > 0) continue;
      const keys = tags.length ? tags.filter((t) => t.startsWith(`${IMAGE_REPO}:`)) : [img.Id];
      for (const key of keys) {
        seen.add(key);
        if (used.has(img.Id) || used.has(key) || keep.has(key) || this.pinned.has(key)) {
          this.unusedSince.delete(key);
          continue;
        }
        const since = this.unusedSince.get(key) ?? now;
        this.unusedSince.set(key, since);
        if (since + this.imageGraceMs > now) {
          next = Math.min(next, since + this.imageGraceMs);
          continue;
        }
        try {
          await this.docker.getImage(key).remove();
          this.unusedSince.delete(key);
          n++;
        } catch (e) {
          if (statusOf(e) !== 404 && statusOf(e) !== 409) this.logger.warn({ err: e, image: key }, 'removing an unused image failed');
        }
      }
    }
    for (const key of this.unusedSince.keys()) if (!seen.has(key)) this.unusedSince.delete(key);
    if (next < Infinity) this.scheduleSweep(next - now);
    if (n) this.logger.info({ removed: n }, 'removed unused function images');
    return n;
  }

  /**
   * Removes our namespace networks (of this instance) that no container is on and no load under
   * way is about to use. Returns how many were removed.
   */
  async pruneNetworks(): Promise<number> {
    const [nets, containers] = await Promise.all([
      this.docker.listNetworks({ filters: { label: this.scope() } }),
      this.docker.listContainers({ all: true }),
    ]);
    const inUse = new Set<string>();
    for (const c of containers) {
      if (c.HostConfig?.NetworkMode) inUse.add(c.HostConfig.NetworkMode);
      for (const [name, ep] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
        inUse.add(name);
        if (ep.NetworkID) inUse.add(ep.NetworkID);
      }
    }
    let n = 0;
    for (const net of nets) {
      if (net.Labels?.[LABELS.managed] !== 'true' || net.Labels[LABELS.instance] !== this.instance) continue;
      if (inUse.has(net.Name) || inUse.has(net.Id) || this.netPins.has(net.Name) || this.netMaking.has(net.Name)) continue;
      try {
        await this.docker.getNetwork(net.Id).remove();
        n++;
      } catch (e) {
        // 403/409: a container joined it meanwhile (or one not ours was connected by hand).
        const st = statusOf(e);
        if (st !== 404 && st !== 403 && st !== 409) this.logger.warn({ err: e, network: net.Name }, 'removing an unused network failed');
      }
    }
    if (n) this.logger.info({ removed: n }, 'removed unused namespace networks');
    return n;
  }

  private address(): string {
    const m = this.docker.modem as unknown as { socketPath?: string; host?: string; port?: number | string };
    if (m.socketPath) return String(m.socketPath);
    return m.host ? `${m.host}${m.port ? `:${m.port}` : ''}` : '/var/run/docker.sock';
  }

  /** An image (or network) made by this runtime's instance, or by no instance at all. */
  private ours(labels: Record<string, string> | null | undefined): boolean {
    if (labels?.[LABELS.managed] !== 'true') return false;
    const inst = labels[LABELS.instance];
    return inst === undefined || inst === this.instance;
  }

  /** Runs pruneImages (nothing kept but what loads and loaded functions use) and pruneNetworks in `ms`. */
  private scheduleSweep(ms: number): void {
    if (this.closed) return;
    const at = Date.now() + Math.max(0, ms);
    if (this.sweepTimer && this.sweepAt <= at) return;
    clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.sweepAt = Infinity;
      if (this.closed) return;
      void (async () => {
        try {
          if (this.building.size === 0 && this.leftovers.length) await this.removeLeftovers();
          await this.pruneNetworks();
          await this.pruneImages(new Set());
        } catch (e) {
          this.logger.warn({ err: e }, 'removing unused images and networks failed; trying again later');
          this.scheduleSweep(60_000);
        }
      })();
    }, Math.max(0, ms) + 50);
    this.sweepTimer.unref();
  }

  private pinNetwork(name: string, delta: 1 | -1): void {
    const n = (this.netPins.get(name) ?? 0) + delta;
    if (n > 0) this.netPins.set(name, n);
    else this.netPins.delete(name);
  }

  /** Makes the namespace's network unless it exists (concurrent loads share the making). */
  private ensureNetwork(name: string, namespace: string): Promise<void> {
    let p = this.netMaking.get(name);
    if (!p) {
      p = this.makeNetwork(name, namespace).finally(() => this.netMaking.delete(name));
      this.netMaking.set(name, p);
    }
    return p;
  }

  private async makeNetwork(name: string, namespace: string): Promise<void> {
    try {
      const info = (await this.docker.getNetwork(name).inspect()) as { Name?: string; Labels?: Record<string, string> | null };
      if (info.Name === name) {
        if (info.Labels?.[LABELS.managed] === 'true' && info.Labels[LABELS.instance] === this.instance) return;
        throw new ZvError('RUNTIME_UNAVAILABLE', `docker: a network named ${name} exists but zerverless did not make it; remove or rename it`);
      }
    } catch (e) {
      if (e instanceof ZvError) throw e;
      if (statusOf(e) !== 404) throw new ZvError('RUNTIME_UNAVAILABLE', `docker: cannot inspect the network ${name}: ${errText(e)}`);
    }
    try {
      await this.docker.createNetwork(networkOptions(name, namespace, this.instance));
      this.logger.info({ network: name, namespace }, 'created the network of a namespace');
    } catch (e) {
      if (statusOf(e) === 409) return; // made meanwhile
      const why = errText(e);
      const hint = /address pool|non-overlapping/i.test(why)
        ? ` (every namespace with docker functions has its own bridge network; give dockerd more with "default-address-pools" in daemon.json)`
        : '';
      throw new ZvError('RUNTIME_UNAVAILABLE', `docker: cannot create the network ${name} of namespace '${namespace}': ${why}${hint}`);
    }
  }

  /**
   * Removes the images failed builds committed (newest first; untagged parents go with them). One
   * still in use (an aborted build's step winding down) is tried again by the sweep, a few times.
   */
  private async removeLeftovers(): Promise<void> {
    const items = this.leftovers.splice(0).reverse();
    const again: { id: string; tries: number }[] = [];
    for (const item of items) {
      try {
        const info = await this.docker.getImage(item.id).inspect();
        if ((info.RepoTags ?? []).some((t) => t !== '<none>:<none>')) continue;
        await this.docker.getImage(item.id).remove();
      } catch (e) {
        // 404: gone with its child; 409: another image is built on it or a container uses it.
        if (statusOf(e) === 409 && item.tries < 5) again.push({ id: item.id, tries: item.tries + 1 });
        else if (statusOf(e) !== 404 && statusOf(e) !== 409) this.logger.warn({ err: e, image: item.id }, 'removing a layer of a failed build failed');
      }
    }
    if (again.length) {
      this.leftovers.unshift(...again.reverse());
      this.scheduleSweep(30_000);
    }
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

  /**
   * The port of a function whose manifest sets none: the image's single EXPOSEd TCP port, else
   * DEFAULT_PORT. Several EXPOSEd ports are ambiguous: the manifest must choose (`port`).
   */
  private async imagePort(tag: string, fn: string): Promise<number> {
    let exposed: Record<string, unknown> | undefined;
    try {
      const info = await this.docker.getImage(tag).inspect();
      exposed = (info.Config?.ExposedPorts ?? undefined) as Record<string, unknown> | undefined;
    } catch (e) {
      // No image to read (a restore whose image is gone): the load fails further on, saying so.
      if (statusOf(e) === 404) return DEFAULT_PORT;
      throw new ZvError('RUNTIME_UNAVAILABLE', `docker: cannot inspect the image ${tag}: ${errText(e)}`);
    }
    return portFromExposed(exposed ? Object.keys(exposed) : [], fn);
  }

  /** Builds `tag` once: concurrent loads of the same content share the build and its log. */
  private build(tag: string, fnId: string, d: DockerSource): Promise<string> {
    let b = this.building.get(tag);
    if (!b) {
      this.builds++;
      const nb: Build = { lines: [], listeners: new Set(), promise: Promise.resolve('') };
      const made: string[] = [];
      nb.promise = (async () => {
        // A context read from a commit's snapshot is written out only now, for this build.
        let written: Awaited<ReturnType<NonNullable<DockerSource['materialise']>>> | null = null;
        try {
          if (!d.contextDir && d.materialise) written = await d.materialise();
          return await buildImage(this.docker, {
            tag, build: d.build, contextDir: written?.contextDir ?? d.contextDir ?? '', dockerfilePath: written?.dockerfilePath ?? d.dockerfilePath ?? '',
            contextFiles: d.contextFiles ?? [],
            timeoutMs: this.buildTimeoutMs,
            instance: this.instance,
            onLine: (line) => {
              nb.lines.push(line);
              if (nb.lines.length > 200) nb.lines.shift();
              for (const l of nb.listeners) l(line);
            },
            onLayer: (id) => made.push(id),
          });
        } catch (e) {
          // What the failed build committed is of no use (nothing is tagged with it) but as a cache.
          this.leftovers.push(...made.map((id) => ({ id, tries: 0 })));
          throw e;
        } finally {
          await written?.dispose();
          this.building.delete(tag);
          // Not while another build runs: it may be building on one of those layers (a cache hit).
          if (this.building.size === 0 && this.leftovers.length) await this.removeLeftovers();
        }
      })();
      this.building.set(tag, nb);
      b = nb;
      this.logger.info({ fn: fnId, image: tag }, 'building a function image');
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
  private async acquire(src: DockerFunctionSource, tag: string, hash: string, network: string, canCreate: boolean): Promise<{ id: string; mode: StartMode; imageId: string } | null> {
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
      c = await this.docker.createContainer(createOptions(src, tag, hash, this.limits, network, this.instance));
    } catch (e) {
      // 400: the engine refuses what the manifest asks for (e.g. an unknown capability).
      if (statusOf(e) === 400) throw new ZvError('FUNCTION_COMPILE_ERROR', `${src.docker.build.dockerfile}: the Docker engine refused the container: ${errText(e)}`);
      throw e;
    }
    this.held.add(c.id);
    return { id: c.id, mode: 'created', imageId: '' };
  }

  /**
   * Drift repair of a loaded function whose container was removed by hand: a container like the
   * first (same image, limits, network and hash), made anew or adopted. The image must still be
   * there (a loaded function pins it against pruning; one removed by hand needs a sync to rebuild).
   */
  private async recreate(src: DockerFunctionSource, tag: string, hash: string, network: string): Promise<{ id: string; mode: StartMode }> {
    if (this.closed) throw new ZvError('RUNTIME_UNAVAILABLE', 'docker: the runtime is closed');
    this.pinNetwork(network, 1);
    try {
      if ((await this.imageId(tag)) === null) {
        throw new ZvError('RUNTIME_UNAVAILABLE', `${src.docker.build.dockerfile}: the image ${tag} of ${src.id} is no longer in the Docker engine; the next sync rebuilds it`);
      }
      await this.watch();
      await this.ensureNetwork(network, src.docker.owner.namespace);
      const got = await this.acquire(src, tag, hash, network, true);
      if (!got) throw new ZvError('INTERNAL', `docker: ${src.id}: no container was made`);
      this.logger.info({ fn: src.id, container: got.id, mode: got.mode }, 'replacing a removed function container');
      return { id: got.id, mode: got.mode };
    } finally {
      this.pinNetwork(network, -1);
    }
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
