// One supervised process of a service: a given version folder, env and PORT. Starts it in its own
// process group, keeps its output in the service log, restarts it after a crash with exponential
// backoff (a crash loop is reported as such and restarted ever more slowly), runs its health check
// and publishes `zerverless:health:check`. Stopping signals the whole group (SIGTERM, grace, SIGKILL).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { HealthSpec, ServiceHealth, ServiceSpec, ServiceStatusValue } from '../../core/services/types.js';
import { CHANNELS, publish } from '../../telemetry/events.js';
import { serviceError } from './errors.js';
import { serviceEnv, signalGroup, stopGroup } from './exec.js';
import { checkHealth } from './health.js';
import { startCommand } from './install.js';
import type { LogBuffer } from './log.js';

export interface Backoff {
  /** First restart delay (default 500 ms), doubled per consecutive crash… */
  initialMs: number;
  /** …up to this (default 30 s). */
  maxMs: number;
  /** A run that stays up (and healthy) this long resets the backoff and the crash-loop status (default 30 s). */
  resetAfterMs: number;
  /** `crash-loop` once `loopCrashes` exits fall within `loopWindowMs` (defaults 3 and 60 s). */
  loopCrashes: number;
  loopWindowMs: number;
}

export interface HealthTiming {
  /** Between checks until a process is first healthy (default 250 ms, at most the spec's interval). */
  startupPollMs: number;
  /** Without a health spec, a process counts as healthy once it has run this long (default 1 s). */
  livenessDelayMs: number;
}

export interface InstanceOptions {
  spec: ServiceSpec;
  namespace: string | undefined;
  /** The application of the service, added to the health check events. */
  application?: string | undefined;
  dir: string;
  /** PORT of the process (assigned or pinned). */
  port: number;
  log: LogBuffer;
  logger: Logger;
  gracePeriodMs: number;
  backoff: Backoff;
  timing: HealthTiming;
  /** Called when the pid changes (spawn, exit, stop). */
  onPid?: () => void;
}

