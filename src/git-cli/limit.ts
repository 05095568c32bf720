// The cap on git processes running at once in this process: every runGit (exec.ts) takes a slot
// before it spawns git and gives it back when git (and its process group) has exited. A poll of a
// hundred branches or a thousand first syncs then queue here instead of starting hundreds of git
// processes that share the CPU. The server sets the cap from --max-git-processes; library use
// (createGitOps, tests) gets the default.
import { Semaphore } from '../core/semaphore.js';

/** Git processes at once when nothing else is configured. */
export const DEFAULT_MAX_GIT_PROCESSES = 4;

const slots = new Semaphore(DEFAULT_MAX_GIT_PROCESSES);

/** The process-wide git slots (runGit's default). */
export function gitSlots(): Semaphore {
  return slots;
}

/** Sets the cap on git processes at once (a whole number ≥ 1); processes already running go on. */
export function setMaxGitProcesses(max: number): void {
  slots.resize(max);
}

/** How many git processes run and how many wait for a slot (metrics, tests). */
export function gitProcesses(): { running: number; waiting: number; max: number } {
  return { running: slots.running, waiting: slots.waiting, max: slots.max };
}
