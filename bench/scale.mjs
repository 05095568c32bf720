// zerverless scale bench (`npm run bench -- --scale [--only <row>[,<row>…]]`): the table of issue 10
// ("Fast at scale"), measured in one command against the real server from dist/ (bench/server.mjs,
// its own process) with real git repositories in temp dirs. See docs/benchmarks.md, "Scale".
//
// Every server this starts has a `git` shim first on its PATH that appends each invocation's
// arguments to a log and execs the real git, so the number of git processes a sync runs is counted
// without touching src/. Memory is the server's process tree (the server and every descendant:
// workers, sandboxes) read from /proc/<pid>/smaps_rollup.
//
// Rows (--only takes a comma list of these names):
//   site    a 20,000-file static site: first sync, sync with the head unmoved, 1 file changed
//   git     a one-function repository: git processes per sync, sync time, commit → served
//   js      1,000 JS functions in one repository: idle memory, restart to /healthz and to a function
//   python  200 Python functions: idle memory and processes
//   cold    20 JS, 20 Lua and 20 Python functions: cold start (first request − warm) after a restart and after idle eviction
//   apps    1,000 applications on 100 repositories: registration, poll period, CPU
//   reqs    req/s vs node:http of JS / Lua / Python, read from `npm run bench` (bench/results/latest.json)
//   static  a 100 KB, a 25 B, a 2 MiB and a 10 MiB file vs sirv (and nginx when it is on PATH)
//   docker  the sync that adds a docker function
//   webhooks  1,000 applications on one repository: a push hook's answer time, syncs within the cap (bench/webhooks.mjs)
//
// Settings (environment): BENCH_SCALE_FILES (20000), BENCH_SCALE_JS (1000), BENCH_SCALE_PY (200),
// BENCH_SCALE_APPS (1000), BENCH_SCALE_REPOS (100), BENCH_SCALE_COLD (20, functions per runtime of the cold row), BENCH_SCALE_COLD_GAP (0, ms between its functions), BENCH_SCALE_BATCH (50, registrations in flight),
// BENCH_SCALE_ROUNDS (3), BENCH_SCALE_POLL (10s, poll interval of the apps row),
// BENCH_SCALE_POLL_WINDOW (60, seconds the apps row watches the poll), BENCH_SCALE_ROW_TIMEOUT
// (900, seconds one row may take before it is reported as not measured), BENCH_DURATION (5) and
// BENCH_WARMUP (1) for the static loads, BENCH_CONNECTIONS (32), BENCH_LOG_LEVEL (warn).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import autocannon from 'autocannon';
import {
  CLK_TCK, HERE, ROOT, api, children, commit, envNumber, getText, git, instanceOf, parseDurationMs, processTree, readToken, removeDockerObjects, runMeta, startChild, stopChild,
  waitForBody,
} from './lib.mjs';
import { rowWebhooks, webhooksTableRow } from './webhooks.mjs';

const RESULTS = join(HERE, 'results', 'scale-latest.json');
const LOAD_RESULTS = join(HERE, 'results', 'latest.json');
const CONFIG = {
  files: envNumber('BENCH_SCALE_FILES', 20_000, { min: 1, integer: true }),
  js: envNumber('BENCH_SCALE_JS', 1000, { min: 1, integer: true }),
  py: envNumber('BENCH_SCALE_PY', 200, { min: 1, integer: true }),
  cold: envNumber('BENCH_SCALE_COLD', 20, { min: 1, integer: true }),
  coldGapMs: envNumber('BENCH_SCALE_COLD_GAP', 0, { min: 0 }),
  apps: envNumber('BENCH_SCALE_APPS', 1000, { min: 1, integer: true }),
  repos: envNumber('BENCH_SCALE_REPOS', 100, { min: 1, integer: true }),
  batch: envNumber('BENCH_SCALE_BATCH', 50, { min: 1, integer: true }),
  rounds: envNumber('BENCH_SCALE_ROUNDS', 3, { min: 1, integer: true }),
  pollInterval: process.env.BENCH_SCALE_POLL || '10s',
  pollWindowSec: envNumber('BENCH_SCALE_POLL_WINDOW', 60, { min: 1 }),
  rowTimeoutSec: envNumber('BENCH_SCALE_ROW_TIMEOUT', 900, { min: 1 }),
  durationSec: envNumber('BENCH_DURATION', 5, { min: 1 }),
  warmupSec: envNumber('BENCH_WARMUP', 1, { min: 0 }),
  connections: envNumber('BENCH_CONNECTIONS', 32, { min: 1, integer: true }),
  logLevel: process.env.BENCH_LOG_LEVEL || 'warn',
};

const ROWS = ['site', 'git', 'js', 'python', 'cold', 'apps', 'reqs', 'static', 'docker', 'webhooks'];

// --- small helpers ----------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** Median and range of a list of numbers. */
const spread = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length, values: xs });
const log = (msg) => process.stderr.write(`scale: ${msg}\n`);

// --- git --------------------------------------------------------------------------------------