export class Instance {
  status: ServiceStatusValue = 'starting';
  health: ServiceHealth = 'unknown';
  restarts = 0;
  message: string | undefined;
  spec: ServiceSpec;
  readonly dir: string;
  readonly port: number;
  private child: ChildProcess | undefined;
  private pgid: number | undefined;
  private run = 0;
  private startedAt = 0;
  private healthySince = 0;
  private consecutive = 0;
  private exits: number[] = [];
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();
  private command: { cmd: string; args: string[]; what: string } | undefined;
  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly o: InstanceOptions) {
    this.spec = o.spec;
    this.dir = o.dir;
    this.port = o.port;
    // HOME is the service's own folder: the server user's ~/.ssh, ~/.npmrc and the like are not its.
    this.env = { ...serviceEnv(o.spec.env, o.port), HOME: o.dir };
  }

  get pid(): number | undefined {
    return this.pgid;
  }

  get version(): string {
    return this.spec.version;
  }

  /** Healthy and running: may take traffic. */
  get ready(): boolean {
    return this.health === 'healthy' && this.child !== undefined && !this.stopping;
  }

  /** Resolves the start command and spawns the first process. */
  async start(): Promise<void> {
    this.command = await startCommand(this.dir);
    this.spawnOnce();
  }

  private spawnOnce(): void {
    if (this.stopping || !this.command) return;
    const { cmd, args, what } = this.command;
    const run = ++this.run;
    this.startedAt = Date.now();
    this.healthySince = 0;
    if (this.status !== 'crash-loop') this.status = 'starting';
    this.health = 'unknown';
    const child = spawn(cmd, args, { cwd: this.dir, env: this.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.pgid = child.pid;
    const out = this.o.log.writer('stdout');
    const err = this.o.log.writer('stderr');
    child.stdout?.on('data', (b: Buffer) => out.write(b));
    child.stderr?.on('data', (b: Buffer) => err.write(b));
    child.stdout?.on('end', () => out.end());
    child.stderr?.on('end', () => err.end());
    this.o.log.add('system', `${this.spec.version}: ${what} started (pid ${child.pid ?? '?'}, PORT ${this.port})`);
    let exited = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
      if (exited) return;
      exited = true;
      this.onExit(run, child, code, signal, error);
    };
    child.once('error', (e) => onGone(null, null, e));
    child.once('exit', (code, signal) => onGone(code, signal));
    this.o.onPid?.();
    const h = this.healthSpec();
    this.scheduleHealth(h ? Math.min(this.o.timing.startupPollMs, h.interval) : this.o.timing.livenessDelayMs);
    this.notify();
  }

  private onExit(run: number, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    if (this.child === child) {
      this.child = undefined;
      this.pgid = undefined;
    }
    // While stopping, stopGroup gives the rest of the group its grace period (and stop() records pids).
    if (this.stopping || run !== this.run) return;
    this.o.onPid?.();
    // A crash: whatever the leader left in its group (npm's node child) goes with it.
    signalGroup(child.pid, 'SIGKILL');
    clearTimeout(this.healthTimer);
    const now = Date.now();
    const ranFor = now - this.startedAt;
    const why = error ? `could not start: ${error.message}` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
    this.exits = [...this.exits.filter((t) => now - t <= this.o.backoff.loopWindowMs), now];
    this.consecutive++;
    const b = this.o.backoff;
    const delay = Math.min(b.initialMs * 2 ** (this.consecutive - 1), b.maxMs);
    this.health = 'unhealthy';
    if (this.exits.length >= b.loopCrashes) {
      this.status = 'crash-loop';
      this.message = `crash loop: ${this.exits.length} exits within ${Math.round(b.loopWindowMs / 1000)} s; last ${why} after ${ranFor} ms; next restart in ${delay} ms`;
    } else {
      this.status = 'crashed';
      this.message = `process ${why} after ${ranFor} ms; restarting in ${delay} ms`;
    }
    this.o.log.add('system', `${this.spec.version}: ${this.message}`);
    this.o.logger.warn({ app: this.spec.name, version: this.spec.version, code, signal, delay, status: this.status }, 'service process exited');
    this.restartTimer = setTimeout(() => {
      this.restarts++;
      this.spawnOnce();
    }, delay);
    this.notify();
  }

  private healthSpec(): HealthSpec | null {
    return this.spec.health;
  }

  private scheduleHealth(delay: number): void {
    clearTimeout(this.healthTimer);
    this.healthTimer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    const run = this.run;
    if (this.stopping || !this.child) return;
    const h = this.healthSpec();
    let ok: boolean;
    let detail: string;
    if (h) {
      const started = performance.now();
      const r = await checkHealth(h, { port: this.port, env: this.env, cwd: this.dir });
      ok = r.ok;
      detail = r.detail;
      publish(CHANNELS.healthCheck, {
        app: this.spec.name, namespace: this.o.namespace, ...(this.o.application ? { application: this.o.application } : {}), version: this.spec.version, type: h.type,
        result: ok ? 'healthy' : 'unhealthy', duration: performance.now() - started, ...(ok ? {} : { error: detail }),
      });
    } else {
      ok = true;
      detail = 'running (no health check)';
    }
    if (this.stopping || run !== this.run || !this.child) return;
    const now = Date.now();
    const was = this.health;
    this.health = ok ? 'healthy' : 'unhealthy';
    if (ok && !this.healthySince) this.healthySince = now;
    if (!ok) this.healthySince = 0;
    if (this.status === 'starting' || this.status === 'crashed') this.status = 'running';
    if (ok && this.healthySince && now - this.healthySince >= this.o.backoff.resetAfterMs) {
      this.consecutive = 0;
      this.exits = [];
      if (this.status === 'crash-loop') this.status = 'running';
    }
    if (this.status !== 'crash-loop') this.message = ok ? undefined : `health check failed: ${detail}`;
    if (was !== this.health) this.o.log.add('system', `${this.spec.version}: ${this.health} (${detail})`);
    const interval = h ? (h.interval > 0 ? h.interval : 30_000) : 1000;
    // Poll fast until healthy; then (and while a crash loop still needs resetting) every interval.
    let next = ok ? interval : this.everHealthy() ? interval : Math.min(this.o.timing.startupPollMs, interval);
    if (ok && (this.consecutive > 0 || this.exits.length > 0)) {
      next = Math.min(next, Math.max(0, this.healthySince + this.o.backoff.resetAfterMs - now) + 10);
    }
    this.scheduleHealth(next);
    this.notify();
  }

  private everHealthy(): boolean {
    return this.healthySince > 0;
  }

  /** Applies a new health spec (the same process keeps running). */
  setHealth(spec: ServiceSpec): void {
    this.spec = spec;
    if (this.child && !this.stopping) this.scheduleHealth(0);
  }

  /**
   * Resolves once the process is healthy; rejects (with the last health detail) after `timeoutMs`,
   * as soon as the process is in a crash loop, or when it is stopped.
   */
  waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.ready) done();
        else if (this.stopping) done(serviceError('unhealthy', `${this.spec.name} ${this.spec.version} was stopped before it became healthy`));
        else if (this.status === 'crash-loop') done(serviceError('unhealthy', `${this.spec.name} ${this.spec.version} is in a crash loop: ${this.message ?? ''}`));
      };
      const timer = setTimeout(() => {
        done(serviceError('unhealthy', `${this.spec.name} ${this.spec.version} did not become healthy within ${timeoutMs} ms` +
          `${this.message ? `: ${this.message}` : ''}`, { timeoutMs }));
      }, timeoutMs);
      const done = (e?: Error): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (e) reject(e);
        else resolve();
      };
      this.listeners.add(check);
      check();
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Stops the process group gracefully; no restart afterwards. */
  async stop(graceMs = this.o.gracePeriodMs): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.healthTimer);
    this.notify();
    const pgid = this.pgid;
    if (pgid !== undefined) {
      this.o.log.add('system', `${this.spec.version}: stopping pid ${pgid} (SIGTERM, then SIGKILL after ${graceMs} ms)`);
      const gone = await stopGroup(pgid, graceMs);
      if (!gone) this.o.logger.warn({ app: this.spec.name, pgid }, 'service process group did not go away after SIGKILL');
    }
    this.child = undefined;
    this.pgid = undefined;
    this.status = 'stopped';
    this.health = 'unknown';
    this.o.onPid?.();
  }
}
