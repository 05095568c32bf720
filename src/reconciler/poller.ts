// The poll: applications that share a (repository, branch) share one `ls-remote` check. Checks are
// spread evenly over the interval instead of each branch keeping a timer of its own: every round
// (one per interval, on a fixed grid, so rounds never drift later) lists the applications once,
// groups them by branch, and branch i of n is checked at offset i·interval/n of the round.
// A branch added or removed moves the others at the next round. Each check asks the remote for the
// head only and hands it to every application on that branch; the reconciler decides which of them
// need a sync. How late checks start is measured: a round whose checks started later than a tenth
// of the interval is logged, and the lateness is reported to `onRound` (a gauge of the metrics).
import type { AppRecord, Store } from '../store/types.js';
import type { Source } from '../sources/types.js';
import type { Logger } from '../telemetry/log.js';
import { toZvError, type ZvError } from '../errors/registry.js';

/** The timers the poller uses (tests give a fake clock). */
export interface PollClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: PollClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** What one round of checks looked like, reported when the next round starts (or at stop). */
export interface PollRound {
  /** Branches checked in the round. */
  branches: number;
  /** How late the latest check of the round started after its slot (ms, ≥ 0). */
  latenessMs: number;
  /** Checks skipped because the previous check of the same branch was still running. */
  skipped: number;
}

export interface PollerDeps {
  store: Store;
  source: Source;
  intervalMs: number;
  log: Logger;
  /** Called with each application of the branch and the branch head. */
  onHead: (app: AppRecord, head: string) => void;
  /** Called with each application of the branch when its head cannot be read. */
  onHeadError?: (app: AppRecord, err: ZvError) => void;
  /** Called when a round has ended (for the lateness gauge). */
  onRound?: (round: PollRound) => void;
  clock?: PollClock;
}

const keyOf = (repoURL: string, branch: string): string => `${repoURL}\n${branch}`;

interface Branch {
  repoURL: string;
  branch: string;
  /** The applications on it, by id. */
  apps: Map<number, AppRecord>;
}

/** The offsets within a round of `n` branches' checks: i·interval/n, evenly spaced over the interval. */
export function spreadOffsets(n: number, intervalMs: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * intervalMs) / n);
}

/**
 * The branches in check order: sorted by key, so the order only changes where branches come and go.
 * Suspended applications are left out (PRODUCT.md §11): a branch only they follow is not checked.
 */