async function newRepo(dir, files) {
  await mkdir(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  return commit(dir, files, 'bench: initial');
}

// The git shim: first on each server's PATH, it logs each invocation (one line of arguments) and
// execs the real git. The line count of the log before and after a sync is the number of git
// processes the server started for it (processes git itself starts, e.g. upload-pack, not included).
let shimDir = null;
async function makeGitShim(root) {
  const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  shimDir = join(root, 'git-shim');
  await mkdir(shimDir, { recursive: true });
  await writeFile(join(shimDir, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> "$ZV_BENCH_GIT_LOG"\nexec ${realGit} "$@"\n`);
  await chmod(join(shimDir, 'git'), 0o755);
}

function gitLines(logFile) {
  try {
    const text = readFileSync(logFile, 'utf8');
    return text ? text.split('\n').slice(0, -1) : [];
  } catch {
    return [];
  }
}

// --- processes --------------------------------------------------------------------------------

/** A zerverless server (bench/server.mjs) on dataDir with the git shim logging to gitLog. */
async function startZv(name, dataDir, gitLog, pollInterval = '1h', extraEnv = {}) {
  const env = { ...process.env, PATH: `${shimDir}:${process.env.PATH ?? ''}`, ZV_BENCH_GIT_LOG: gitLog, ...extraEnv };
  const zv = await startChild(name, 'server.mjs', ['--data-dir', dataDir, '--poll-interval', pollInterval, '--log-level', CONFIG.logLevel], { env, timeoutMs: 300_000, quiet: Boolean(process.env.BENCH_SCALE_QUIET) });
  // The API needs a token: the admin token a new data dir gets is written to <data dir>/admin-token.
  await readToken(zv.url, dataDir);
  return zv;
}

/** RSS and PSS (bytes) of a process tree, summed over /proc/<pid>/smaps_rollup. */
function treeMemory(root) {
  let rss = 0;
  let pss = 0;
  let processes = 0;
  for (const pid of processTree(root)) {
    let text;
    try {
      text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    } catch {
      continue;
    }
    processes++;
    rss += Number(/^Rss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
    pss += Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
  }
  return { processes, rssBytes: rss, pssBytes: pss };
}

/** CPU seconds of a process: its own (user+system) and its reaped children's (git processes…). */
function cpuTimes(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return { self: (Number(rest[11]) + Number(rest[12])) / CLK_TCK, children: (Number(rest[13]) + Number(rest[14])) / CLK_TCK };
}

/**
 * Apparent size (bytes) of every file under dir, and per top-level entry; with `sinceMs`, also the
 * bytes of the files modified since then (`written`), whatever the collector removed meanwhile. The
 * SQLite files (state.db*) are left out of `written`: they are rewritten in place, not added.
 */
async function dirBytes(dir, sinceMs = Infinity) {
  const parts = {};
  const writtenParts = {};
  async function walk(p, top) {
    const st = await lstat(p).catch(() => null);
    if (!st) return 0;
    if (!st.isDirectory()) {
      if (st.mtimeMs >= sinceMs && !top.startsWith('state.db')) writtenParts[top] = (writtenParts[top] ?? 0) + st.size;
      return st.size;
    }
    let total = 0;
    for (const e of await readdir(p).catch(() => [])) total += await walk(join(p, e), top);
    return total;
  }
  let total = 0;
  for (const e of await readdir(dir).catch(() => [])) {
    parts[e] = await walk(join(dir, e), e);
    total += parts[e];
  }
  return { total, parts, written: Object.values(writtenParts).reduce((a, b) => a + b, 0), writtenParts };
}

// --- HTTP -------------------------------------------------------------------------------------


async function registerApp(base, { name, namespace, repoDir, path }) {
  const r = await api(base, 'POST', '', { name, namespace, source: { repoURL: `file://${repoDir}`, branch: 'main', ...(path ? { path } : {}) } });
  if (r.status !== 201) throw new Error(`registering ${namespace}/${name} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

let statusReadFailures = 0;
async function waitSettled(base, name, namespace, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  let failures = 0;
  while (Date.now() < deadline) {
    // A status read that fails at the connection (seen once in a few runs while the server started
    // 600 Python processes: undici's 'fetch failed') is logged and retried, up to 5 in a row.
    let r;
    try {
      r = await api(base, 'GET', `/${name}?namespace=${namespace}`);
      failures = 0;
    } catch (e) {
      const cause = e instanceof Error && e.cause instanceof Error ? `${e.cause.code ?? ''} ${e.cause.message}`.trim() : '';
      log(`warning: reading the status of ${namespace}/${name} failed: ${e instanceof Error ? e.message : String(e)}${cause ? ` (${cause})` : ''}`);
      statusReadFailures++;
      if (++failures >= 5) throw e;
      await sleep(500);
      continue;
    }
    last = r.body;
    if (r.status === 200 && r.body.status !== 'pending' && r.body.status !== 'syncing') return r.body;
    await sleep(100);
  }
  throw new Error(`${namespace}/${name} did not finish its sync in ${timeoutMs / 1000} s; last status ${JSON.stringify(last)?.slice(0, 500)}`);
}

async function syncApp(base, name, namespace) {
  const r = await api(base, 'POST', `/${name}/sync?namespace=${namespace}`);
  if (r.status !== 200) throw new Error(`sync of ${namespace}/${name} answered ${r.status}: ${JSON.stringify(r.body)}`);
  if (r.body.status !== 'synced') throw new Error(`sync of ${namespace}/${name} ended '${r.body.status}': ${r.body.message}`);
  return r.body;
}
function cannon(url, durationSec) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONFIG.connections, duration: durationSec, timeout: 10 }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function load(label, url) {
  log(`load ${label} (${CONFIG.warmupSec} s warm-up + ${CONFIG.durationSec} s, ${CONFIG.connections} connections)…`);
  if (CONFIG.warmupSec > 0) await cannon(url, CONFIG.warmupSec);
  const res = await cannon(url, CONFIG.durationSec);
  const out = { rps: res['2xx'] / res.duration, non2xx: res.non2xx, errors: res.errors, timeouts: res.timeouts, mbPerSec: res.throughput.average / 1e6 };
  if (out.non2xx || out.errors || out.timeouts) log(`warning: ${label}: ${out.non2xx} non-2xx, ${out.errors} errors, ${out.timeouts} timeouts`);
  await sleep(300);
  return out;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// --- the rows ---------------------------------------------------------------------------------

let tmpRoot = null;
let serial = 0;
/** A fresh server for one row: its data dir, its git log, and a helper counting git processes. */
async function rowServer(row, pollInterval = '1h') {
  const dir = join(tmpRoot, `${row}-${++serial}`);
  const dataDir = join(dir, 'data');
  const gitLog = join(dir, 'git.log');
  await mkdir(dir, { recursive: true });
  await writeFile(gitLog, '');
  const zv = await startZv(row, dataDir, gitLog, pollInterval);
  return { zv, dir, dataDir, gitLog, gitCount: () => gitLines(gitLog).length };
}

const manifestHead = (name, namespace) => ['apiVersion: zerverless.io/v1', 'kind: Application', 'metadata:', `  name: ${name}`, `  namespace: ${namespace}`, 'spec:'];
const luaFn = (path, body) => [`    - path: ${path}`, '      runtime: lua', '      code: |', `        function handle(req) return {status=200, body=${JSON.stringify(body)}} end`];

/** Deterministic text of `size` bytes (hex of a hash chain), different for each seed. */
function fileText(seed, size) {
  let out = '';
  let h = createHash('sha256').update(String(seed)).digest('hex');
  while (out.length < size) {
    out += `${h}\n`;
    h = createHash('sha256').update(h).digest('hex');
  }
  return out.slice(0, size);
}

// 1 file changed in a 20,000-file static site; first sync; sync with the head unmoved.
async function rowSite() {
  const NS = 'site';
  const repoDir = join(tmpRoot, 'site-repo');
  log(`site: generating ${CONFIG.files} files…`);
  const files = { 'zerverless.yaml': [...manifestHead('site', NS), '  static:', '    dir: ./public', ''].join('\n') };
  let siteBytes = 0;
  for (let i = 0; i < CONFIG.files; i++) {
    // 1–7 KB, ~4 KB on average, 100 files a directory
    const size = 1024 + ((i * 2654435761) % 6144);
    siteBytes += size;
    files[`public/d${String(Math.floor(i / 100)).padStart(3, '0')}/f${String(i).padStart(5, '0')}.html`] = fileText(i, size);
  }
  const tGen = performance.now();
  // The commit of 20,000 loose objects would start git's own `gc --auto` in the background of the
  // source repository, and a first sync (or clone) under way meanwhile competed with it (one
  // measured 61 s, a plain clone 35-44 s). No auto gc; the source is packed before anything is
  // measured, as a served repository is.
  await mkdir(repoDir, { recursive: true });
  git(repoDir, 'init', '-q', '-b', 'main');
  git(repoDir, 'config', 'gc.auto', '0');
  await commit(repoDir, files, 'bench: initial');
  git(repoDir, 'gc', '-q');
  log(`site: committed and packed ${CONFIG.files} files (${(siteBytes / 1e6).toFixed(1)} MB) in ${((performance.now() - tGen) / 1000).toFixed(1)} s`);
  // Baselines in the same run: a bare clone of the same URL by git itself (before and after the
  // first sync), and a bare ls-remote before each sync with the head unmoved.
  const url = `file://${repoDir}`;
  const cloneMs = async () => {
    const dir = join(tmpRoot, `site-clone-${++serial}.git`);
    const t = performance.now();
    git(tmpRoot, 'clone', '-q', '--bare', url, dir);
    const ms = performance.now() - t;
    await rm(dir, { recursive: true, force: true });
    return ms;
  };
  const lsRemoteMs = () => {
    const t = performance.now();
    git(tmpRoot, 'ls-remote', url, 'refs/heads/main');
    return performance.now() - t;
  };
  const s = await rowServer('site');
  try {
    const base = s.zv.url;
    log('site: git clone --bare (baseline)…');
    const cloneBefore = await cloneMs();
    log('site: first sync…');
    const g0 = s.gitCount();
    const t0 = performance.now();
    await registerApp(base, { name: 'site', namespace: NS, repoDir });
    const st = await waitSettled(base, 'site', NS, CONFIG.rowTimeoutSec * 1000);
    const firstMs = performance.now() - t0;
    if (st.status !== 'synced') throw new Error(`the site's first sync ended '${st.status}': ${st.message}`);
    const cloneAfter = await cloneMs();
    const first = { ms: firstMs, gitProcesses: s.gitCount() - g0, dataDir: await dirBytes(s.dataDir), cloneMs: [cloneBefore, cloneAfter] };

    const noop = [];
    for (let i = 0; i < CONFIG.rounds; i++) {
      log(`site: sync with the head unmoved, round ${i + 1}…`);
      const lsMs = lsRemoteMs();
      const g = s.gitCount();
      const t = performance.now();
      await syncApp(base, 'site', NS);
      noop.push({ ms: performance.now() - t, gitProcesses: s.gitCount() - g, lsRemoteMs: lsMs });
    }

    const change = [];
    const path = 'public/d000/f00000.html';
    for (let i = 0; i < CONFIG.rounds; i++) {
      log(`site: 1 file changed, round ${i + 1}…`);
      const body = `changed ${i + 1}\n${fileText(`c${i}`, 2000)}`;
      const before = await dirBytes(s.dataDir);
      const g = s.gitCount();
      const since = Date.now();
      const t = await commit(repoDir, { [path]: body }, `bench: change ${i + 1}`);
      await syncApp(base, 'site', NS);
      const tSync = performance.now();
      const after = await dirBytes(s.dataDir, since);
      const gitProcesses = s.gitCount() - g;
      const tServed = await waitForBody(`${base}/static/${NS}/d000/f00000.html`, body);
      const parts = {};
      for (const k of new Set([...Object.keys(before.parts), ...Object.keys(after.parts)])) parts[k] = (after.parts[k] ?? 0) - (before.parts[k] ?? 0);
      change.push({ syncMs: tSync - t, servedMs: tServed - t, gitProcesses, dataDirGrowth: after.total - before.total, growthByDir: parts, written: after.written, writtenByDir: after.writtenParts });
    }
    return { files: CONFIG.files, siteBytes, first, noop, change };
  } finally {
    await stopChild(s.zv.child);
  }
}

// git processes per sync of a one-function repository; sync time; commit → served.
async function rowGit() {
  const NS = 'one';
  const repoDir = join(tmpRoot, 'git-repo');
  const manifest = (body) => [...manifestHead('one', NS), '  functions:', ...luaFn('/hello', body), ''].join('\n');
  await newRepo(repoDir, { 'zerverless.yaml': manifest('v0') });
  const s = await rowServer('git');
  try {
    const base = s.zv.url;
    const g0 = s.gitCount();
    await registerApp(base, { name: 'one', namespace: NS, repoDir });
    const st = await waitSettled(base, 'one', NS, 120_000);
    if (st.status !== 'synced') throw new Error(`first sync ended '${st.status}': ${st.message}`);
    const first = { gitProcesses: s.gitCount() - g0, commands: gitLines(s.gitLog).slice(g0).map((l) => l.split(' ').find((a) => !a.startsWith('-') && !a.includes('=')) ?? l) };
    const rounds = [];
    const n = Math.max(CONFIG.rounds, 5);
    for (let i = 0; i < n; i++) {
      const body = `v${i + 1}`;
      const g = s.gitCount();
      const t = await commit(repoDir, { 'zerverless.yaml': manifest(body) }, `bench: ${body}`);
      await syncApp(base, 'one', NS);
      const tSync = performance.now();
      const lines = gitLines(s.gitLog).slice(g);
      const tServed = await waitForBody(`${base}/${NS}/hello`, body);
      rounds.push({ syncMs: tSync - t, servedMs: tServed - t, gitProcesses: lines.length, commands: lines });
      await sleep(200);
    }
    const noop = [];
    for (let i = 0; i < n; i++) {
      const g = s.gitCount();
      const t = performance.now();
      await syncApp(base, 'one', NS);
      noop.push({ ms: performance.now() - t, gitProcesses: s.gitCount() - g });
    }
    return { first, rounds, noop };
  } finally {
    await stopChild(s.zv.child);
  }
}

/** Idle memory: wait a few seconds after the last work, then read the tree. */
async function idleMemory(pid, settleMs = 5000) {
  await sleep(settleMs);
  return treeMemory(pid);
}

// 1,000 JS functions in one repository: idle RSS after the sync and after a restart; restart time.
async function rowJs() {
  const NS = 'jsk';
  const repoDir = join(tmpRoot, 'js-repo');
  const pad = (i) => String(i).padStart(4, '0');
  const files = { 'zerverless.yaml': [...manifestHead('jsk', NS), '  functions:', ...Array.from({ length: CONFIG.js }, (_, i) => [`    - path: /f${pad(i)}`, '      runtime: js', `      codeFile: fns/f${pad(i)}.js`]).flat(), ''].join('\n') };
  for (let i = 0; i < CONFIG.js; i++) files[`fns/f${pad(i)}.js`] = `export function handle(req) {\n  return ${JSON.stringify(`js ${i}`)};\n}\n`;
  await newRepo(repoDir, files);
  const s = await rowServer('js');
  let zv = s.zv;
  try {
    const idleStart = await idleMemory(zv.pid, 2000);
    log(`js: first sync of ${CONFIG.js} functions…`);
    const t0 = performance.now();
    await registerApp(zv.url, { name: 'jsk', namespace: NS, repoDir });
    const st = await waitSettled(zv.url, 'jsk', NS, CONFIG.rowTimeoutSec * 1000);
    const syncMs = performance.now() - t0;
    if (st.status !== 'synced') throw new Error(`first sync ended '${st.status}': ${st.message}`);
    const last = CONFIG.js - 1;
    await waitForBody(`${zv.url}/${NS}/f${pad(last)}`, `js ${last}`);
    const idleAfterSync = await idleMemory(zv.pid);
    const restarts = [];
    const n = Math.min(CONFIG.rounds, 3);
    for (let i = 0; i < n; i++) {
      log(`js: restart ${i + 1}…`);
      await stopChild(zv.child);
      zv = await startZv('js', s.dataDir, s.gitLog);
      const tHealth = await waitForBody(`${zv.url}/healthz`, undefined, CONFIG.rowTimeoutSec * 1000);
      const tFn = await waitForBody(`${zv.url}/${NS}/f0000`, 'js 0', CONFIG.rowTimeoutSec * 1000);
      restarts.push({ readyLineMs: zv.tReady - zv.t0, healthzMs: tHealth - zv.t0, functionMs: tFn - zv.t0 });
    }
    const idleAfterRestart = await idleMemory(zv.pid);
    // every function once, then idle again: what a restart costs once traffic has touched them all
    log(`js: one request to each of the ${CONFIG.js} functions…`);
    const tAll = performance.now();
    for (let i = 0; i < CONFIG.js; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, CONFIG.js - i) }, (_, k) => waitForBody(`${zv.url}/${NS}/f${pad(i + k)}`, `js ${i + k}`)));
    }
    const allOnceMs = performance.now() - tAll;
    const idleAfterAll = await idleMemory(zv.pid);
    return { functions: CONFIG.js, syncMs, idleStart, idleAfterSync, restarts, idleAfterRestart, allOnceMs, idleAfterAll };
  } finally {
    await stopChild(zv.child);
  }
}

