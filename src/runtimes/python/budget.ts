// The runtime-wide bound on Python worker processes (--python-max-workers): every worker, a
// function's first one included, holds a slot from when it is started until its process has
// exited, so the number of worker processes alive never exceeds `max` (spares are not workers).
//
// - A function with calls waiting and no worker asks for a first slot (`first`). A free slot is
//   taken at once; otherwise the function waits in line (FIFO) and, to make room, the worker idle
//   the longest among all functions (one running no call) is stopped: its slot goes to the head of
//   the line once the process has exited. A function whose worker was taken keeps its code loaded
//   (the LoadedFunction stays); its next call just waits in line for a worker again.
// - When no worker is idle anywhere, the line waits until one frees: a worker that finishes a call
//   and finds nothing of its own function waiting goes idle and is stopped for the line at once; an
//   extra worker of a busy function is given up after its call; a busy function's only worker after
//   its call once it has had its share of time (function.ts). Each call waits within its own
//   timeout (function.ts), so nothing waits for ever.
// - More workers for a function that already has some (`extra`) only come after every function in
//   line for a first one: from a free slot, else in line behind the others wanting more, for which
//   only a worker idle for `stealAfterMs` is stopped (a hot function does not take the warm worker
//   of another that is between two calls).
// The budget only counts and chooses; the functions (BudgetMember) start and stop their workers.

/** What the budget asks of a function (function.ts, PythonFunction). */
export interface BudgetMember {
  /** Since when (performance.now()) its worker idle the longest has been idle; undefined: none is. */
  readonly idleSince: number | undefined;
  /** Stops its worker idle the longest (the slot frees when the process has exited: `exited`). */
  stopIdle(): void;
  /**
   * A slot is given to it (it was in line): it starts a worker on it and answers true, or answers
   * false when it no longer needs one (the slot goes to the next in line).
   */
  granted(kind: 'first' | 'extra'): boolean;
}

/** How `first` went: a slot taken now; in line with a stopped worker's slot on its way; in line. */
export type FirstSlot = 'now' | 'soon' | 'wait';

export class WorkerBudget {
  /** Slots held: workers starting, running, or stopped and not yet exited. */
  total = 0;
  /** Slots of stopped workers whose process has not exited yet (they free by themselves). */
  private stopping = 0;
  private readonly members = new Set<BudgetMember>();
  /** Functions with calls waiting and no worker, first come first served (Set order). */
  private readonly firsts = new Set<BudgetMember>();
  /** Functions with calls waiting that want one more worker, first come first served. */
  private readonly extras = new Set<BudgetMember>();
  private serving = false;
  /** Serves the line for more workers again when an idle worker will have been idle for stealAfterMs. */
  private stealTimer: NodeJS.Timeout | undefined;

  constructor(readonly max: number, private readonly stealAfterMs = Infinity) {}

  join(m: BudgetMember): void {
    this.members.add(m);
  }

  /** A function unloaded: out of the lines (its workers give their slots back as they exit). */
  leave(m: BudgetMember): void {
    this.members.delete(m);
    this.firsts.delete(m);
    this.extras.delete(m);
    this.serve();
  }

  /** Functions wait in line for a first worker: a worker that finishes a call should go to them. */
  get contended(): boolean {
    return this.firsts.size > 0;
  }

  /** Functions waiting in line for a first worker (for tests and diagnostics). */
  get waiting(): number {
    return this.firsts.size;
  }

  /**
   * A slot for the first worker of `m` (it has none and calls waiting). 'now': taken, start the
   * worker. Otherwise `m` is in line and `granted('first')` is called when a slot is its turn:
   * 'soon' when an idle worker was stopped for it, 'wait' when every worker is busy.
   */
  first(m: BudgetMember): FirstSlot {
    if (this.firsts.has(m)) return this.positionOf(m) < this.stopping ? 'soon' : 'wait';
    if (this.firsts.size === 0 && this.total < this.max) {
      this.total++;
      return 'now';
    }
    this.extras.delete(m);
    this.firsts.add(m);
    this.serve();
    if (!this.firsts.has(m)) return 'soon'; // granted already (it started its worker)
    return this.positionOf(m) < this.stopping ? 'soon' : 'wait';
  }

