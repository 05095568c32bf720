// A loaded docker function: one container, its host port on loopback and whether it answers.
// The first start waits for readiness and fails loudly (with the container's last log lines); after
// that, Docker restarts crashes itself and this object follows along through engine events and
// re-inspects: `upstream()` is null while the container is down or not answering yet.
// Drift (PRODUCT.md §11): `check` finds a container stopped, paused or removed by hand (a crash
// that Docker restarts itself is not drift); `repair` starts it again, or has the runtime make a new
// one (same image, limits and network) and follows that one from then on.
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import { ZvError } from '../../errors/registry.js';
import type { DockerSource, DriftFinding, FunctionLogger, FunctionSource, LoadedFunction, Upstream } from '../types.js';
import { hostPort, lastLogLines, LogFollower } from './container.js';
import { forward, probeHttp, UpstreamTimeout } from './http.js';

export type DockerFunctionSource = FunctionSource & { docker: DockerSource & { port: number } };

export interface DockerFunctionInit {
  docker: Dockerode;
  source: DockerFunctionSource;
  log: FunctionLogger;
  logger: Logger;
  tag: string;
  imageId: string;
  containerId: string;
  readyTimeoutMs: number;
  /** Called once the container is gone (or left to the next start): the runtime forgets it. */
  release: () => void;
  /**
   * Drift repair: a container for this function in place of one removed by hand (the runtime
   * creates it, or adopts an idle one of the same hash, and follows its events from then on).
   */
  recreate?: () => Promise<{ id: string; mode: StartMode }>;
}

/** How the first start finds the container. */
export type StartMode = 'created' | 'adopted';

const STOP_GRACE_S = 5;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const statusOf = (e: unknown): number | undefined => (e as { statusCode?: number } | null)?.statusCode;

export const DRIFT = { removed: 'container removed', stopped: 'container stopped', paused: 'container paused' } as const;

export class DockerFunction implements LoadedFunction {
  /** The container serving the function (a drift repair may replace it). */
  containerId: string;
  readonly tag: string;
  readonly imageId: string;
  private container: Dockerode.Container;
  /** The drift repair under way, if any (dispose waits for it). */
  private repairing: Promise<void> | undefined;
  private port: number | null = null;
  private running = false;
  private ready = false;
  private live = false;
  private disposed = false;
  private detached = false;
  private deaths = 0;
  private lastOomAt = 0;
  /** When the engine last reported the container down (ns): the next run's logs start after it. */
  private downAtNano: number | undefined;
  private probeGen = 0;
  /** The generation of the readiness watch under way, if any. */
  private probing: number | undefined;
  private follower: LogFollower | undefined;

  constructor(private readonly init: DockerFunctionInit) {
    this.containerId = init.containerId;
    this.tag = init.tag;
    this.imageId = init.imageId;
    this.container = init.docker.getContainer(init.containerId);
  }

  upstream(): Upstream | null {
    if (this.disposed || !this.running || !this.ready || this.port === null) return null;
    return { host: '127.0.0.1', port: this.port };
  }

  describe(): Record<string, string> {
    return { image: this.tag, imageId: this.imageId, container: this.containerId };
  }

  async invoke(req: FunctionRequest): Promise<FunctionResponse> {
    const id = this.init.source.id;
    if (this.disposed) throw new ZvError('FUNCTION_UNAVAILABLE', `${id} has been unloaded`);
    const up = this.upstream();
    if (!up) throw new ZvError('FUNCTION_UNAVAILABLE', `${id}: the container is not running or not answering yet`);
    const t0 = Date.now();
    const timeoutMs = this.init.source.timeoutMs;
    try {
      return await forward(up.port, req, `/${this.init.source.docker.owner.namespace}`, timeoutMs);
    } catch (e) {
      if (e instanceof UpstreamTimeout) throw new ZvError('FUNCTION_TIMEOUT', `${id} did not answer within ${timeoutMs} ms`);
      void this.refresh();
      // An OOM kill resets the connection; the engine's event may arrive a moment later.
      if (this.lastOomAt < t0) await sleep(250);
      if (this.lastOomAt >= t0) {
        throw new ZvError('FUNCTION_MEMORY_LIMIT', `${id} went over its memory limit of ${this.init.source.memoryMb} MiB`);
      }
      const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
      throw new ZvError('FUNCTION_UNAVAILABLE', `${id}: the container did not take the request (${why})`);
    }
  }