// 200 Python functions: idle memory and processes.
async function rowPython() {
  const NS = 'pyk';
  const repoDir = join(tmpRoot, 'py-repo');
  const pad = (i) => String(i).padStart(3, '0');
  const files = { 'zerverless.yaml': [...manifestHead('pyk', NS), '  functions:', ...Array.from({ length: CONFIG.py }, (_, i) => [`    - path: /p${pad(i)}`, '      runtime: python', `      codeFile: fns/p${pad(i)}.py`]).flat(), ''].join('\n') };
  for (let i = 0; i < CONFIG.py; i++) files[`fns/p${pad(i)}.py`] = `def handle(req):\n    return ${JSON.stringify(`py ${i}`)}\n`;
  await newRepo(repoDir, files);
  const s = await rowServer('python');
  try {
    const base = s.zv.url;
    const idleStart = await idleMemory(s.zv.pid, 2000);
    log(`python: first sync of ${CONFIG.py} functions…`);
    const t0 = performance.now();
    await registerApp(base, { name: 'pyk', namespace: NS, repoDir });
    const st = await waitSettled(base, 'pyk', NS, CONFIG.rowTimeoutSec * 1000);
    const syncMs = performance.now() - t0;
    if (st.status !== 'synced') {
      if (/RUNTIME_UNAVAILABLE|bwrap/i.test(st.message ?? '')) return { skipped: `Python runtime unavailable: ${String(st.message).split('\n')[0]}` };
      throw new Error(`first sync ended '${st.status}': ${st.message}`);
    }
    const idleAfterSync = await idleMemory(s.zv.pid);
    log(`python: one request to each of the ${CONFIG.py} functions…`);
    const tAll = performance.now();
    for (let i = 0; i < CONFIG.py; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, CONFIG.py - i) }, (_, k) => waitForBody(`${base}/${NS}/p${pad(i + k)}`, `py ${i + k}`)));
    }
    const allOnceMs = performance.now() - tAll;
    const idleAfterAll = await idleMemory(s.zv.pid);
    return { functions: CONFIG.py, syncMs, idleStart, idleAfterSync, allOnceMs, idleAfterAll };
  } finally {
    await stopChild(s.zv.child);
  }
}

