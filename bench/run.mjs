// zerverless benchmark (`npm run bench`): throughput and latency of each kind of target relative to a
// bare node:http server measured in the same run, and how long a git commit takes to be served
// (manual sync and poll). See docs/benchmarks.md.
//
// Processes: this one runs the load generator (autocannon) and the git repository; the zerverless
// server (bench/server.mjs, compiled code from ../dist) and the baseline (bench/baseline.mjs) each run
// in their own child process, so no two of them share an event loop.
//
// Settings (environment):
//   BENCH_DURATION       seconds of measured load per target (default 5)
//   BENCH_WARMUP         seconds of unmeasured warm-up load before each target (default 1)
//   BENCH_CONNECTIONS    concurrent keep-alive connections (default 32)
//   BENCH_ROUNDS         commits measured per sync path (default 5)
//   BENCH_POLL_INTERVAL  --poll-interval of the server used for the poll path (default 500ms)
//   BENCH_TARGETS        comma list to run a subset of lua,js,python,static (default all)
//   BENCH_LOG_LEVEL      log level of the zerverless server, logs go to stderr (default warn)
//
// `--scale [--only <row>]` runs the scale table of issue 10 instead (bench/scale.mjs), `--updates`
// the zero-failed-requests-during-updates measure (bench/updates.mjs).
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import {
  HERE, ROOT, api, children, commit, envNumber, getText, git, parseDurationMs, readToken, runMeta, startChild, stopChild, treeCpuSeconds, waitForBody,
} from './lib.mjs';

const RESULTS = join(HERE, 'results', 'latest.json');
const CONFIG = {
  durationSec: envNumber('BENCH_DURATION', 5, { min: 1 }),
  warmupSec: envNumber('BENCH_WARMUP', 1, { min: 0 }),
  connections: envNumber('BENCH_CONNECTIONS', 32, { min: 1, integer: true }),
  rounds: envNumber('BENCH_ROUNDS', 5, { min: 1, integer: true }),
  pollInterval: process.env.BENCH_POLL_INTERVAL || '500ms',
  targets: (process.env.BENCH_TARGETS || 'lua,js,python,static').split(',').map((s) => s.trim()).filter(Boolean),
  logLevel: process.env.BENCH_LOG_LEVEL || 'warn',
};

const NS = 'bench';
const APP = 'bench';

// --- the application under test -------------------------------------------------------------

const BODIES = {
  lua: 'Hello from Lua',
  js: 'Hello from JavaScript',
  python: 'Hello from Python',
  static: 'Hello from a static file\n',
};
const TARGETS = {
  lua: { path: `/${NS}/lua`, body: BODIES.lua },
  js: { path: `/${NS}/js`, body: BODIES.js },
  python: { path: `/${NS}/python`, body: BODIES.python },
  static: { path: `/static/${NS}/hello.txt`, body: BODIES.static },
};
for (const t of CONFIG.targets) if (!TARGETS[t]) throw new Error(`BENCH_TARGETS: unknown target '${t}' (known: ${Object.keys(TARGETS).join(', ')})`);

const luaCode = (body) => `function handle(req)\n  return {status=200, body=${JSON.stringify(body)}}\nend\n`;

function manifest({ luaBody = BODIES.lua, python = true } = {}) {
  const indent = (s, n) => s.split('\n').map((l) => (l ? ' '.repeat(n) + l : l)).join('\n');
  return [
    'apiVersion: zerverless.io/v1',
    'kind: Application',
    'metadata:',
    `  name: ${APP}`,
    `  namespace: ${NS}`,
    'spec:',
    '  functions:',
    '    - path: /lua',
    '      runtime: lua',
    '      code: |',
    indent(luaCode(luaBody), 8).trimEnd(),
    '    - path: /js',
    '      runtime: js',
    '      codeFile: handlers/hello.js',
    ...(python ? ['    - path: /python', '      runtime: python', '      codeFile: handlers/hello.py'] : []),
    '  static:',
    '    dir: ./static',
    '',
  ].join('\n');
}

