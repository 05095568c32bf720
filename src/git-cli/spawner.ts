// Starts git processes from a worker thread. Node's spawn() forks on the calling thread (libuv:
// fork + exec), and fork copies the page tables of the whole process: in a server with a large heap
// each git process costs milliseconds during which the event loop answers nothing (measured: 1,000
// registrations on 100 repositories spent 3 s of their 8 s of main-thread CPU in spawn). From a
// worker only that worker waits. One worker per process, started on the first git run; it holds
// the process open only while a git run is under way. When no worker can run, exec.ts spawns on
// the calling thread as before.
import { Worker } from 'node:worker_threads';

export interface SpawnRequest {
  git: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

/** How a run ended: git exited (or was killed), its time limit passed (it is being killed), or it could not start. */
export type SpawnOutcome =
  | { kind: 'exit'; code: number | null; signal: string | null; stdout: string; stderr: string }
  | { kind: 'timeout' }
  | { kind: 'error'; message: string };

export interface SpawnHandlers {
  /** Called once, with the outcome. */
  outcome(o: SpawnOutcome): void;
  /** Called once, when no process of the run is left (git exited or never started). */
  gone(): void;
}

interface Message { id: number; outcome?: SpawnOutcome; gone?: boolean }

// CommonJS, evaluated in the worker: the same spawn, output capture, time limit and process-group
// kill as the in-thread path of exec.ts.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { spawn } = require('node:child_process');
function killGroup(pid) {
  if (pid === undefined) return;
  try { process.kill(-pid, 'SIGKILL'); } catch { try { process.kill(pid, 'SIGKILL'); } catch {} }
}
parentPort.on('message', ({ id, git, args, cwd, env, timeoutMs }) => {
  const send = (m) => parentPort.postMessage({ id, ...m });
  let settled = false;
  let gone = false;
  const out = [];
  const err = [];
  let errBytes = 0;
  let child;
  try {
    child = spawn(git, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  } catch (e) {
    send({ outcome: { kind: 'error', message: e && e.message ? e.message : String(e) }, gone: true });
    return;
  }
  const timer = setTimeout(() => {
    if (settled) return;
    settled = true;
    killGroup(child.pid);
    send({ outcome: { kind: 'timeout' } });
  }, timeoutMs);
  const markGone = () => { if (gone) return false; gone = true; return true; };
  child.on('exit', () => { if (markGone()) send({ gone: true }); });
  child.stdout.on('data', (b) => out.push(b));
  child.stderr.on('data', (b) => { if (errBytes < 64 * 1024) { err.push(b); errBytes += b.length; } });
  child.on('error', (e) => {
    const never = child.pid === undefined && markGone();
    if (settled) { if (never) send({ gone: true }); return; }
    settled = true;
    clearTimeout(timer);
    killGroup(child.pid);
    send({ outcome: { kind: 'error', message: e.message }, gone: never });
  });
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    const last = markGone();
    if (settled) { if (last) send({ gone: true }); return; }
    settled = true;
    send({ outcome: { kind: 'exit', code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }, gone: last });
  });
});
`;

let worker: Worker | null = null;
let unavailable = false;
let seq = 0;
const pending = new Map<number, { handlers: SpawnHandlers; answered: boolean; gone: boolean }>();

function failAll(message: string): void {
  const all = [...pending.values()];
  pending.clear();
  for (const p of all) {
    if (!p.answered) p.handlers.outcome({ kind: 'error', message });
    if (!p.gone) p.handlers.gone();
  }
}

function start(): Worker | null {
  if (worker) return worker;
  if (unavailable) return null;
  let w: Worker;
  try {
    w = new Worker(WORKER, { eval: true, execArgv: [] });
  } catch {
    unavailable = true;
    return null;
  }
  w.unref();
  w.on('message', (m: Message) => {
    const p = pending.get(m.id);
    if (!p) return;
    if (m.outcome && !p.answered) {
      p.answered = true;
      p.handlers.outcome(m.outcome);
    }
    if (m.gone && !p.gone) {
      p.gone = true;
      p.handlers.gone();
    }
    // git may exit before its output is all read: the run is over when both came.
    if (p.answered && p.gone) {
      pending.delete(m.id);
      if (pending.size === 0) w.unref();
    }
  });
  const lost = (why: string): void => {
    if (worker === w) worker = null;
    failAll(`the git spawner thread stopped: ${why}`);
  };
  w.on('error', (e) => lost(e.message));
  w.on('exit', (code) => lost(`exit code ${code}`));
  worker = w;
  return w;
}

/**
 * Runs git from the spawner thread; false when there is none (the caller spawns itself). `handlers`
 * get the outcome and, once no process of the run is left, `gone`.
 */
export function spawnOffThread(req: SpawnRequest, handlers: SpawnHandlers): boolean {
  const w = start();
  if (!w) return false;
  const id = ++seq;
  pending.set(id, { handlers, answered: false, gone: false });
  if (pending.size === 1) w.ref();
  try {
    w.postMessage({ id, ...req });
  } catch (e) {
    pending.delete(id);
    if (pending.size === 0) w.unref();
    throw e;
  }
  return true;
}