// Cold starts: N functions per runtime (JS, Lua, Python) in one application. After a restart
// (functions restore lazily) each is requested once, one at a time, then at once again (warm): cold
// start = first − warm, per function. Then a server with --function-idle 1s: each is called, left
// to be evicted, and measured the same way (the load after an idle eviction).
const COLD_IDLE = '1s';
async function rowCold() {
  const NS = 'cold';
  const n = CONFIG.cold;
  const pad = (i) => String(i).padStart(3, '0');
  const runtimes = {
    js: { ext: 'js', code: (i) => `export function handle(req) {\n  return ${JSON.stringify(`js ${i}`)};\n}\n` },
    lua: { ext: 'lua', code: (i) => `function handle(req)\n  return ${JSON.stringify(`lua ${i}`)}\nend\n` },
    python: { ext: 'py', code: (i) => `def handle(req):\n    return ${JSON.stringify(`python ${i}`)}\n` },
  };
  const fns = [];
  for (let i = 0; i < n; i++) for (const rt of Object.keys(runtimes)) fns.push({ rt, path: `/${rt}${pad(i)}`, body: `${rt} ${i}` });
  const files = { 'zerverless.yaml': [...manifestHead('cold', NS), '  functions:', ...fns.map((f) => [`    - path: ${f.path}`, `      runtime: ${f.rt}`, `      codeFile: fns${f.path}.${runtimes[f.rt].ext}`]).flat(), ''].join('\n') };
  for (const f of fns) files[`fns${f.path}.${runtimes[f.rt].ext}`] = runtimes[f.rt].code(f.body.split(' ')[1]);
  const repoDir = join(tmpRoot, 'cold-repo');
  await newRepo(repoDir, files);
  const timed = async (base, f) => {
    const t = performance.now();
    const r = await getText(`${base}/${NS}${f.path}`);
    const ms = performance.now() - t;
    if (r.status !== 200 || r.body !== f.body) throw new Error(`${f.path} answered ${r.status} ${JSON.stringify(r.body.slice(0, 200))}`);
    return ms;
  };
  // CPU (ms) used so far by the server's tree: its live processes, and the children it reaped.
  const cpuMs = (root) => {
    let ticks = 0;
    for (const pid of processTree(root)) {
      try {
        const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop().split(' ');
        ticks += Number(rest[11]) + Number(rest[12]) + (pid === root ? Number(rest[13]) + Number(rest[14]) : 0);
      } catch {
        // gone
      }
    }
    return (ticks * 1000) / CLK_TCK;
  };
  // Functions one at a time, the runtimes taking turns (so the machine's load spreads evenly over
  // them), back to back (BENCH_SCALE_COLD_GAP: a pause before each): the first request, then at
  // once the second (warm). CPU: the server tree's CPU over the
  // first requests minus over the warm ones, per function (ticks of 10 ms: only the mean is meant).
  const measure = async (zvs) => {
    const out = Object.fromEntries(Object.keys(runtimes).map((rt) => [rt, { first: [], warm: [], cold: [], cpuMs: 0 }]));
    for (const f of fns) {
      if (CONFIG.coldGapMs) await sleep(CONFIG.coldGapMs);
      const c0 = cpuMs(zvs.pid);
      const first = await timed(zvs.url, f);
      const c1 = cpuMs(zvs.pid);
      const warm = await timed(zvs.url, f);
      const c2 = cpuMs(zvs.pid);
      out[f.rt].first.push(first);
      out[f.rt].warm.push(warm);
      out[f.rt].cold.push(first - warm);
      out[f.rt].cpuMs += (c1 - c0 - (c2 - c1)) / n;
    }
    for (const rt of Object.keys(out)) for (const k of ['first', 'warm', 'cold']) out[rt][k] = spread(out[rt][k]);
    return out;
  };
  const s = await rowServer('cold');
  let zv = s.zv;
  try {
    log(`cold: first sync of ${n} functions per runtime…`);
    await registerApp(zv.url, { name: 'cold', namespace: NS, repoDir });
    const st = await waitSettled(zv.url, 'cold', NS, CONFIG.rowTimeoutSec * 1000);
    if (st.status !== 'synced') {
      if (/RUNTIME_UNAVAILABLE|bwrap/i.test(st.message ?? '')) return { skipped: `a runtime is unavailable: ${String(st.message).split('\n')[0]}` };
      throw new Error(`first sync ended '${st.status}': ${st.message}`);
    }
    log('cold: restart, then each function once and again…');
    await stopChild(zv.child);
    zv = await startZv('cold', s.dataDir, s.gitLog);
    await waitForBody(`${zv.url}/healthz`, undefined, 60_000); // and the HTTP connection is open
    const restart = await measure(zv);
    log(`cold: a server with --function-idle ${COLD_IDLE}: each function once, evicted, then once and again…`);
    await stopChild(zv.child);
    zv = await startZv('cold', s.dataDir, s.gitLog, '1h', { ZV_FUNCTION_IDLE: COLD_IDLE });
    await waitForBody(`${zv.url}/healthz`, undefined, 60_000);
    for (const f of fns) await timed(zv.url, f);
    await sleep(parseDurationMs(COLD_IDLE) + 2000); // the last one called is evicted by now
    const idle = await measure(zv);
    return { functions: n, restart, idle, functionIdle: COLD_IDLE };
  } finally {
    await stopChild(zv.child);
  }
}

