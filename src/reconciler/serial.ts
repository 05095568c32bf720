// One run per key at a time. A run asked for while one is running queues exactly one follow-up;
// further requests join that follow-up (PRODUCT.md §7: "joins it or runs right after it").

interface Entry {
  tail: Promise<unknown>;
  pending: Promise<unknown> | null;
}

export class SerialRunner {
  private readonly entries = new Map<string, Entry>();

  isBusy(key: string): boolean {
    return this.entries.has(key);
  }

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.entries.get(key);
    if (existing?.pending) return existing.pending as Promise<T>;
    const entry: Entry = existing ?? { tail: Promise.resolve(), pending: null };
    const prev = entry.tail;
    const p: Promise<T> = prev
      .catch(() => undefined)
      .then(() => {
        if (entry.pending === p) entry.pending = null;
        return fn();
      });
    entry.tail = p;
    if (existing) entry.pending = p;
    this.entries.set(key, entry);
    p.finally(() => {
      if (entry.tail === p) this.entries.delete(key);
    }).catch(() => undefined);
    return p;
  }

  /** Resolves once nothing is running or queued for any key. */
  async idle(): Promise<void> {
    while (this.entries.size > 0) {
      await Promise.all([...this.entries.values()].map((e) => e.tail.catch(() => undefined)));
    }
  }

  /** Runs `fn` after everything queued for `key`, never joining an earlier request. */
  after<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const entry = this.entries.get(key) ?? { tail: Promise.resolve(), pending: null };
    const p: Promise<T> = entry.tail.catch(() => undefined).then(fn);
    entry.tail = p;
    entry.pending = null;
    this.entries.set(key, entry);
    p.finally(() => {
      if (entry.tail === p) this.entries.delete(key);
    }).catch(() => undefined);
    return p;
  }
}
