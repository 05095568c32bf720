// Retries with backoff (PRODUCT.md §11): a sync that failed for a passing reason (git unreachable,
// an engine down, a service that never got healthy) is tried again after 10 s, then 20 s, 40 s …
// up to 10 min between attempts, until one succeeds. A commit at fault is not retried (the poll
// waits for the branch to move), and an explicit sync always runs at once.

export interface RetryPolicy {
  /** The first delay (default 10 s). */
  baseMs: number;
  /** The longest delay (default 10 min). */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 10_000, maxMs: 600_000 };

/** The delay before retry number `attempt` (1-based): base · 2^(attempt−1), at most max. */
export function backoffMs(attempt: number, policy: RetryPolicy = DEFAULT_RETRY): number {
  const exp = Math.min(Math.max(attempt, 1) - 1, 30);
  return Math.min(policy.baseMs * 2 ** exp, policy.maxMs);
}

/** What the status shows while a background retry is scheduled. */
export interface RetryState {
  /** How many retries have been scheduled in a row (1 after the first failure). */
  attempt: number;
  /** When the next one runs, ISO 8601 UTC. */
  nextAt: string;
}

/** One timer per key: the next retry of each application that is failing for a passing reason. */
export class RetrySchedule {
  private readonly entries = new Map<number, { state: RetryState; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(
    private readonly policy: RetryPolicy,
    private readonly now: () => Date,
    /** Runs the retry (a background sync); its outcome schedules the next one or clears. */
    private readonly fire: (id: number) => void,
  ) {}

  /** The retry scheduled for `id`, if any. */
  get(id: number): RetryState | undefined {
    return this.entries.get(id)?.state;
  }

  /** Schedules the next attempt after a failure: attempt n+1 after backoff(n+1). */
  failed(id: number): RetryState | undefined {
    if (this.closed) return undefined;
    const attempt = (this.attempts.get(id) ?? 0) + 1;
    this.attempts.set(id, attempt);
    const delay = backoffMs(attempt, this.policy);
    const state: RetryState = { attempt, nextAt: new Date(this.now().getTime() + delay).toISOString() };
    clearTimeout(this.entries.get(id)?.timer);
    const timer = setTimeout(() => {
      // The entry stays while the retry runs (the status keeps showing it); its outcome replaces it.
      if (this.entries.get(id)?.timer === timer) this.fire(id);
    }, delay);
    timer.unref();
    this.entries.set(id, { state, timer });
    return state;
  }

  /** Counted failures per key, kept while a retry runs so that the next delay doubles. */
  private readonly attempts = new Map<number, number>();

  /** A success (or a commit at fault, or the application removed): no more retries. */
  clear(id: number): void {
    clearTimeout(this.entries.get(id)?.timer);
    this.entries.delete(id);
    this.attempts.delete(id);
  }

  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }
}
