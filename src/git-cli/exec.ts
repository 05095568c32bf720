// Runs the system git binary safely: an argument array (never a shell), a non-interactive
// environment, protocol restrictions, a hard time limit that kills the whole process group, and
// failures mapped to GIT_ERROR / GIT_TIMEOUT with git's own stderr as the message. Every run first
// takes one of the process-wide git slots (limit.ts), so only so many git processes run at once,
// and git is started from a worker thread (spawner.ts), so that the fork never stalls the event loop.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { ZvError } from '../errors/registry.js';
import type { Semaphore } from '../core/semaphore.js';
import { gitSlots } from './limit.js';
import { spawnOffThread, type SpawnOutcome } from './spawner.js';
import { redactUrl } from './url.js';

export interface GitRun {
  /** The git binary (default `git` from PATH). */
  git: string;
  args: string[];
  cwd: string;
  timeoutMs: number;
  /**
   * `remote`: talks to a repository URL; the user's git config applies (credential helpers, ssh
   * keys, insteadOf) but only https/ssh (and file when `allowFile`) transports are allowed.
   * `local`: works on our own clone; the user's global and system config are ignored, so filter
   * drivers, hooks and templates from elsewhere cannot run.
   */
  mode: 'remote' | 'local';
  allowFile: boolean;
  env?: Record<string, string>;
  /** Exit codes that are not failures (default [0]). */
  okCodes?: number[];
  /** What the user should read in messages, e.g. `git fetch <url>`. */
  what?: string;
  /** The slots this run takes one of (default: the process-wide git slots of limit.ts). */
  slots?: Semaphore;
  /** Spawn on the calling thread rather than from the spawner thread (spawner.ts); tests. */
  inThread?: boolean;
}

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

// Variables that would point git at another repository, index or object store than the one we name.
const LOCATION_VARS = [
  'GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR', 'GIT_NAMESPACE', 'GIT_PREFIX', 'GIT_QUARANTINE_PATH', 'GIT_CEILING_DIRECTORIES',
  'GIT_DISCOVERY_ACROSS_FILESYSTEM', 'GIT_PROTOCOL_FROM_USER', 'GIT_ALLOW_PROTOCOL', 'GIT_REPLACE_REF_BASE',
];
const MAX_MESSAGE = 4000;

/** The `-c` options put before every git subcommand. */
export function gitConfigArgs(mode: 'remote' | 'local', allowFile: boolean): string[] {
  const file = allowFile ? 'always' : 'never';
  const common = ['-c', 'core.hooksPath=/dev/null', '-c', 'protocol.ext.allow=never', '-c', `protocol.file.allow=${file}`];
  if (mode === 'local') return common;
  return [
    ...common,
    '-c', 'protocol.allow=never', '-c', 'protocol.https.allow=always', '-c', 'protocol.ssh.allow=always',
  ];
}

export function gitEnv(mode: 'remote' | 'local', extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of LOCATION_VARS) delete env[k];
  delete env.SSH_ASKPASS;
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_ASKPASS = '';
  env.SSH_ASKPASS_REQUIRE = 'never';
  env.GCM_INTERACTIVE = 'never';
  env.LC_ALL = 'C';
  env.LANGUAGE = 'C';
  if (!env.GIT_SSH_COMMAND && !env.GIT_SSH) env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';
  if (mode === 'local') {
    env.GIT_CONFIG_NOSYSTEM = '1';
    env.GIT_CONFIG_GLOBAL = '/dev/null';
    env.GIT_ATTR_NOSYSTEM = '1';
  }
  return { ...env, ...extra };
}

export function trimMessage(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '' && !l.startsWith('hint:'));
  const text = redactUrl(lines.join('\n').trim());
  return text.length > MAX_MESSAGE ? text.slice(0, MAX_MESSAGE) + '…' : text;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/**
 * Runs git and resolves with its output. Rejects with GIT_TIMEOUT after `timeoutMs` (the process
 * group is killed, so an ssh child dies too) and GIT_ERROR when git exits with a code not in `okCodes`.
 * Waits for a git slot first; the time limit counts from the spawn, not from the wait. The slot is
 * given back when the git process has exited (also after a timeout: once the kill took effect).
 */
export async function runGit(run: GitRun): Promise<GitResult> {
  const release = await (run.slots ?? gitSlots()).acquire();
  return spawnGit(run, release);
}

function spawnGit(run: GitRun, release: () => void): Promise<GitResult> {
  const args = [...gitConfigArgs(run.mode, run.allowFile), ...run.args];
  const what = redactUrl(run.what ?? `git ${run.args[0] ?? ''}`);
  const okCodes = run.okCodes ?? [0];
  return new Promise<GitResult>((resolve, reject) => {
    let settled = false;
    const finish = (o: SpawnOutcome): void => {
      if (settled) return;
      settled = true;
      if (o.kind === 'timeout') {
        reject(new ZvError('GIT_TIMEOUT', `${what} took longer than ${run.timeoutMs} ms and was stopped`));
        return;
      }
      if (o.kind === 'error') {
        reject(new ZvError('GIT_ERROR', `cannot run git (${run.git}): ${o.message}`));
        return;
      }
      const result = { code: o.code ?? -1, stdout: o.stdout, stderr: o.stderr };
      if (o.code !== null && okCodes.includes(o.code)) { resolve(result); return; }
      const detail = trimMessage(result.stderr) || (o.signal ? `killed by ${o.signal}` : `exit code ${o.code}`);
      reject(new ZvError('GIT_ERROR', `${what} failed: ${detail}`, { exitCode: result.code }));
    };
    const env = gitEnv(run.mode, run.env);
    // From the spawner thread, so that the fork does not stall this thread's event loop.
    if (!run.inThread && spawnOffThread({ git: run.git, args, cwd: run.cwd, env, timeoutMs: run.timeoutMs }, { outcome: finish, gone: release })) return;
    spawnHere(run.git, args, run.cwd, env, run.timeoutMs, finish, release);
  });
}

/** The same run on the calling thread (when no spawner thread can run, or asked for). */
function spawnHere(git: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number, finish: (o: SpawnOutcome) => void, release: () => void): void {
  let child: ChildProcessByStdio<null, Readable, Readable>;
  try {
    // Own process group: on timeout we kill git and whatever it started (ssh, remote helpers).
    child = spawn(git, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  } catch (e) {
    release();
    finish({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let errBytes = 0;
  const timer = setTimeout(() => {
    killGroup(child.pid);
    finish({ kind: 'timeout' });
  }, timeoutMs);
  // git itself is gone (a grandchild that kept the pipes open cannot hold the slot).
  child.on('exit', () => release());
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => {
    if (errBytes < 64 * 1024) { err.push(b); errBytes += b.length; }
  });
  child.on('error', (e) => {
    // git never started: nothing will run in this slot (a started one gives it back on exit).
    if (child.pid === undefined) release();
    clearTimeout(timer);
    killGroup(child.pid);
    finish({ kind: 'error', message: e.message });
  });
  child.on('close', (code, signal) => {
    release();
    clearTimeout(timer);
    finish({ kind: 'exit', code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
  });
}