// 1,000 applications on 100 repositories (10 each, one folder each): registration, poll, CPU.
async function rowApps() {
  const pollMs = parseDurationMs(CONFIG.pollInterval);
  const perRepo = Math.ceil(CONFIG.apps / CONFIG.repos);
  const apps = [];
  log(`apps: ${CONFIG.repos} repositories, ${CONFIG.apps} applications…`);
  for (let r = 0; r < CONFIG.repos; r++) {
    const repoDir = join(tmpRoot, 'apps-repos', `r${String(r).padStart(3, '0')}`);
    const ns = `r${String(r).padStart(3, '0')}`;
    const files = {};
    for (let a = 0; a < perRepo && apps.length < CONFIG.apps; a++) {
      files[`app${a}/zerverless.yaml`] = [...manifestHead(`a${a}`, ns), '  functions:', ...luaFn(`/a${a}`, `${ns} a${a}`), ''].join('\n');
      apps.push({ name: `a${a}`, namespace: ns, repoDir, path: `app${a}` });
    }
    await newRepo(repoDir, files);
  }
  const s = await rowServer('apps', CONFIG.pollInterval);
  try {
    const base = s.zv.url;
    const t0 = performance.now();
    const deadline = t0 + CONFIG.rowTimeoutSec * 1000;
    for (let i = 0; i < apps.length; i += CONFIG.batch) {
      await Promise.all(apps.slice(i, i + CONFIG.batch).map((a) => registerApp(base, a)));
      if ((i / CONFIG.batch) % 5 === 0) log(`apps: ${Math.min(i + CONFIG.batch, apps.length)} registered (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      if (performance.now() > deadline) return { notMeasured: `registration of ${i + CONFIG.batch} of ${apps.length} applications took over ${CONFIG.rowTimeoutSec} s` };
    }
    const registeredMs = performance.now() - t0;
    let counts = {};
    let errors = [];
    for (;;) {
      const r = await api(base, 'GET', '?limit=1000');
      const list = [...r.body.applications];
      for (let off = 1000; off < r.body.total; off += 1000) list.push(...(await api(base, 'GET', `?limit=1000&offset=${off}`)).body.applications);
      counts = {};
      for (const a of list) counts[a.status] = (counts[a.status] ?? 0) + 1;
      errors = list.filter((a) => a.status === 'error').slice(0, 3).map((a) => `${a.namespace}/${a.name}: ${String(a.message).split('\n')[0].slice(0, 300)}`);
      if ((counts.pending ?? 0) + (counts.syncing ?? 0) === 0 && list.length >= apps.length) break;
      if (performance.now() > deadline) return { registeredMs, notMeasured: `not all applications had synced after ${CONFIG.rowTimeoutSec} s (${JSON.stringify(counts)})` };
      await sleep(2000);
    }
    const syncedMs = performance.now() - t0;
    log(`apps: all settled after ${(syncedMs / 1000).toFixed(0)} s (${JSON.stringify(counts)}); watching the poll for ${CONFIG.pollWindowSec} s…`);
    await sleep(Math.min(pollMs * 2, 30_000)); // let the wave of first polls pass
    const g = s.gitCount();
    const cpu0 = cpuTimes(s.zv.pid);
    const tw = performance.now();
    await sleep(CONFIG.pollWindowSec * 1000);
    const windowSec = (performance.now() - tw) / 1000;
    const cpu1 = cpuTimes(s.zv.pid);
    const lines = gitLines(s.gitLog).slice(g);
    const perRepoPolls = new Map();
    for (const l of lines) {
      if (!/(^| )ls-remote /.test(l)) continue;
      const url = /file:\/\/\S+/.exec(l)?.[0] ?? 'other';
      perRepoPolls.set(url, (perRepoPolls.get(url) ?? 0) + 1);
    }
    const polls = [...perRepoPolls.values()];
    const periods = polls.map((n) => windowSec / n);
    const memory = treeMemory(s.zv.pid);
    return {
      apps: apps.length,
      repos: CONFIG.repos,
      registeredMs,
      syncedMs,
      statuses: counts,
      errors,
      pollIntervalSec: pollMs / 1000,
      windowSec,
      gitProcesses: lines.length,
      lsRemotes: polls.reduce((a, b) => a + b, 0),
      reposPolled: perRepoPolls.size,
      pollPeriodSec: polls.length ? spread(periods) : null,
      cpuPercent: { server: ((cpu1.self - cpu0.self) / windowSec) * 100, children: ((cpu1.children - cpu0.children) / windowSec) * 100 },
      memory,
    };
  } finally {
    await stopChild(s.zv.child);
  }
}

// req/s vs node:http of the functions: `npm run bench` measures these; read its last result.
async function rowReqs() {
  if (!existsSync(LOAD_RESULTS)) return { notMeasured: 'no bench/results/latest.json: run `npm run bench` (without --scale)' };
  const r = JSON.parse(await readFile(LOAD_RESULTS, 'utf8'));
  const pick = (t) => (r.targets?.[t]?.ratio ? r.targets[t].ratio.rps : null);
  return { from: LOAD_RESULTS, date: r.meta?.date, projectCommit: r.meta?.projectCommit, js: pick('js'), lua: pick('lua'), python: pick('python'), static: pick('static') };
}

// Static files of 25 B, 100 KB, 2 MiB and 10 MiB (the last two over the gateway's 1 MiB in-memory
// cache, so streamed from disk): zerverless vs sirv (before and after) and nginx (when on PATH).
async function rowStatic() {
  const NS = 'stat';
  const repoDir = join(tmpRoot, 'static-repo');
  const big = fileText('100k', 100 * 1024);
  const small = 'Hello from a static file\n';
  const mib2 = fileText('2m', 2 * 1024 * 1024);
  const mib10 = fileText('10m', 10 * 1024 * 1024);
  await newRepo(repoDir, {
    'zerverless.yaml': [...manifestHead('stat', NS), '  static:', '    dir: ./public', ''].join('\n'),
    'public/100k.txt': big, 'public/25b.txt': small, 'public/2m.txt': mib2, 'public/10m.txt': mib10,
  });
  const s = await rowServer('static');
  const started = [s.zv.child];
  try {
    const base = s.zv.url;
    await registerApp(base, { name: 'stat', namespace: NS, repoDir });
    const st = await waitSettled(base, 'stat', NS, 120_000);
    if (st.status !== 'synced') throw new Error(`sync ended '${st.status}': ${st.message}`);
    const sirvSrv = await startChild('sirv', 'sirv-baseline.mjs', [join(repoDir, 'public')], { quiet: Boolean(process.env.BENCH_SCALE_QUIET) });
    started.push(sirvSrv.child);
    let nginx = null;
    let nginxNote = null;
    let nginxPath = null;
    try {
      nginxPath = execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || null;
    } catch {
      nginxPath = null;
    }
    if (!nginxPath) nginxNote = 'not installed';
    else {
      try {
        const prefix = join(tmpRoot, 'nginx');
        await mkdir(join(prefix, 'logs'), { recursive: true });
        const port = await freePort();
        const conf = join(prefix, 'nginx.conf');
        // as root, nginx's worker would run as nobody, who cannot read our 0700 temp dir
        const user = process.getuid?.() === 0 ? 'user root;\n' : '';
        await writeFile(conf, `${user}worker_processes 1;\ndaemon off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  sendfile on;\n  client_body_temp_path ${prefix}/tmp;\n  proxy_temp_path ${prefix}/tmp;\n  fastcgi_temp_path ${prefix}/tmp;\n  uwsgi_temp_path ${prefix}/tmp;\n  scgi_temp_path ${prefix}/tmp;\n  server {\n    listen 127.0.0.1:${port};\n    root ${join(repoDir, 'public')};\n  }\n}\n`);
        await mkdir(join(prefix, 'tmp'), { recursive: true });
        const child = spawn(nginxPath, ['-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
        children.add(child);
        child.once('exit', () => children.delete(child));
        started.push(child);
        nginx = { url: `http://127.0.0.1:${port}` };
        await waitForBody(`${nginx.url}/25b.txt`, small, 10_000);
      } catch (e) {
        nginx = null;
        nginxNote = `could not start: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
      }
    }
    const out = { nginx: nginxNote ?? 'measured', sizes: {} };
    for (const [label, file, body] of [['100 KB', '100k.txt', big], ['25 B', '25b.txt', small], ['2 MiB', '2m.txt', mib2], ['10 MiB', '10m.txt', mib10]]) {
      const zvUrl = `${base}/static/${NS}/${file}`;
      for (const u of [zvUrl, `${sirvSrv.url}/${file}`, ...(nginx ? [`${nginx.url}/${file}`] : [])]) {
        const r = await getText(u);
        if (r.status !== 200 || r.body !== body) throw new Error(`${u} answered ${r.status} with a different body`);
      }
      const sirvBefore = await load(`sirv ${label}`, `${sirvSrv.url}/${file}`);
      const zvRun = await load(`zerverless ${label}`, zvUrl);
      const sirvAfter = await load(`sirv ${label}`, `${sirvSrv.url}/${file}`);
      const ngRun = nginx ? await load(`nginx ${label}`, `${nginx.url}/${file}`) : null;
      const sirvRps = (sirvBefore.rps + sirvAfter.rps) / 2;
      out.sizes[label] = {
        zerverless: zvRun,
        sirv: { before: sirvBefore, after: sirvAfter, rps: sirvRps },
        nginx: ngRun,
        vsSirv: zvRun.rps / sirvRps,
        vsNginx: ngRun ? zvRun.rps / ngRun.rps : null,
      };
    }
    return out;
  } finally {
    for (const c of started) await stopChild(c).catch(() => undefined);
  }
}

// The sync that adds a docker function (build from a local base image, start, route).
async function rowDocker() {
  const BASE = process.env.BENCH_SCALE_DOCKER_BASE || 'zv-busybox:test';
  try {
    execFileSync('docker', ['image', 'inspect', BASE], { stdio: 'ignore' });
  } catch {
    return { notMeasured: `no Docker engine or no local image ${BASE} (the test suite makes it; builds never pull)` };
  }
  // not 'dock': the docker e2e tests look for containers of dock/dock
  const NS = 'zvbench-dock';
  const repoDir = join(tmpRoot, 'docker-repo');
  const withDocker = () => [...manifestHead('dock', NS), '  functions:', ...luaFn('/lua', 'lua'),
    '    - path: /web', '      runtime: docker', '      dockerfile: ./svc/Dockerfile', '      context: ./svc', '      timeout: 10s', ''].join('\n');
  const without = [...manifestHead('dock', NS), '  functions:', ...luaFn('/lua', 'lua'), ''].join('\n');
  await newRepo(repoDir, { 'zerverless.yaml': without });
  const s = await rowServer('docker');
  try {
    const base = s.zv.url;
    await registerApp(base, { name: 'dock', namespace: NS, repoDir });
    const st = await waitSettled(base, 'dock', NS, 120_000);
    if (st.status !== 'synced') throw new Error(`first sync ended '${st.status}': ${st.message}`);
    const rounds = [];
    for (let i = 0; i < CONFIG.rounds; i++) {
      log(`docker: the sync that adds a docker function, round ${i + 1}…`);
      const nonce = `${Date.now()}-${i}`;
      const page = `docker ${nonce}\n`;
      const g = s.gitCount();
      const t = await commit(repoDir, {
        'zerverless.yaml': withDocker(),
        'svc/Dockerfile': `FROM ${BASE}\nCOPY www /www\nCMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]\n`,
        'svc/www/web/index.html': page,
      }, `bench: add docker ${i + 1}`);
      await syncApp(base, 'dock', NS);
      const tSync = performance.now();
      const tServed = await waitForBody(`${base}/${NS}/web/index.html`, page, 60_000).catch(() => null);
      rounds.push({ syncMs: tSync - t, servedMs: tServed === null ? null : tServed - t, gitProcesses: s.gitCount() - g });
      await commit(repoDir, { 'zerverless.yaml': without, svc: null }, `bench: remove docker ${i + 1}`);
      await syncApp(base, 'dock', NS);
    }
    await api(base, 'DELETE', `/dock?namespace=${NS}`);
    return { rounds };
  } finally {
    await stopChild(s.zv.child);
    // A replaced container drains before it goes and an image waits 10 minutes: the server is gone
    // by then, so remove what this server (its instance label, a hash of its data dir) left, now
    // rather than when the bench exits (lib.mjs does it then for every server).
    removeDockerObjects([instanceOf(s.dataDir)]);
  }
}

const RUNNERS = { site: rowSite, git: rowGit, js: rowJs, python: rowPython, cold: rowCold, apps: rowApps, reqs: rowReqs, static: rowStatic, docker: rowDocker,
  webhooks: () => rowWebhooks({ rowServer, tmpRoot, newRepo, manifestHead, luaFn, log, config: CONFIG }),
};

// --- the table --------------------------------------------------------------------------------

const sec = (msv) => (msv === null || msv === undefined || Number.isNaN(msv) ? '–' : msv < 1000 ? `${Math.round(msv)} ms` : `${(msv / 1000).toFixed(msv < 10_000 ? 2 : 1)} s`);
const range = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined);
  if (!v.length) return '–';
  const sp = spread(v);
  return sp.n === 1 ? sec(sp.median) : `${sec(sp.median)} (${sec(sp.min)}–${sec(sp.max)}, ${sp.n} rounds)`;
};
const counts = (xs) => {
  const u = [...new Set(xs)].sort((a, b) => a - b);
  return u.length === 1 ? String(u[0]) : `${u[0]}–${u[u.length - 1]}`;
};
const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
const gb = (b) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : mb(b));
const mem = (m) => `${gb(m.rssBytes)} RSS (${gb(m.pssBytes)} PSS) in ${m.processes} process${m.processes === 1 ? '' : 'es'}`;
const ratio = (x) => (x === null || x === undefined ? '–' : `${x.toFixed(2)}×`);

function tableRows(results) {
  const rows = [];
  const failed = (name, label, then) => {
    const r = results[name];
    if (!r) return false;
    if (r.error) rows.push([label, `failed: ${r.error.split('\n')[0].slice(0, 200)}`, then]);
    else if (r.notMeasured) rows.push([label, `not measured: ${r.notMeasured}`, then]);
    else if (r.skipped) rows.push([label, `skipped: ${r.skipped}`, then]);
    else return null;
    return true;
  };
  if (results.site && failed('site', `1 file changed in a ${CONFIG.files.toLocaleString('en-US')}-file static site: sync`, '14–30 s; +79 MB artifact per commit') === null) {
    const r = results.site;
    const growth = r.change.map((c) => c.dataDirGrowth);
    const top = Object.entries(r.change[r.change.length - 1].writtenByDir).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${mb(v)}`).join(', ');
    rows.push([`1 file changed in a ${r.files.toLocaleString('en-US')}-file static site (${mb(r.siteBytes)}): sync`,
      `${range(r.change.map((c) => c.syncMs))}; served after ${range(r.change.map((c) => c.servedMs))}; written ${counts(r.change.map((c) => Math.round(c.written / 1e5) / 10))} MB per commit (${top}), data dir +${growth.map(mb).join(', +')}; ${counts(r.change.map((c) => c.gitProcesses))} git processes`,
      '14–30 s; +79 MB artifact per commit']);
    const clone = r.first.cloneMs ? `; \`git clone --bare\` of the same URL ${r.first.cloneMs.map(sec).join(' before, ')} after` : '';
    rows.push(['first sync of that site', `${sec(r.first.ms)}${clone}; data dir ${mb(r.first.dataDir.total)}; ${r.first.gitProcesses} git processes`, '68 s']);
    const ls = r.noop.every((c) => c.lsRemoteMs !== undefined) ? `; a bare \`git ls-remote\` of the same URL ${range(r.noop.map((c) => c.lsRemoteMs))}` : '';
    rows.push(['sync when the head has not moved (that site)', `${range(r.noop.map((c) => c.ms))}${ls}; ${counts(r.noop.map((c) => c.gitProcesses))} git processes`, '5–15 s']);
  }
  if (results.git && failed('git', 'git processes per sync of a one-function repo', '9; sync 0.4–1 s') === null) {
    const r = results.git;
    rows.push(['git processes per sync of a one-function repo', `${counts(r.rounds.map((x) => x.gitProcesses))} per sync of a new commit (${r.noop.length ? `${counts(r.noop.map((x) => x.gitProcesses))} with the head unmoved, ` : ''}${r.first.gitProcesses} for the first); sync ${range(r.rounds.map((x) => x.syncMs))}; commit → served ${range(r.rounds.map((x) => x.servedMs))}`, '9; sync 0.4–1 s; commit → served']);
  }
  if (results.js && failed('js', `${CONFIG.js.toLocaleString('en-US')} JS functions: idle RSS / restart to /healthz`, '1.3 GB / 85 s') === null) {
    const r = results.js;
    rows.push([`${r.functions.toLocaleString('en-US')} JS functions: idle memory / restart`,
      `after the sync ${mem(r.idleAfterSync)}; after a restart ${mem(r.idleAfterRestart)}; after one request to each ${mem(r.idleAfterAll)}; restart to /healthz ${range(r.restarts.map((x) => x.healthzMs))}, to a function ${range(r.restarts.map((x) => x.functionMs))}; first sync ${sec(r.syncMs)}`,
      '1.3 GB / 85 s']);
  }
  if (results.python && failed('python', `${CONFIG.py} Python functions: idle memory`, '5.1 GB RSS (3.5 GB PSS) in 601 processes') === null) {
    const r = results.python;
    rows.push([`${r.functions} Python functions: idle memory`, `after the sync ${mem(r.idleAfterSync)}; after one request to each (20 at a time, in ${sec(r.allOnceMs)}) ${mem(r.idleAfterAll)}; first sync ${sec(r.syncMs)}`, '5.1 GB RSS (3.5 GB PSS) in 601 processes']);
  }
  if (results.cold && failed('cold', `cold start (first request − warm), ${CONFIG.cold} functions per runtime: JS / Lua / Python`, 'JS ≤ 5 ms, Lua ≤ 5 ms, Python ≤ 100 ms') === null) {
    const r = results.cold;
    const ms1 = (x) => (x < 10 ? `${x.toFixed(1)} ms` : sec(x));
    const part = (m) => ['js', 'lua', 'python'].map((rt) => `${ms1(m[rt].cold.median)} (max ${ms1(m[rt].cold.max)}, CPU ${ms1(m[rt].cpuMs)})`).join(' / ');
    const firsts = (m) => ['js', 'lua', 'python'].map((rt) => ms1(m[rt].first.median)).join(' / ');
    rows.push([`cold start (first request − warm), ${r.functions} functions per runtime: JS / Lua / Python`,
      `after a restart ${part(r.restart)}, first request ${firsts(r.restart)}; after an idle eviction (--function-idle ${r.functionIdle}) ${part(r.idle)}, first request ${firsts(r.idle)} (medians)`,
      'JS ≤ 5 ms, Lua ≤ 5 ms, Python ≤ 100 ms']);
  }
  if (results.apps && failed('apps', `${CONFIG.apps.toLocaleString('en-US')} apps on ${CONFIG.repos} repos: registration / polling`, '459 s to register; poll period ~3× the interval') === null) {
    const r = results.apps;
    const p = r.pollPeriodSec;
    rows.push([`${r.apps.toLocaleString('en-US')} apps on ${r.repos} repos: registration / polling`,
      `${sec(r.registeredMs)} to register (${CONFIG.batch} in flight), all settled after ${sec(r.syncedMs)} (${Object.entries(r.statuses).map(([k, v]) => `${v} ${k}`).join(', ')}); poll period ${p ? `${p.median.toFixed(1)} s = ${ratio(p.median / r.pollIntervalSec)} the ${r.pollIntervalSec} s interval (repos ${p.min.toFixed(1)}–${p.max.toFixed(1)} s, ${r.reposPolled} of ${r.repos} polled)` : 'no poll seen'} over ${r.windowSec.toFixed(0)} s; CPU ${r.cpuPercent.server.toFixed(1)} % of a core (server) + ${r.cpuPercent.children.toFixed(1)} % (git children); ${mem(r.memory)}`,
      '459 s to register; poll period ~3× the interval']);
  }
  if (results.reqs && failed('reqs', 'req/s vs node:http: JS / Lua / Python', '0.31 / 0.17 / 0.05') === null) {
    const r = results.reqs;
    rows.push(['req/s vs node:http: JS / Lua / Python', `${ratio(r.js)} / ${ratio(r.lua)} / ${ratio(r.python)} (from \`npm run bench\`, ${r.date})`, '0.31 / 0.17 / 0.05']);
  }
  if (results.static && failed('static', 'static 100 KB vs sirv / nginx (25 B too)', '0.93× / 0.43×') === null) {
    const r = results.static;
    const part = (label) => {
      const x = r.sizes[label];
      return `${label}: ${ratio(x.vsSirv)} sirv / ${x.vsNginx === null ? `nginx ${r.nginx}` : `${ratio(x.vsNginx)} nginx`} (${Math.round(x.zerverless.rps).toLocaleString('en-US')} vs ${Math.round(x.sirv.rps).toLocaleString('en-US')} req/s)`;
    };
    rows.push(['static 100 KB vs sirv / nginx (25 B, 2 MiB, 10 MiB too)', ['100 KB', '25 B', '2 MiB', '10 MiB'].filter((l) => r.sizes[l]).map(part).join('; '), '0.93× / 0.43×']);
  }
  if (results.docker && failed('docker', 'docker function: sync that adds it', '~3.5 s') === null) {
    const r = results.docker;
    rows.push(['docker function: sync that adds it', `${range(r.rounds.map((x) => x.syncMs))}; served after ${range(r.rounds.map((x) => x.servedMs))}; ${counts(r.rounds.map((x) => x.gitProcesses))} git processes`, '~3.5 s']);
  }
  if (results.webhooks && failed('webhooks', 'a push hook to 1,000 applications on one repository', '≤ 1 s; within the cap') === null) {
    rows.push(webhooksTableRow(results.webhooks, { range }));
  }
  return rows;
}

