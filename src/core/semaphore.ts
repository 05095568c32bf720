// A counting semaphore: at most `max` holders at once, waiters served first come, first served.
// Used for the cap on git processes (git-cli/limit.ts) and on syncs running at once (the reconciler).

export class Semaphore {
  private held = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private limit: number) {
    this.limit = Semaphore.check(limit);
  }

  private static check(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`a semaphore needs a whole number of slots of at least 1, not ${n}`);
    return n;
  }

  /** How many holders may run at once. */
  get max(): number {
    return this.limit;
  }

  /** How many hold a slot now. */
  get running(): number {
    return this.held;
  }

  /** How many wait for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Changes the number of slots. More slots let waiters in at once; fewer let the holders finish
   * (nobody is stopped) and admit no one until the count is under the new limit.
   */
  resize(max: number): void {
    this.limit = Semaphore.check(max);
    this.admit();
  }

  /**
   * Resolves with the function that gives the slot back (calling it twice gives it back once).
   * When `signal` aborts before a slot is free, the wait ends: rejects with the signal's reason.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        reject(signal?.reason);
      };
      const waiter = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.held++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.held--;
          this.admit();
        });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.admit();
    });
  }

  /** Runs `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private admit(): void {
    while (this.held < this.limit && this.waiters.length > 0) (this.waiters.shift() as () => void)();
  }
}
