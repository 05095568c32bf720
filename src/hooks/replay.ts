// Delivery ids already acted on: a replayed (or redelivered) delivery is answered without
// triggering anything again. Bounded in count and in time, so it cannot grow without end.

export class DeliveryMemory {
  /** id → when it was first seen (ms); insertion order is age order. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly maxIds = 10_000,
    private readonly ttlMs = 60 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Remembers `id`; true when it was already remembered (a replay). */
  check(id: string): boolean {
    const t = this.now();
    this.expire(t);
    if (this.seen.has(id)) return true;
    this.seen.set(id, t);
    while (this.seen.size > this.maxIds) {
      const oldest = this.seen.keys().next().value as string;
      this.seen.delete(oldest);
    }
    return false;
  }

  get size(): number {
    return this.seen.size;
  }

  private expire(t: number): void {
    for (const [id, at] of this.seen) {
      if (t - at < this.ttlMs) break;
      this.seen.delete(id);
    }
  }
}
