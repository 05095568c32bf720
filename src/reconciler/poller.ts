// The poll: one timer per (repository, branch), so applications that share a branch share one
// `ls-remote` check. Each tick asks the remote for the head only and hands it to every application
// on that branch; the reconciler decides which of them need a sync.
import type { AppRecord, Store } from '../store/types.js';
import type { Source } from '../sources/types.js';
import type { Logger } from '../telemetry/log.js';
import { toZvError, type ZvError } from '../errors/registry.js';

export interface PollerDeps {
  store: Store;
  source: Source;
  intervalMs: number;
  log: Logger;
  /** Called with each application of the branch and the branch head. */
  onHead: (app: AppRecord, head: string) => void;
  /** Called with each application of the branch when its head cannot be read. */
  onHeadError?: (app: AppRecord, err: ZvError) => void;
}

const keyOf = (repoURL: string, branch: string): string => `${repoURL}\n${branch}`;

export class Poller {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private running = false;
  private readonly inflight = new Set<Promise<boolean>>();

  constructor(private readonly deps: PollerDeps) {}

  private jitter(ms: number): number {
    return Math.round(ms * (0.9 + Math.random() * 0.2));
  }

  async start(): Promise<void> {
    this.running = true;
    const { apps } = await this.deps.store.listApps({ limit: Number.MAX_SAFE_INTEGER });
    for (const app of apps) this.watch(app.source.repoURL, app.source.branch, app.commit ? undefined : 0);
  }

  /** How many (repository, branch) pairs are being polled. */
  get branches(): number {
    return this.timers.size;
  }

  /** Stops the timers and waits for the checks under way (their answers are then dropped). */
  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.all(this.inflight);
  }

  /** Makes sure the branch is polled; `delayMs` overrides the first delay (e.g. 0 = now). */
  watch(repoURL: string, branch: string, delayMs?: number): void {
    const key = keyOf(repoURL, branch);
    if (!this.running || (this.timers.has(key) && delayMs === undefined)) return;
    this.arm(key, repoURL, branch, delayMs ?? this.jitter(this.deps.intervalMs));
  }

  private arm(key: string, repoURL: string, branch: string, delayMs: number): void {
    clearTimeout(this.timers.get(key));
    const t = setTimeout(() => {
      const tick = this.tick(repoURL, branch);
      this.inflight.add(tick);
      void tick.then((more) => {
        this.inflight.delete(tick);
        if (!this.running) return;
        if (more) this.arm(key, repoURL, branch, this.jitter(this.deps.intervalMs));
        else this.timers.delete(key);
      });
    }, delayMs);
    t.unref();
    this.timers.set(key, t);
  }

  /** One check of a branch; false when no application uses it any more. */
  private async tick(repoURL: string, branch: string): Promise<boolean> {
    try {
      const { apps } = await this.deps.store.listApps({ limit: Number.MAX_SAFE_INTEGER });
      const mine = apps.filter((a) => a.source.repoURL === repoURL && a.source.branch === branch);
      if (mine.length === 0) return false;
      // One check per credential in use: applications whose namespaces fetch with different
      // credentials (or none) never share an answer.
      const groups = new Map<string, AppRecord[]>();
      for (const app of mine) {
        const key = (await this.deps.source.accessKey?.({ repoURL, branch, namespace: app.namespace })) ?? '';
        groups.set(key, [...(groups.get(key) ?? []), app]);
      }
      for (const apps of groups.values()) {
        const first = apps[0] as AppRecord;
        try {
          const head = await this.deps.source.head({ repoURL, branch, namespace: first.namespace }, { maxAgeMs: 0 });
          if (!this.running) return false;
          for (const app of apps) this.deps.onHead(app, head);
        } catch (e) {
          const err = toZvError(e);
          this.deps.log.warn({ repo: repoURL, branch, namespace: first.namespace, err: err.message }, 'poll failed');
          if (this.running) for (const app of apps) this.deps.onHeadError?.(app, err);
        }
      }
    } catch (e) {
      this.deps.log.warn({ repo: repoURL, branch, err: toZvError(e).message }, 'poll failed');
    }
    return true;
  }
}
