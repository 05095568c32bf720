// Process helpers for tests.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

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

/**
 * Live processes (zombies left out) whose working directory is `dir` or below it, with their process
 * group, read from /proc; `cwd` is the path as the kernel reports it (a removed folder ends in ` (deleted)`).
 */
export function processesUnder(dir: string): { pid: number; pgid: number; cwd: string }[] {
  const root = dir.replace(/\/+$/, '');
  const out: { pid: number; pgid: number; cwd: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cwd = readlinkSync(`/proc/${e}/cwd`);
      if (cwd !== root && !cwd.startsWith(`${root}/`)) continue;
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so parse after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z' && state !== 'X') out.push({ pid: Number(e), pgid: Number(pgrp), cwd });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}