function printTable(result) {
  const out = ['', `zerverless scale bench — ${result.meta.date}  node ${result.meta.node}, ${result.meta.platform}, ${result.meta.cpus} CPUs (${result.meta.cpuModel})`, ''];
  out.push('| measure | now | then |', '|---|---|---|');
  for (const [a, b, c] of tableRows(result.rows)) out.push(`| ${a} | ${b} | ${c} |`);
  out.push('', `results: ${RESULTS}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// --- main -------------------------------------------------------------------------------------

let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.all([...children].map((c) => stopChild(c).catch(() => undefined)));
    if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true }).catch(() => undefined);
  })();
  return cleaning;
}

/** Parses `--only a,b` / `--only=a,b` (repeatable) out of argv; no --only means every row. */
export function selectRows(argv) {
  const picked = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') picked.push(...String(argv[++i] ?? '').split(','));
    else if (a.startsWith('--only=')) picked.push(...a.slice(7).split(','));
  }
  const names = picked.map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!ROWS.includes(n)) throw new Error(`--only: unknown row '${n}' (rows: ${ROWS.join(', ')})`);
  return names.length ? ROWS.filter((r) => names.includes(r)) : [...ROWS];
}

export async function runScale(argv) {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.removeAllListeners(sig); // run.mjs's handlers: its cleanup would exit before ours is done
    process.once(sig, () => {
      process.stderr.write(`\nscale: ${sig}, cleaning up…\n`);
      cleanup().finally(() => process.exit(130));
    });
  }
  const started = performance.now();
  try {
    const rows = selectRows(argv);
    if (!existsSync(join(ROOT, 'dist', 'server', 'server.js'))) throw new Error('dist/ is missing: run `npm run bench -- --scale` (it builds first) or `npm run build`');
    tmpRoot = await mkdtemp(join(tmpdir(), 'zv-scale-'));
    await makeGitShim(tmpRoot);
    const results = {};
    for (const row of rows) {
      log(`row ${row}…`);
      const t = performance.now();
      try {
        results[row] = await RUNNERS[row]();
      } catch (e) {
        log(`row ${row} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        results[row] = { error: e instanceof Error ? e.message : String(e) };
      }
      results[row].rowSec = Math.round((performance.now() - t) / 100) / 10;
      log(`row ${row} took ${results[row].rowSec} s`);
    }
    const result = {
      meta: {
        ...runMeta(),
        statusReadFailures,
        config: CONFIG,
        totalSec: Math.round((performance.now() - started) / 100) / 10,
      },
      rows: results,
      table: tableRows(results),
    };
    await mkdir(dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    printTable(result);
    if (Object.values(results).some((r) => r.error)) process.exitCode = 1;
  } catch (e) {
    process.stderr.write(`\nscale bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
