// Helpers shared by the benchmarks (bench/run.mjs and bench/scale.mjs): settings from the
// environment, git repositories written by the bench, child processes that print their URL when
// ready, the removal of what the bench's servers made in the Docker engine, and small HTTP helpers.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, release, tmpdir } from 'node:os';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const { fetch } = globalThis; // Node 20's built-in (undici)
export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(HERE);

/** A number from the environment variable `name` (a trailing `s` allowed), else `def`. */
export function envNumber(name, def, { min = 0, integer = false } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(String(raw).replace(/s$/, ''));
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`${name}: '${raw}' is not a ${integer ? 'whole ' : ''}number >= ${min}`);
  }
  return n;
}

/** Milliseconds of a duration like 500ms, 10s, 5m, 1h (a bare number is milliseconds). */
export function parseDurationMs(s, setting = 'a duration') {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(s).trim());
  if (!m) throw new Error(`${setting}: '${s}' is not a duration like 500ms or 10s`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'];
}

/** Where and on what a run ran: date, Node, platform, CPUs and the project's commit (`(dirty)` with changes). */
export function runMeta() {
  let projectCommit = null;
  try {
    projectCommit = git(ROOT, 'rev-parse', 'HEAD') + (git(ROOT, 'status', '--porcelain', '--untracked-files=no') ? ' (dirty)' : '');
  } catch {
    // not a git checkout
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${platform()} ${arch()} ${release()}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model?.trim() ?? 'unknown',
    projectCommit,
  };
}

// --- git ----------------------------------------------------------------------------------------

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
};
export const git = (dir, ...args) =>
  execFileSync('git', ['-c', 'commit.gpgsign=false', ...args], { cwd: dir, env: GIT_ENV, encoding: 'utf8', maxBuffer: 64 << 20 }).trim();

export async function writeFiles(dir, files) {
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, content);
  }
}

/** Writes the files (null deletes one), commits them; resolves with performance.now() after the commit. */
export async function commit(dir, files, message) {
  for (const [rel, content] of Object.entries(files)) {
    if (content === null) await rm(join(dir, rel), { recursive: true, force: true });
  }
  await writeFiles(dir, Object.fromEntries(Object.entries(files).filter(([, c]) => c !== null)));
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', message);
  return performance.now();
}

// --- child processes ----------------------------------------------------------------------------

/** Every child started and not yet exited (the benches stop them all on exit). */
export const children = new Set();

/**
 * Starts `node --no-node-snapshot bench/<script> args…`; resolves with the JSON line it prints when
 * ready, plus `child`, `t0` (spawn) and `tReady`. Its stderr is echoed (prefixed) unless `quiet`;
 * a quiet child that dies prints its last lines anyway.
 */
export function startChild(name, script, args = [], { env = process.env, timeoutMs = 60_000, quiet = false } = {}) {
  const t0 = performance.now();
  // BENCH_PROFILE_DIR=DIR: the zerverless server and the baseline write a V8 CPU profile there
  // when they stop (node --cpu-prof, file names carry the pid), to see where a target's time goes;
  // figures of a profiled run are lower.
  const profile = process.env.BENCH_PROFILE_DIR && (script === 'server.mjs' || script === 'baseline.mjs') ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const dataDirAt = script === 'server.mjs' ? args.indexOf('--data-dir') + 1 : 0;
  if (dataDirAt > 0 && args[dataDirAt]) trackDockerOf(resolve(ROOT, args[dataDirAt])); // the server runs in ROOT
  const child = spawn(process.execPath, ['--no-node-snapshot', ...profile, join(HERE, script), ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const tail = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    if (!quiet) process.stderr.write(`  [${name}] ${line.slice(0, 400)}\n`);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs / 1000} s`)), timeoutMs);
    child.once('exit', (code, signal) => {
      if (!child.benchStopping && quiet) process.stderr.write(`  [${name}] exited (${signal ?? code}); last lines:\n${tail.map((l) => `  [${name}] ${l.slice(0, 400)}`).join('\n')}\n`);
    });
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve({ name, child, t0, tReady: performance.now(), ...JSON.parse(line) });
      } catch {
        reject(new Error(`${name} printed '${line}' instead of its URL`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? code}) before it was ready:\n${tail.join('\n')}`));
    });
  });
}

