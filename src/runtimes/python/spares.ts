// Spare workers, for cold starts. Most of a worker's start is the sandbox and the interpreter
// (bwrap's namespaces, CPython's start-up, the imports of worker-source.ts), none of it about a
// function: a worker reads its function (code, env, limits) from its first message only. A spare is
// such a worker started ahead of time: sandboxed, started and imported, waiting for its first
// message. A function that needs a worker (its first call, or one more while calls wait) takes a
// spare of its sandbox command when one is there and gives it that message; without one it starts
// a process as before. Either way a new spare is started once the taken worker has answered its
// load (so the two do not compete for the CPU while the call waits).
//
// A spare has run nothing but the platform's code, and once taken it is one function's worker for
// good: it sets up seccomp, RLIMIT_AS and the env from that message exactly as a fresh worker does,
// and is never given back. Nothing is shared between workers (security.md).
//
// Spares are kept per sandbox command (the function's memory sets the size of its /tmp), for the
// MAX_COMMANDS commands used last, SPARES_PER_COMMAND each, and stopped after IDLE_MS without a
// take: a server whose Python functions are not called keeps none. They are not workers: the
// worker budget (--python-max-workers) does not count them.
import type { FunctionLogger } from '../types.js';
import { WorkerProcess } from './worker-process.js';
import type { WorkerCommand } from './worker-process.js';

export interface SpareOptions {
  /** Spares kept per sandbox command (default 2; 0: none). */
  perCommand?: number;
  /** Sandbox commands (memory sizes) kept spares for, the ones used last (default 2). */
  maxCommands?: number;
  /** Spares of a command not taken for this long are stopped (default 10 minutes). */
  idleMs?: number;
}

const SPARES_PER_COMMAND = 2;
const MAX_COMMANDS = 2;
const IDLE_MS = 10 * 60_000;
/** A spare whose input was ended and that is still there after this long is killed. */
const STOP_GRACE_MS = 10_000;

interface Slot {
  cmd: WorkerCommand;
  spares: WorkerProcess[];
  timer: NodeJS.Timeout | undefined;
}

const keyOf = (cmd: WorkerCommand): string => [cmd.file, ...cmd.prefix].join('\0');
const noLog: FunctionLogger = () => {};

export class SparePool {
  /** By command key; the one used last is last (Map order). */
  private readonly slots = new Map<string, Slot>();
  private readonly perCommand: number;
  private readonly maxCommands: number;
  private readonly idleMs: number;
  private closed = false;

  constructor(private readonly maxReply: number, opts: SpareOptions = {}) {
    this.perCommand = Math.max(0, Math.floor(opts.perCommand ?? SPARES_PER_COMMAND));
    this.maxCommands = Math.max(1, Math.floor(opts.maxCommands ?? MAX_COMMANDS));
    this.idleMs = opts.idleMs ?? IDLE_MS;
  }

  /** A worker process for `cmd` that has loaded nothing yet: a spare when one is alive, else a new one. */
  take(cmd: WorkerCommand, log: FunctionLogger): WorkerProcess {
    const slot = this.closed || this.perCommand === 0 ? undefined : this.use(cmd);
    while (slot?.spares.length) {
      const w = slot.spares.shift()!;
      if (!w.alive) continue;
      w.onExit = () => {};
      w.log = log;
      return w;
    }
    return new WorkerProcess(cmd, log, this.maxReply);
  }

  /** Starts spares of `cmd` up to the count kept (after a taken worker answered its load). */
  refill(cmd: WorkerCommand): void {
    const slot = this.slots.get(keyOf(cmd));
    if (this.closed || !slot) return;
    while (slot.spares.length < this.perCommand) {
      const w = new WorkerProcess(cmd, noLog, this.maxReply);
      w.onExit = () => {
        const i = slot.spares.indexOf(w);
        if (i >= 0) slot.spares.splice(i, 1);
      };
      slot.spares.push(w);
    }
  }

  /** Host pids of the spares alive now (bwrap when sandboxed), for tests. */
  get pids(): number[] {
    const out: number[] = [];
    for (const s of this.slots.values()) for (const w of s.spares) if (w.alive && w.pid !== undefined) out.push(w.pid);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.slots.keys()].map((k) => this.drop(k));
    await Promise.all(all);
  }

  /** The slot of `cmd`, made the one used last; the least recently used one over the cap goes. */
  private use(cmd: WorkerCommand): Slot {
    const key = keyOf(cmd);
    let slot = this.slots.get(key);
    if (slot) this.slots.delete(key);
    slot ??= { cmd, spares: [], timer: undefined };
    this.slots.set(key, slot);
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => void this.drop(key), this.idleMs);
    slot.timer.unref();
    while (this.slots.size > this.maxCommands) void this.drop(this.slots.keys().next().value!);
    return slot;
  }

  private async drop(key: string): Promise<void> {
    const slot = this.slots.get(key);
    if (!slot) return;
    this.slots.delete(key);
    clearTimeout(slot.timer);
    await Promise.all(slot.spares.splice(0).map((w) => stop(w)));
  }
}

/** Stops a spare: its input ends and it exits; killed only if it has not after STOP_GRACE_MS. */
async function stop(w: WorkerProcess): Promise<void> {
  w.onExit = () => {};
  w.end();
  const timer = setTimeout(() => w.kill(), STOP_GRACE_MS);
  timer.unref();
  await w.exited;
  clearTimeout(timer);
}
