// Process helpers for tests.
import { readdirSync, readFileSync } from 'node:fs';

/** Whether a process with this pid exists (signal 0: nothing is sent). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pids of the child processes of `pid` (default: this process) whose name (/proc/<pid>/comm, e.g.
 * `python3.11`) contains `match`, read from /proc. Zombies count: an exited child not yet reaped.
 */
export function childPids(match: string, pid = process.pid): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    } catch {
      continue;
    }
    for (const k of kids ? kids.split(/\s+/).map(Number) : []) {
      try {
        if (readFileSync(`/proc/${k}/comm`, 'utf8').includes(match)) out.push(k);
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}