/** SIGTERM, then SIGKILL after 30 s; resolves once the child has exited. */
export async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.benchStopping = true;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(t);
}

/** For a child server script: prints `{"url", "pid"}` once `server` listens, and exits on SIGTERM, SIGINT or stdin's end. */
export function announceAndServe(server) {
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid })}\n`);
  });
  const shutdown = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}

// --- what the servers made in the Docker engine ----------------------------------------------------
//
// A zerverless server labels the containers, networks and images it makes with its instance (a hash
// of its data dir, src/server/server.ts) and keeps them when it stops: its next start adopts them
// (PRODUCT.md §7). A bench server's data dir is thrown away, so nothing ever would, and each left
// container holds a bridge network (the engine's default address pools have about 30) and starts
// again with dockerd. So the bench removes everything labelled with its servers' instances when it
// exits, whichever way: done, failed, Ctrl-C / SIGTERM (the benches' handlers stop the servers, then
// exit) or an uncaught error (process 'exit'). The instances are also written to a ledger file named
// by the bench's pid; a bench killed outright (SIGKILL) leaves its ledger, which the next bench run
// sweeps once that pid is gone.

const LEDGER_DIR = join(tmpdir(), 'zv-bench-docker');
const LEDGER = join(LEDGER_DIR, `${process.pid}.json`);
/** Instances of the servers this bench started (data dirs hashed as the server does). */
const instances = new Set();
/** Whether the docker CLI reaches an engine (asked when the first server starts); without one there is nothing to remove. */
let dockerOk = null;

/** The instance label a server on dataDir puts on what it makes in the engine (instanceOf in src/runtimes/docker/build.ts; not imported, so the baseline process loads none of the server). */
export function instanceOf(dataDir) {
  return createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12);
}

function trackDockerOf(dataDir) {
  dockerOk ??= dockerLines(['version', '--format', '{{.Server.Version}}']) !== null;
  if (!dockerOk) return;
  if (instances.size === 0) {
    sweepStaleLedgers();
    process.on('exit', removeAllDockerObjects);
  }
  instances.add(instanceOf(dataDir));
  try {
    mkdirSync(LEDGER_DIR, { recursive: true });
    writeFileSync(LEDGER, JSON.stringify({ pid: process.pid, argv: process.argv.slice(1), instances: [...instances] }));
  } catch {
    // no ledger: only a SIGKILLed bench would miss it
  }
}

/** Lines of a docker CLI command's stdout; null when there is no docker CLI or it failed. */
function dockerLines(args) {
  try {
    return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000, maxBuffer: 16 << 20 })
      .split('\n').filter(Boolean);
  } catch {
    return null;
  }
}

/**
 * Removes the containers (forced), then the networks, then the images (never forced: an image a
 * container of another server runs stays) labelled with one of these instances. Synchronous (the
 * docker CLI), so that it also runs in an 'exit' handler. Returns what it removed.
 */
export function removeDockerObjects(list) {
  const want = new Set(list);
  const done = { containers: 0, networks: 0, images: 0 };
  if (want.size === 0) return done;
  const labelled = (kind, fmt) => {
    const lines = dockerLines([...kind, '--filter', 'label=zerverless.managed=true', '--format', fmt]) ?? [];
    return lines.map((l) => l.split(' ')).filter(([, inst]) => want.has(inst)).map(([id]) => id);
  };
  const containers = labelled(['ps', '-a'], '{{.ID}} {{.Label "zerverless.instance"}}');
  if (containers.length && dockerLines(['rm', '-f', ...containers]) !== null) done.containers = containers.length;
  for (const id of labelled(['network', 'ls'], '{{.ID}} {{.Label "zerverless.instance"}}')) if (dockerLines(['network', 'rm', id]) !== null) done.networks++;
  const ids = dockerLines(['images', '-q', '--filter', 'label=zerverless.managed=true']) ?? [];
  const images = ids.length ? dockerLines(['image', 'inspect', '--format', '{{.Id}} {{index .Config.Labels "zerverless.instance"}} {{range .RepoTags}}{{.}} {{end}}', ...new Set(ids)]) ?? [] : [];
  for (const line of images) {
    const [id, inst, ...tags] = line.split(' ').filter(Boolean);
    if (!want.has(inst)) continue;
    // by tag (an image of several tags is only removed with its last one), an untagged one by id
    if (dockerLines(['image', 'rm', ...(tags.length ? tags : [id])]) !== null) done.images++;
  }
  return done;
}

/** At exit: what every server of this bench made; then the ledger goes. */
function removeAllDockerObjects() {
  // An uncaught error exits with the servers still up: stop them first (they exit on SIGTERM).
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  const done = removeDockerObjects(instances);
  if (done.containers || done.networks || done.images) {
    process.stderr.write(`bench: removed what its servers made in the Docker engine: ${done.containers} containers, ${done.networks} networks, ${done.images} images\n`);
  }
  rmSync(LEDGER, { force: true });
}

/** The ledgers of benches whose process is gone: what their servers made is removed, then the ledger. */
function sweepStaleLedgers() {
  let files = [];
  try {
    files = readdirSync(LEDGER_DIR).filter((f) => /^\d+\.json$/.test(f));
  } catch {
    return;
  }
  for (const f of files) {
    const pid = Number(f.slice(0, -5));
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // that bench still runs (or its pid was reused: its ledger waits)
    } catch (e) {
      if (e.code !== 'ESRCH') continue;
    }
    try {
      const { instances: left = [] } = JSON.parse(readFileSync(join(LEDGER_DIR, f), 'utf8'));
      const done = removeDockerObjects(left);
      if (done.containers || done.networks || done.images) {
        process.stderr.write(`bench: removed what an earlier bench (pid ${pid}, gone) left in the Docker engine: ${done.containers} containers, ${done.networks} networks, ${done.images} images\n`);
      }
    } catch {
      // unreadable: dropped
    }
    rmSync(join(LEDGER_DIR, f), { force: true });
  }
}

// --- HTTP ---------------------------------------------------------------------------------------

export async function getText(url) {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

/** GETs url until it answers 200 with body (or any 200 when body is undefined); resolves with the time. */
export async function waitForBody(url, body, timeoutMs = 60_000) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const r = await getText(url).catch(() => null);
    if (r && r.status === 200 && (body === undefined || r.body === body)) return performance.now();
    if (performance.now() > deadline) throw new Error(`${url} did not answer ${body === undefined ? '200' : JSON.stringify(body.slice(0, 80))} within ${timeoutMs / 1000} s (last: ${r ? `${r.status} ${JSON.stringify(r.body.slice(0, 200))}` : 'no answer'})`);
    await sleep(5);
  }
}

// The API needs a token: a new data dir's admin token is in <data dir>/admin-token.
const TOKENS = new Map();

/** Remembers the admin token of the server at `base` (read from its data dir) for api(). */
export async function readToken(base, dataDir) {
  TOKENS.set(base, (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim());
}

/** A call of /api/gitops/applications{path} with the server's token; the body parsed as JSON when it is JSON. */
export async function api(base, method, path, body) {
  const token = TOKENS.get(base);
  const res = await fetch(`${base}/api/gitops/applications${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

// --- process trees (Linux /proc) ---------------------------------------------------------

/** Every pid under root (root included), from the ppid field of /proc/<pid>/stat. */
export function processTree(root) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch {
      // gone
    }
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    todo.push(...(kids.get(p) ?? []));
  }
  return out;
}

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
/**
 * CPU seconds (user + system) used so far by every live process under root, root included: the
 * server, its worker threads and its sandboxed children (Python workers…). null off Linux.
 */
export function treeCpuSeconds(root) {
  if (!root) return null;
  let ticks = 0;
  for (const pid of processTree(root)) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      if (pid === root) return null;
    }
  }
  return ticks / CLK_TCK;
}
