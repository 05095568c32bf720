// Child processes of the Node service runtime: commands with a time limit whose output goes to the
// service log (install, build, unpack, custom health checks), the minimal environment a service sees,
// and process-group handling (every child gets its own group so that stopping reaches the whole tree).
import { spawn } from 'node:child_process';
import { access, readdir, readFile, readlink } from 'node:fs/promises';
import { constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { LogBuffer } from './log.js';

export interface RunOptions {
  cmd: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Output lines go here, prefixed with `[what] `. */
  log?: LogBuffer;
  /** Short name for messages and log prefixes, e.g. `npm ci`. */
  what: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last lines of output (stderr and stdout), for error messages. */
  tail: string;
  stdout: string;
}

const TAIL = 4000;
const MAX_STDOUT = 1024 * 1024;

/** Runs a command in its own process group; never rejects for exit codes (see `code`/`timedOut`). */
export function runCommand(o: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(o.cmd, o.args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let tail = '';
    let stdout = '';
    let timedOut = false;
    const out = o.log?.writer('stdout', `[${o.what}] `);
    const err = o.log?.writer('stderr', `[${o.what}] `);
    const keep = (s: string): void => {
      tail = (tail + s).slice(-TAIL);
    };
    child.stdout.on('data', (b: Buffer) => {
      out?.write(b);
      keep(b.toString('utf8'));
      if (stdout.length < MAX_STDOUT) stdout += b.toString('utf8');
    });
    child.stderr.on('data', (b: Buffer) => {
      err?.write(b);
      keep(b.toString('utf8'));
    });
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup(child.pid, 'SIGKILL');
    }, o.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      out?.end();
      err?.end();
      // The command is done; anything it left behind in its group goes too.
      signalGroup(child.pid, 'SIGKILL');
      resolve({ code, signal, timedOut, tail: tail.trim(), stdout });
    });
  });
}

/** Sends `signal` to the process group led by `pid`; false when there is no such group. */
export function signalGroup(pid: number | undefined, signal: NodeJS.Signals): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Pids of the live (not zombie) processes in group `pgid`; on systems without /proc, `[pgid]` while the group exists. */
export async function groupMembers(pgid: number): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const out: number[] = [];
  await Promise.all(entries.filter((e) => /^\d+$/.test(e)).map(async (e) => {
    const st = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so parse after the last ')'.
    const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== undefined && fields[0] !== 'Z' && fields[0] !== 'X' && Number(fields[2]) === pgid) out.push(Number(e));
  }));
  return out;
}

/** The working directory of a process (Linux), or null. */
export async function processCwd(pid: number): Promise<string | null> {
  return readlink(`/proc/${pid}/cwd`).catch(() => null);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Stops a whole process group: SIGTERM, up to `graceMs` for every member to exit, then SIGKILL (and
 * up to 2 s more). Resolves true when the group is gone.
 */
export async function stopGroup(pgid: number, graceMs: number): Promise<boolean> {
  if (!signalGroup(pgid, 'SIGTERM')) return true;
  const end = Date.now() + graceMs;
  while (Date.now() < end) {
    if ((await groupMembers(pgid)).length === 0) return true;
    await sleep(50);
  }
  signalGroup(pgid, 'SIGKILL');
  const hard = Date.now() + 2000;
  while (Date.now() < hard) {
    if ((await groupMembers(pgid)).length === 0) return true;
    await sleep(50);
  }
  return false;
}

/** The first executable named `bin` on PATH, or null. */
export async function which(bin: string, path = process.env.PATH ?? ''): Promise<string | null> {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, bin);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

// What a service (and its install) may see of the host's environment: locations and locale only.
const BASICS = ['HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SHELL'];

/** PATH with this Node's own bin folder first, so `node` and `npm` are the ones running zerverless. */
export function basePath(): string {
  const own = dirname(process.execPath);
  const rest = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter((d) => d && d !== own);
  return [own, ...rest].join(delimiter);
}

/** The environment of a service process: basics, the spec's env (keys upper-cased), then PORT. */
export function serviceEnv(env: Record<string, string>, port: number | null): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { PATH: basePath() };
  for (const k of BASICS) if (process.env[k] !== undefined) out[k] = process.env[k];
  for (const [k, v] of Object.entries(env)) out[k.toUpperCase()] = String(v);
  if (port !== null) out.PORT = String(port);
  return out;
}

/**
 * The environment of npm/pnpm/yarn during fetch, install and build: the service's environment plus the
 * host's npm settings (`npm_config_*`, so a private registry and its auth in ~/.npmrc work).
 */
export function toolEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out = serviceEnv(env, null);
  for (const [k, v] of Object.entries(process.env)) if (/^npm_config_/i.test(k) && v !== undefined) out[k] = v;
  out.npm_config_update_notifier = 'false';
  out.npm_config_fund = 'false';
  out.npm_config_audit = 'false';
  return out;
}