  /** Stops (SIGTERM, then SIGKILL after a grace) and removes the container. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.ready = false;
    this.probeGen++;
    // A repair under way stops at its next step (start() sees `disposed`); then its container goes.
    await this.repairing?.catch(() => undefined);
    this.follower?.stop();
    try {
      await this.container.stop({ t: STOP_GRACE_S });
    } catch (e) {
      if (statusOf(e) !== 304 && statusOf(e) !== 404) this.init.logger.warn({ err: e, container: this.containerId }, 'stopping a container failed');
    }
    try {
      await this.container.remove({ force: true });
    } catch (e) {
      if (statusOf(e) !== 404 && statusOf(e) !== 409) this.init.logger.warn({ err: e, container: this.containerId }, 'removing a container failed');
    } finally {
      this.init.release();
    }
  }

  /**
   * Drift: whether the container was removed, stopped or paused behind the platform's back. A
   * container Docker is restarting (after a crash) is not drift; nor is anything while a repair
   * runs or before the first start succeeded.
   */
  async check(): Promise<DriftFinding | null> {
    if (this.disposed || this.detached || !this.live || this.repairing) return null;
    return this.inspectDrift();
  }

  /** Puts back what `check` finds; resolves once the container answers again (or at once: no drift). */
  repair(): Promise<void> {
    this.repairing ??= this.doRepair().finally(() => {
      this.repairing = undefined;
    });
    return this.repairing;
  }

