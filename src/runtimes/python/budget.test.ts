// The worker budget's choices on its own (no process): the line for a first worker is served first
// come first served and before the line for more, the worker idle the longest is the one stopped,
// and a stopped worker's slot frees only when its process has exited.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerBudget } from './budget.js';
import type { BudgetMember } from './budget.js';

/** A function as the budget sees it: idle workers (their idle-since times), and what it was given. */
class Fake implements BudgetMember {
  idle: number[] = [];
  grants: string[] = [];
  exits: (() => void)[] = [];
  wants = true;
  constructor(private readonly budget: WorkerBudget, readonly name: string) {
    budget.join(this);
  }

  get idleSince(): number | undefined {
    return this.idle.length ? Math.min(...this.idle) : undefined;
  }

  stopIdle(): void {
    const oldest = Math.min(...this.idle);
    this.idle.splice(this.idle.indexOf(oldest), 1);
    this.budget.stopped(new Promise<void>((resolve) => this.exits.push(resolve)));
  }

  granted(kind: 'first' | 'extra'): boolean {
    if (!this.wants) return false;
    this.grants.push(kind);
    return true;
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('python worker budget', () => {
  it('serves the line for a first worker in order, each on the slot of the worker idle the longest once it has exited', async () => {
    const budget = new WorkerBudget(2);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new Fake(budget, n)) as [Fake, Fake, Fake, Fake];
    assert.equal(budget.first(a), 'now');
    assert.equal(budget.first(b), 'now');
    a.idle = [20];
    b.idle = [10];
    // c: b's worker (idle since 10) is stopped for it, and its slot is c's once b's process exited.
    assert.equal(budget.first(c), 'soon');
    assert.deepEqual([a.idle, b.idle], [[20], []]);
    // d: a's worker for it; a third function would wait (nothing idle left).
    assert.equal(budget.first(d), 'soon');
    const e = new Fake(budget, 'e');
    assert.equal(budget.first(e), 'wait');
    assert.equal(budget.total, 2);
    assert.deepEqual([c.grants, d.grants], [[], []]);
    a.exits[0]!(); // a's exits first: the slot still goes to c, the first in line
    await tick();
    assert.deepEqual([c.grants, d.grants], [['first'], []]);
    b.exits[0]!();
    await tick();
    assert.deepEqual([d.grants, e.grants], [['first'], []]);
    assert.equal(budget.total, 2);
    assert.equal(budget.waiting, 1);
    // A worker that goes idle is stopped for e at once.
    c.idle = [30];
    budget.offer();
    assert.deepEqual(c.idle, []);
    c.exits[0]!();
    await tick();
    assert.deepEqual(e.grants, ['first']);
    assert.equal(budget.waiting, 0);
  });

  it('gives a free slot to the line for a first worker before the line for more, and skips who no longer needs one', async () => {
    const budget = new WorkerBudget(1);
    const [a, b, c] = ['a', 'b', 'c'].map((n) => new Fake(budget, n)) as [Fake, Fake, Fake];
    assert.equal(budget.first(a), 'now');
    assert.equal(budget.extra(a), false); // in line for more
    assert.equal(budget.first(b), 'wait');
    assert.equal(budget.first(c), 'wait');
    assert.ok(budget.contended);
    b.wants = false; // its calls ended meanwhile: the slot goes on to c
    budget.give();
    await tick();
    assert.deepEqual([a.grants, b.grants, c.grants], [[], [], ['first']]);
    budget.give();
    assert.deepEqual(a.grants, ['extra']);
    assert.equal(budget.spare(), false);
  });

  it('stops a worker for a function that wants more only once it has been idle for stealAfterMs', () => {
    const budget = new WorkerBudget(2, 60_000);
    const [a, b] = ['a', 'b'].map((n) => new Fake(budget, n)) as [Fake, Fake];
    budget.first(a);
    budget.first(b);
    b.idle = [performance.now()];
    assert.equal(budget.extra(a), false);
    assert.deepEqual(b.exits, [], 'b is between two calls: its worker stays');
    b.idle = [performance.now() - 60_000];
    budget.offer();
    assert.equal(b.exits.length, 1);
    budget.cancel(a);
    budget.leave(a);
    budget.leave(b);
  });
});