const REPO_FILES = {
  'handlers/hello.js': `export function handle(req) {\n  return ${JSON.stringify(BODIES.js)};\n}\n`,
  'handlers/hello.py': `def handle(req):\n    return ${JSON.stringify(BODIES.python)}\n`,
  'static/hello.txt': BODIES.static,
};

// --- HTTP helpers ---------------------------------------------------------------------------

// The API needs a token: a new data dir's admin token is written to <data dir>/admin-token.

async function waitSettled(base, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    const r = await api(base, 'GET', `/${APP}?namespace=${NS}`);
    last = r.body;
    if (r.status === 200 && r.body.status !== 'pending' && r.body.status !== 'syncing') return r.body;
    await sleep(50);
  }
  throw new Error(`application did not finish its first sync in ${timeoutMs / 1000} s; last status ${JSON.stringify(last)}`);
}

async function register(base, repoDir) {
  const r = await api(base, 'POST', '', { name: APP, namespace: NS, source: { repoURL: `file://${repoDir}`, branch: 'main' } });
  if (r.status !== 201) throw new Error(`registering the application answered ${r.status}: ${JSON.stringify(r.body)}`);
  return waitSettled(base);
}

async function sync(base) {
  const r = await api(base, 'POST', `/${APP}/sync?namespace=${NS}`);
  if (r.status !== 200) throw new Error(`sync answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}
// --- load -----------------------------------------------------------------------------------

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function cannon(url, durationSec, expectBody, onLatency) {
  return new Promise((resolve, reject) => {
    const inst = autocannon({ url, connections: CONFIG.connections, duration: durationSec, timeout: 10, expectBody }, (err, res) => (err ? reject(err) : resolve(res)));
    // autocannon's own histogram has 1 ms resolution; record the exact (sub-ms) times ourselves.
    if (onLatency) inst.on('response', (_client, status, _bytes, ms) => { if (status >= 200 && status < 300) onLatency(ms); });
  });
}

/** Warm-up, then a measured run: req/s over the measured window, p50/p99 in ms (sub-ms precision). */
async function load(label, url, expectBody, serverPid) {
  process.stderr.write(`  load ${label} (${CONFIG.warmupSec ? `${CONFIG.warmupSec} s warm-up + ` : ''}${CONFIG.durationSec} s, ${CONFIG.connections} connections)…\n`);
  if (CONFIG.warmupSec > 0) await cannon(url, CONFIG.warmupSec, expectBody, null);
  let lat = new Float64Array(1 << 16);
  let n = 0;
  const cpu0 = treeCpuSeconds(serverPid);
  const res = await cannon(url, CONFIG.durationSec, expectBody, (ms) => {
    if (n === lat.length) {
      const bigger = new Float64Array(lat.length * 2);
      bigger.set(lat);
      lat = bigger;
    }
    lat[n++] = ms;
  });
  const cpu1 = treeCpuSeconds(serverPid);
  const sorted = lat.subarray(0, n).sort();
  const ok = res['2xx'] - (res.mismatches ?? 0);
  const out = {
    rps: ok / res.duration,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    requests: res.requests.total,
    // CPU (user + system, every thread and child process of the server) per answered request: the
    // server's cost, which the load generator on the same cores does not blur as much as req/s.
    cpuUs: cpu0 !== null && cpu1 !== null && res.requests.total > 0 ? ((cpu1 - cpu0) * 1e6) / res.requests.total : null,
    ok,
    non2xx: res.non2xx,
    mismatches: res.mismatches ?? 0,
    errors: res.errors,
    timeouts: res.timeouts,
    durationSec: res.duration,
  };
  if (out.non2xx || out.mismatches || out.errors || out.timeouts) {
    process.stderr.write(`  warning: ${label}: ${out.non2xx} non-2xx, ${out.mismatches} wrong bodies, ${out.errors} errors, ${out.timeouts} timeouts\n`);
  }
  await sleep(300); // let the sockets of this run close before the next one
  return out;
}

// --- sync latency ---------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const summarize = (rounds) => ({ medianMs: median(rounds.map((r) => r.servedMs)), maxMs: Math.max(...rounds.map((r) => r.servedMs)), rounds });

let luaVersion = 0;
const nextLuaBody = (tag) => `Hello from Lua, ${tag} ${++luaVersion}`;

/** commit → POST …/sync (which answers when the sync has finished) → first GET with the new body. */
async function measureManualSync(base, repoDir, python) {
  const rounds = [];
  for (let i = 0; i < CONFIG.rounds; i++) {
    const body = nextLuaBody('manual');
    const t0 = await commit(repoDir, { 'zerverless.yaml': manifest({ luaBody: body, python }) }, `bench: manual ${i + 1}`);
    const status = await sync(base);
    const tSync = performance.now();
    if (status.status !== 'synced') throw new Error(`manual sync ${i + 1} ended '${status.status}': ${status.message}`);
    const tServed = await waitForBody(`${base}${TARGETS.lua.path}`, body, 30_000);
    rounds.push({ syncMs: tSync - t0, servedMs: tServed - t0 });
    await sleep(200);
  }
  return summarize(rounds);
}

/** commit → (the server's poll notices, syncs) → first GET with the new body; GET every ~5 ms. */
async function measurePoll(base, repoDir, python, pollMs) {
  const rounds = [];
  for (let i = 0; i < CONFIG.rounds; i++) {
    // a random pause so commits land at random points of the poll cycle
    await sleep(200 + Math.random() * pollMs);
    const body = nextLuaBody('poll');
    const t0 = await commit(repoDir, { 'zerverless.yaml': manifest({ luaBody: body, python }) }, `bench: poll ${i + 1}`);
    const tServed = await waitForBody(`${base}${TARGETS.lua.path}`, body, 60_000);
    rounds.push({ servedMs: tServed - t0 });
  }
  return summarize(rounds);
}
// --- report ---------------------------------------------------------------------------------

const int = (n) => Math.round(n).toLocaleString('en-US');
const ms = (n) => `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)} ms`;
const ratio = (n) => `${n.toFixed(2)}×`;

function printReport(result) {
  const { meta, baseline, targets, sync: s } = result;
  const out = [];
  out.push('');
  out.push(`zerverless bench — ${meta.date}  node ${meta.node}, ${meta.platform}, ${meta.cpus} CPUs (${meta.cpuModel})`);
  out.push(`${meta.connections} connections, ${meta.durationSec} s per target after ${meta.warmupSec} s warm-up; server and baseline in their own processes`);
  out.push('');
  const us = (n) => (n === null ? '–' : `${n.toFixed(1)} µs`);
  const rows = [['target', 'req/s', '', 'p50', '', 'p99', '', 'CPU/req', '']];
  rows.push(['node:http', int(baseline.rps), '(baseline)', ms(baseline.p50), '', ms(baseline.p99), '', us(baseline.cpuUs), '']);
  for (const [name, t] of Object.entries(targets)) {
    if (t.skipped) rows.push([name, `skipped: ${t.skipped}`, '', '', '', '', '', '', '']);
    else {
      rows.push([
        name, int(t.rps), `(${ratio(t.ratio.rps)} baseline)`, ms(t.p50), `(${ratio(t.ratio.p50)})`, ms(t.p99), `(${ratio(t.ratio.p99)})`,
        us(t.cpuUs), t.ratio.cpuUs === null ? '' : `(${ratio(t.ratio.cpuUs)})`,
      ]);
    }
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.filter((r) => !String(r[1]).startsWith('skipped')).map((r) => String(r[c]).length)));
  const right = new Set([1, 3, 5, 7]);
  for (const r of rows) {
    if (String(r[1]).startsWith('skipped')) out.push(`  ${r[0].padEnd(widths[0])}  ${r[1]}`);
    else out.push(`  ${r.map((cell, c) => (right.has(c) ? String(cell).padStart(widths[c]) : String(cell).padEnd(widths[c]))).join('  ').trimEnd()}`);
  }
  const b = baseline.runs.map((r) => r.rps);
  out.push(`  ratios: against the mean of the baseline runs just before and after each target; the ${b.length} baseline runs`);
  out.push(`  ranged ${int(Math.min(...b))}–${int(Math.max(...b))} req/s (±${((Math.max(...b) - Math.min(...b)) / 2 / baseline.rps * 100).toFixed(0)}% of their mean: that is this machine's noise)`);
  if (baseline.cpuUs !== null) out.push('  CPU/req: user + system CPU of the server\'s whole process tree (threads, sandboxed workers) per request');
  out.push('');
  out.push(`commit → new response served (${meta.rounds} round${meta.rounds === 1 ? '' : 's'})`.padEnd(49) + 'median' + 'max'.padStart(9));
  const line = (label, x) => out.push(`  ${label.padEnd(44)}${ms(x.medianMs).padStart(9)}${ms(x.maxMs).padStart(9)}`);
  if (s.manual) line('manual sync (POST …/sync, then GET)', s.manual);
  if (s.manual) out.push(`  ${'  of which the sync call'.padEnd(44)}${ms(median(s.manual.rounds.map((r) => r.syncMs))).padStart(9)}${ms(Math.max(...s.manual.rounds.map((r) => r.syncMs))).padStart(9)}`);
  if (s.poll) line(`poll (--poll-interval ${s.poll.pollInterval})`, s.poll);
  out.push('');
  out.push(`results: ${RESULTS}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// --- main -----------------------------------------------------------------------------------

let tmpRoot = null;
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.all([...children].map((c) => stopChild(c).catch(() => undefined)));
    if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true }).catch(() => undefined);
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    process.stderr.write(`\nbench: ${sig}, cleaning up…\n`);
    cleanup().finally(() => process.exit(130));
  });
}

async function main() {
  const started = performance.now();
  if (!existsSync(join(ROOT, 'dist', 'server', 'server.js'))) throw new Error('dist/ is missing: run `npm run bench` (it builds first) or `npm run build`');
  const pollMs = parseDurationMs(CONFIG.pollInterval, 'BENCH_POLL_INTERVAL');

  tmpRoot = await mkdtemp(join(tmpdir(), 'zv-bench-'));
  const repoDir = join(tmpRoot, 'repo');
  await mkdir(repoDir);
  git(repoDir, 'init', '-q', '-b', 'main');
  await commit(repoDir, { ...REPO_FILES, 'zerverless.yaml': manifest() }, 'bench: initial');

  process.stderr.write(`bench: starting the baseline and the zerverless server (temp dir ${tmpRoot})…\n`);
  const [baseSrv, zv] = await Promise.all([
    startChild('baseline', 'baseline.mjs'),
    startChild('zerverless', 'server.mjs', ['--data-dir', join(tmpRoot, 'data-load'), '--poll-interval', '1h', '--log-level', CONFIG.logLevel]),
  ]);
  await readToken(zv.url, join(tmpRoot, 'data-load'));

  // Register the repository; a missing Python sandbox (bwrap) fails the whole sync, so drop Python then.
  let python = true;
  const skipped = {};
  let status = await register(zv.url, repoDir);
  if (status.status === 'error' && /python|RUNTIME_UNAVAILABLE/i.test(status.message)) {
    skipped.python = `Python runtime unavailable (${status.message.split('\n')[0]})`;
    python = false;
    await commit(repoDir, { 'zerverless.yaml': manifest({ python }) }, 'bench: without python');
    status = await sync(zv.url);
  }
  if (status.status !== 'synced') throw new Error(`the application is '${status.status}': ${status.message}`);
  process.stderr.write(`bench: application synced at ${status.source.commit.slice(0, 12)}\n`);

  // Every target must answer the expected body before we put load on it.
  const check = async (url, body) => {
    const r = await getText(url);
    if (r.status !== 200 || r.body !== body) throw new Error(`${url} answered ${r.status} ${JSON.stringify(r.body.slice(0, 300))}, expected ${JSON.stringify(body)}`);
  };
  await check(baseSrv.url, 'Hello from node:http');
  for (const t of CONFIG.targets) if (!skipped[t]) await check(`${zv.url}${TARGETS[t].path}`, TARGETS[t].body);

  // Load: the baseline runs before the first target, between targets and after the last one; each
  // target's ratios are against the mean of the two baseline runs around it, so slow drift of a noisy
  // machine cancels out. The baseline figure printed is the mean of all baseline runs.
  const BASE_BODY = 'Hello from node:http';
  const baselineRuns = [await load('baseline', baseSrv.url, BASE_BODY, baseSrv.pid)];
  const targets = {};
  for (const t of CONFIG.targets) {
    if (skipped[t]) {
      targets[t] = { skipped: skipped[t] };
      continue;
    }
    const r = await load(t, `${zv.url}${TARGETS[t].path}`, TARGETS[t].body, zv.pid);
    const before = baselineRuns[baselineRuns.length - 1];
    const after = await load('baseline', baseSrv.url, BASE_BODY, baseSrv.pid);
    baselineRuns.push(after);
    const ref = (k) => (before[k] + after[k]) / 2;
    targets[t] = {
      ...r,
      ratio: { rps: r.rps / ref('rps'), p50: r.p50 / ref('p50'), p99: r.p99 / ref('p99'), cpuUs: r.cpuUs !== null && before.cpuUs !== null ? r.cpuUs / ref('cpuUs') : null },
    };
  }
  await stopChild(baseSrv.child);
  const mean = (k) => baselineRuns.reduce((a, r) => a + r[k], 0) / baselineRuns.length;
  const baseline = { rps: mean('rps'), p50: mean('p50'), p99: mean('p99'), cpuUs: baselineRuns[0].cpuUs === null ? null : mean('cpuUs'), runs: baselineRuns };

  // Commit → served, manual sync, on the same server (its poll is 1 h, so only our sync applies it).
  process.stderr.write(`bench: commit → sync → served, ${CONFIG.rounds} rounds…\n`);
  const manual = await measureManualSync(zv.url, repoDir, python);
  await stopChild(zv.child);

  // Commit → served by the poll: a fresh server with a short poll interval (not running during the load).
  process.stderr.write(`bench: commit → poll (${CONFIG.pollInterval}) → served, ${CONFIG.rounds} rounds…\n`);
  const zvPoll = await startChild('zerverless-poll', 'server.mjs', ['--data-dir', join(tmpRoot, 'data-poll'), '--poll-interval', CONFIG.pollInterval, '--log-level', CONFIG.logLevel]);
  await readToken(zvPoll.url, join(tmpRoot, 'data-poll'));
  const pstatus = await register(zvPoll.url, repoDir);
  if (pstatus.status !== 'synced') throw new Error(`the poll server's application is '${pstatus.status}': ${pstatus.message}`);
  const poll = { pollInterval: CONFIG.pollInterval, pollIntervalMs: pollMs, ...(await measurePoll(zvPoll.url, repoDir, python, pollMs)) };
  await stopChild(zvPoll.child);

  const result = {
    meta: {
      ...runMeta(),
      connections: CONFIG.connections,
      durationSec: CONFIG.durationSec,
      warmupSec: CONFIG.warmupSec,
      rounds: CONFIG.rounds,
      totalSec: 0,
    },
    baseline,
    targets,
    sync: { manual, poll },
  };
  result.meta.totalSec = Math.round((performance.now() - started) / 100) / 10;
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  printReport(result);
}

if (process.argv.slice(2).includes('--updates')) {
  // `npm run bench -- --updates`: zero failed requests while every kind of target updates (bench/updates.mjs).
  const { runUpdates } = await import('./updates.mjs');
  try {
    await runUpdates();
  } catch (e) {
    process.stderr.write(`\nupdates bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
} else if (process.argv.slice(2).includes('--scale')) {
  // `npm run bench -- --scale [--only <row>]`: the issue-10 scale table (bench/scale.mjs).
  const { runScale } = await import('./scale.mjs');
  await runScale(process.argv.slice(2));
} else {
  try {
    await main();
  } catch (e) {
    process.stderr.write(`\nbench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