  private async inspectDrift(): Promise<DriftFinding | null> {
    const short = this.containerId.slice(0, 12);
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.container.inspect();
    } catch (e) {
      if (statusOf(e) === 404) return { problem: DRIFT.removed, detail: `container ${short} no longer exists` };
      throw new ZvError('RUNTIME_UNAVAILABLE', `${this.init.source.id}: cannot inspect container ${short}: ${errText(e)}`);
    }
    if (info.State.Paused) return { problem: DRIFT.paused, detail: `container ${short} is paused` };
    if (!info.State.Running && !info.State.Restarting) {
      return { problem: DRIFT.stopped, detail: `container ${short} is ${info.State.Status} (exit code ${info.State.ExitCode})` };
    }
    return null;
  }

  private async doRepair(): Promise<void> {
    if (this.disposed || this.detached || !this.live) return;
    const found = await this.inspectDrift();
    if (!found || this.disposed || this.detached) return;
    this.init.logger.warn({ fn: this.init.source.id, container: this.containerId, problem: found.problem }, 'repairing a drifted function container');
    // While the repair runs, start() follows the container (engine events only mark it down).
    this.live = false;
    this.running = false;
    this.ready = false;
    this.probeGen++;
    try {
      if (found.problem === DRIFT.removed) {
        if (!this.init.recreate) throw new ZvError('RUNTIME_UNAVAILABLE', `${this.init.source.id}: its container was removed and cannot be made again`);
        const got = await this.init.recreate();
        this.containerId = got.id;
        this.container = this.init.docker.getContainer(got.id);
        this.downAtNano = undefined;
        await this.start(got.mode);
      } else {
        if (found.problem === DRIFT.paused) {
          try {
            await this.container.unpause();
          } catch (e) {
            if (statusOf(e) !== 409) throw new ZvError('RUNTIME_UNAVAILABLE', `${this.init.source.id}: the engine could not unpause the container: ${errText(e)}`);
          }
        }
        await this.start('adopted');
      }
    } finally {
      if (!this.disposed && !this.detached && !this.live) {
        // Failed: follow whatever the container does from here on (a later pass tries again).
        this.live = true;
        void this.refresh();
      }
    }
  }

  /** Stops following the container without touching it (the runtime is closing). */
  detach(): void {
    this.detached = true;
    this.probeGen++;
    this.follower?.stop();
  }

  /** A container event for this container, from the runtime's event stream. */
  onEvent(action: string, timeNano?: number): void {
    if (this.disposed || this.detached) return;
    if (action === 'oom') this.lastOomAt = Date.now();
    else if (action === 'die' || action === 'stop' || action === 'destroy' || action === 'pause') {
      if (action === 'die' || action === 'destroy') this.deaths++;
      if (action === 'die' && timeNano) this.downAtNano = timeNano;
      this.running = false;
      this.ready = false;
      this.probeGen++;
    } else if (action === 'start' || action === 'restart' || action === 'unpause') {
      if (!this.live) return;
      this.ready = false;
      if (action === 'start') {
        // The new run may log before its start event: follow from the end of the previous run.
        const from = this.downAtNano ?? (timeNano ? timeNano - 1e9 : undefined);
        this.follow(from ? { since: nanoToSince(from) } : { tail: 0 });
      }
      void this.refresh();
    }
  }

  /** Re-reads the container's state; starts a readiness watch when it runs but is not known to answer. */
  async refresh(): Promise<void> {
    if (!this.live || this.disposed || this.detached) return;
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.container.inspect();
    } catch (e) {
      if (statusOf(e) === 404) {
        this.running = false;
        this.ready = false;
        this.init.logger.warn({ container: this.containerId, fn: this.init.source.id }, 'the container of a loaded function is gone');
      }
      return;
    }
    if (this.disposed || this.detached) return;
    const port = hostPort(info, this.init.source.docker.port);
    const running = info.State.Running && !info.State.Paused && !info.State.Restarting;
    if (!running || port !== this.port) this.ready = false;
    this.running = running;
    this.port = port;
    if (running && !this.ready && this.probing !== this.probeGen) void this.watchReady();
  }

  /**
   * First start: starts the container if needed and waits until it answers HTTP on its port.
   * Rejects with FUNCTION_COMPILE_ERROR (with the container's last log lines) when it exits or
   * does not answer within the ready timeout; the caller then disposes.
   */
  async start(mode: StartMode): Promise<void> {
    const d = this.init.source.docker;
    let info = await this.container.inspect();
    const wasRunning = info.State.Running;
    const since = String(Math.floor(Date.now() / 1000));
    if (!wasRunning) {
      try {
        await this.container.start();
      } catch (e) {
        if (statusOf(e) !== 304) throw new ZvError('RUNTIME_UNAVAILABLE', `${d.build.dockerfile}: the engine could not start the container: ${errText(e)}`);
      }
      info = await this.container.inspect();
    }
    const restarts = info.RestartCount;
    const deaths = this.deaths;
    this.running = info.State.Running;
    this.port = hostPort(info, d.port);
    this.follow(mode === 'created' ? 'all' : wasRunning ? { tail: 0 } : { since });
    const deadline = Date.now() + this.init.readyTimeoutMs;
    for (let i = 1; ; i++) {
      if (this.disposed) throw new ZvError('FUNCTION_UNAVAILABLE', `${this.init.source.id} has been unloaded`);
      if (this.deaths > deaths) throw await this.exited();
      if (i % 5 === 0 || this.port === null) {
        info = await this.container.inspect();
        if (!info.State.Running || info.State.Restarting || info.RestartCount > restarts) throw await this.exited(info);
        this.port = hostPort(info, d.port);
      }
      if (this.port !== null && (await probeHttp(this.port, 1000))) break;
      if (Date.now() > deadline) {
        throw this.failure(`the container did not answer HTTP on port ${d.port} within ${this.init.readyTimeoutMs} ms`, await lastLogLines(this.container));
      }
      await sleep(100);
    }
    this.running = true;
    this.ready = true;
    this.live = true;
  }

  private async exited(info?: Dockerode.ContainerInspectInfo): Promise<ZvError> {
    const i = info ?? (await this.container.inspect().catch(() => undefined));
    const code = i ? ` with code ${i.State.ExitCode}${i.State.OOMKilled ? ' (out of memory)' : ''}` : '';
    return this.failure(`the container exited${code} before it answered on port ${this.init.source.docker.port}`, await lastLogLines(this.container));
  }

  private failure(why: string, lines: string[] = []): ZvError {
    const d = this.init.source.docker;
    const tail = lines.length ? `\n${lines.join('\n')}` : '';
    return new ZvError('FUNCTION_COMPILE_ERROR', `${d.build.dockerfile}: ${why}${tail}`, { containerLog: lines });
  }

  /** Follows the logs from `from`, once the previous follower has delivered the end of its run. */
  private follow(from: { since: string } | { tail: number } | 'all'): void {
    const prev = this.follower;
    const f = new LogFollower(this.container, (stream, line) => this.init.log(stream, line));
    this.follower = f;
    void (async () => {
      if (prev) {
        await Promise.race([prev.done, sleep(1000)]);
        prev.stop();
      }
      if (this.follower === f && !this.disposed && !this.detached) await f.start(from);
    })();
  }

  private async watchReady(): Promise<void> {
    const gen = ++this.probeGen;
    this.probing = gen;
    const began = Date.now();
    try {
      while (gen === this.probeGen && this.running && !this.ready && !this.disposed && !this.detached) {
        if (this.port !== null && (await probeHttp(this.port, 1000))) {
          if (gen === this.probeGen && this.running) this.ready = true;
          return;
        }
        await sleep(Date.now() - began < this.init.readyTimeoutMs ? 100 : 1000);
      }
    } finally {
      if (this.probing === gen) this.probing = undefined;
    }
  }
}

function nanoToSince(timeNano: number): string {
  const s = Math.floor(timeNano / 1e9);
  const ns = Math.max(0, Math.round(timeNano - s * 1e9));
  return `${s}.${String(ns).padStart(9, '0')}`;
}

function errText(e: unknown): string {
  const j = (e as { json?: { message?: string } } | null)?.json;
  if (j && typeof j.message === 'string') return j.message;
  return e instanceof Error ? e.message : String(e);
}