export function groupByBranch(apps: readonly AppRecord[]): Map<string, Branch> {
  const out = new Map<string, Branch>();
  for (const app of apps) {
    if (app.suspended) continue;
    const key = keyOf(app.source.repoURL, app.source.branch);
    let b = out.get(key);
    if (!b) {
      b = { repoURL: app.source.repoURL, branch: app.source.branch, apps: new Map() };
      out.set(key, b);
    }
    b.apps.set(app.id, app);
  }
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export class Poller {
  private readonly clock: PollClock;
  /** Applications by (repository, branch): from the store at each round, plus those added since. */
  private index = new Map<string, Branch>();
  private readonly timers = new Set<unknown>();
  /** The extra checks asked for (watch, applications never synced), by branch. */
  private readonly soon = new Map<string, unknown>();
  private running = false;
  private readonly inflight = new Map<string, Promise<void>>();
  /** What the current round has seen so far. */
  private round: PollRound | null = null;
  private generation = 0;
  /** The last round that ended. */
  lastRound: PollRound | null = null;

  constructor(private readonly deps: PollerDeps) {
    this.clock = deps.clock ?? realClock;
  }

  async start(): Promise<void> {
    this.running = true;
    const generation = ++this.generation;
    const { apps } = await this.deps.store.listApps({ limit: Number.MAX_SAFE_INTEGER });
    if (!this.running || generation !== this.generation) return;
    this.index = groupByBranch(apps);
    // Applications that never synced (e.g. the server stopped during their first sync) are checked now.
    for (const app of apps) if (!app.commit) this.checkSoon(keyOf(app.source.repoURL, app.source.branch));
    // The first round one interval from now (a branch was checked about once per interval before).
    this.scheduleRound(generation, this.clock.now() + this.deps.intervalMs);
  }

  /** How many (repository, branch) pairs are being polled. */
  get branches(): number {
    return this.index.size;
  }

  /** Stops the timers and waits for the checks under way (their answers are then dropped). */
  async stop(): Promise<void> {
    this.running = false;
    this.generation++;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    this.soon.clear();
    this.endRound();
    await Promise.all(this.inflight.values());
  }

  /**
   * Makes sure the application's branch is polled (it is checked from the next round on; with
   * `delayMs`, also once after that delay).
   */
  add(app: AppRecord, delayMs?: number): void {
    if (!this.running) return;
    const key = keyOf(app.source.repoURL, app.source.branch);
    let b = this.index.get(key);
    if (!b) {
      b = { repoURL: app.source.repoURL, branch: app.source.branch, apps: new Map() };
      this.index.set(key, b);
    }
    b.apps.set(app.id, app);
    if (delayMs !== undefined) this.checkSoon(key, delayMs);
  }

  /** Makes sure the branch is polled; with `delayMs`, also checks it once after that delay (e.g. 0 = now). */
  watch(repoURL: string, branch: string, delayMs?: number): void {
    if (this.running && delayMs !== undefined) this.checkSoon(keyOf(repoURL, branch), delayMs);
  }

  /** Stops handing heads to the application (its branch goes at the next round when no one else uses it). */
  forget(appId: number): void {
    for (const b of this.index.values()) b.apps.delete(appId);
  }

  private after(ms: number, generation: number, fn: () => void): unknown {
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      if (this.running && generation === this.generation) fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  /** An extra check of the branch after `delayMs`; it replaces one already asked for and not started. */
  private checkSoon(key: string, delayMs = 0): void {
    const earlier = this.soon.get(key);
    if (earlier !== undefined) {
      this.clock.clearTimeout(earlier);
      this.timers.delete(earlier);
    }
    const t = this.after(delayMs, this.generation, () => {
      this.soon.delete(key);
      this.check(key, null, null);
    });
    this.soon.set(key, t);
  }

  /** The next round at `due` on the grid; a round missed (the process was stalled) is skipped, not run late. */
  private scheduleRound(generation: number, due: number): void {
    this.after(due - this.clock.now(), generation, () => void this.startRound(generation, due));
  }

  private async startRound(generation: number, due: number): Promise<void> {
    this.endRound();
    const interval = this.deps.intervalMs;
    const now = this.clock.now();
    const missed = Math.max(0, Math.floor((now - due) / interval));
    if (missed > 0) this.deps.log.warn({ missed, lateMs: Math.round(now - due) }, 'poll rounds skipped: the process was busy past their time');
    const roundDue = due + missed * interval;
    this.scheduleRound(generation, roundDue + interval);
    try {
      // One store query per round, not one per branch check.
      const { apps } = await this.deps.store.listApps({ limit: Number.MAX_SAFE_INTEGER });
      if (!this.running || generation !== this.generation) return;
      this.index = groupByBranch(apps);
    } catch (e) {
      // Keep polling what is known.
      this.deps.log.warn({ err: toZvError(e).message }, 'poll: cannot list the applications');
    }
    this.scheduleChecks(generation, roundDue);
  }

  /** The checks of one round: branch i of n at its offset from the round's due time. */
  private scheduleChecks(generation: number, due: number): void {
    const keys = [...this.index.keys()];
    const offsets = spreadOffsets(keys.length, this.deps.intervalMs);
    const round: PollRound = { branches: keys.length, latenessMs: 0, skipped: 0 };
    this.round = round;
    keys.forEach((key, i) => {
      const at = due + (offsets[i] as number);
      this.after(at - this.clock.now(), generation, () => this.check(key, at, round));
    });
  }

  private endRound(): void {
    const r = this.round;
    if (!r) return;
    this.round = null;
    this.lastRound = r;
    if (r.latenessMs > this.deps.intervalMs / 10) {
      this.deps.log.warn({ branches: r.branches, lateMs: Math.round(r.latenessMs), intervalMs: this.deps.intervalMs, skipped: r.skipped },
        'poll checks started late (more than a tenth of the poll interval)');
    }
    this.deps.onRound?.(r);
  }

  /** One check of a branch; `due` is its slot in `round` (null for an extra check). */
  private check(key: string, due: number | null, round: PollRound | null): void {
    if (due !== null && round) round.latenessMs = Math.max(round.latenessMs, this.clock.now() - due);
    const b = this.index.get(key);
    if (!b || b.apps.size === 0) return;
    if (this.inflight.has(key)) {
      if (round) round.skipped++;
      return;
    }
    const p = this.checkBranch(b).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
  }

  private async checkBranch(b: Branch): Promise<void> {
    const { repoURL, branch } = b;
    try {
      // One check per credential in use: applications whose namespaces fetch with different
      // credentials (or none) never share an answer. The credential is looked up once per namespace.
      const byNamespace = new Map<string, AppRecord[]>();
      for (const app of b.apps.values()) byNamespace.set(app.namespace, [...(byNamespace.get(app.namespace) ?? []), app]);
      const groups = new Map<string, AppRecord[]>();
      for (const [namespace, apps] of byNamespace) {
        const key = (await this.deps.source.accessKey?.({ repoURL, branch, namespace })) ?? '';
        groups.set(key, [...(groups.get(key) ?? []), ...apps]);
      }
      for (const apps of groups.values()) {
        const first = apps[0] as AppRecord;
        try {
          const head = await this.deps.source.head({ repoURL, branch, namespace: first.namespace }, { maxAgeMs: 0 });
          if (!this.running) return;
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
  }
}