  /**
   * A slot for one more worker of `m` (it has some, and calls waiting): true, taken now; false: `m`
   * is in line for one (`granted('extra')`), behind every function waiting for a first worker.
   */
  extra(m: BudgetMember): boolean {
    if (this.firsts.size === 0 && this.extras.size === 0 && this.total < this.max) {
      this.total++;
      return true;
    }
    if (!this.firsts.has(m)) this.extras.add(m);
    this.serve();
    return false;
  }

  /** A slot only if one is free and nobody waits (a warm replacement that no call waits for). */
  spare(): boolean {
    if (this.firsts.size || this.extras.size || this.total >= this.max) return false;
    this.total++;
    return true;
  }

  /** `m` no longer needs what it waited in line for (its waiting calls ended). */
  cancel(m: BudgetMember): void {
    this.firsts.delete(m);
    this.extras.delete(m);
  }

  /** A slot given back: a worker start that failed (its process has exited). */
  give(): void {
    this.total = Math.max(0, this.total - 1);
    this.serve();
  }

  /** A worker holding a slot was stopped: the slot frees once `exited` resolves. */
  stopped(exited: Promise<void>): void {
    this.stopping++;
    void exited.then(() => {
      this.stopping--;
      this.give();
    });
  }

  /** A worker went idle: functions in line may have it. */
  offer(): void {
    if (this.firsts.size || this.extras.size) this.serve();
  }

  private positionOf(m: BudgetMember): number {
    let i = 0;
    for (const x of this.firsts) {
      if (x === m) return i;
      i++;
    }
    return -1;
  }

  private serve(): void {
    if (this.serving) return;
    this.serving = true;
    try {
      // Free slots: to the line for a first worker, then to the line for more.
      for (const line of [this.firsts, this.extras]) {
        while (line.size && this.total < this.max) {
          const m = line.values().next().value!;
          line.delete(m);
          this.total++;
          if (!m.granted(line === this.firsts ? 'first' : 'extra')) this.total--;
        }
      }
      // Make room: an idle worker stopped for each function in line for a first worker (the one idle
      // the longest anywhere), then for those wanting more, workers idle for stealAfterMs only.
      while (this.stopping < this.firsts.size && this.stopLru(Infinity));
      if (this.firsts.size === 0 && this.extras.size && Number.isFinite(this.stealAfterMs)) {
        const before = performance.now() - this.stealAfterMs;
        while (this.stopping < this.extras.size && this.stopLru(before));
        if (this.stopping < this.extras.size) this.armSteal();
      }
    } finally {
      this.serving = false;
    }
  }

  private armSteal(): void {
    if (this.stealTimer) return;
    let oldest = Infinity;
    for (const m of this.members) oldest = Math.min(oldest, m.idleSince ?? Infinity);
    if (oldest === Infinity) return; // every worker busy: one that goes idle calls offer()
    this.stealTimer = setTimeout(() => {
      this.stealTimer = undefined;
      this.serve();
    }, Math.max(1, Math.ceil(oldest + this.stealAfterMs - performance.now())));
    this.stealTimer.unref();
  }

  /** Stops the worker idle the longest, if it has been idle since `before` at the latest. */
  private stopLru(before: number): boolean {
    let victim: BudgetMember | undefined;
    let since = before;
    for (const m of this.members) {
      const s = m.idleSince;
      if (s !== undefined && s <= since) {
        victim = m;
        since = s;
      }
    }
    if (!victim) return false;
    const stopping = this.stopping;
    victim.stopIdle();
    return this.stopping > stopping; // (a member that stopped nothing must not loop the caller)
  }
}
