// Zero failed requests during updates, measured under load (`npm run bench -- --updates`; issue 10,
// item 6). The real server (compiled, from ../dist, in its own process) serves four applications:
//   fns   a JS, a Lua and a Python function
//   dock  a docker function (busybox httpd CGI; the base image is imported locally, no registry)
//   site  a static site: a page and a 2 MiB file
//   svc   a Node service from apps/web (its code in a second repository, one tag per version)
// Constant keep-alive load runs on every target while a script commits a new version to each
// application's repository and syncs it, ROUNDS times. Every answer is checked: status 200 and a
// body that is exactly one version's (the static file by its sha256), never a mix, never an error,
// never a reset. Per target it prints the requests, the failures by kind, and p50/p99 latency of the
// requests that overlapped an update window (commit → sync answered + 1 s) and of the others.
//
// Settings (environment): BENCH_CONNECTIONS (32, spread over the targets), BENCH_UPDATE_ROUNDS (10),
// BENCH_UPDATE_PAUSE (2 s of quiet between rounds), BENCH_UPDATE_TARGETS (all: js,lua,python,docker,
// page,large,service), BENCH_LOG_LEVEL (warn). Results: bench/results/updates-latest.json.
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  HERE, ROOT, api, children, commit, envNumber, git, readToken, runMeta, startChild, stopChild,
} from './lib.mjs';

const RESULTS = join(HERE, 'results', 'updates-latest.json');
const CONFIG = {
  connections: envNumber('BENCH_CONNECTIONS', 32, { min: 1, integer: true }),
  rounds: envNumber('BENCH_UPDATE_ROUNDS', 10, { min: 1, integer: true }),
  pauseMs: envNumber('BENCH_UPDATE_PAUSE', 2, { min: 0 }) * 1000,
  targets: (process.env.BENCH_UPDATE_TARGETS || 'js,lua,python,docker,page,large,service').split(',').map((s) => s.trim()).filter(Boolean),
  logLevel: process.env.BENCH_LOG_LEVEL || 'warn',
};
const NS = 'upd';
const BASE_IMAGE = 'zv-busybox:test'; // the one test/support/docker.ts imports (same label and version)
const LARGE = 2 * 1024 * 1024;
/** After a sync answered, old instances may still finish requests they took: counted as "during". */
const WINDOW_TAIL_MS = 1000;

const log = (s) => process.stderr.write(`updates: ${s}\n`);

// --- what each version answers -------------------------------------------------------------------

const bodies = {
  js: (v) => `js v${v}`,
  lua: (v) => `lua v${v}`,
  python: (v) => `python v${v}`,
  docker: (v) => `docker v${v}`,
  page: (v) => `<!doctype html><title>v${v}</title><p>page v${v}</p>\n`,
  large: (v) => largeFile(v),
  service: (v) => `web 1.0.${v}`,
};
const largeCache = new Map();
function largeFile(v) {
  let b = largeCache.get(v);
  if (!b) {
    b = Buffer.alloc(LARGE, `large v${v} `);
    largeCache.set(v, b);
  }
  return b;
}
const sha = (b) => createHash('sha256').update(b).digest('hex');

const TARGETS = {
  js: { app: 'fns', path: `/${NS}/js` },
  lua: { app: 'fns', path: `/${NS}/lua` },
  python: { app: 'fns', path: `/${NS}/python` },
  docker: { app: 'dock', path: `/${NS}/cgi-bin/v` },
  page: { app: 'site', path: `/static/${NS}/` },
  large: { app: 'site', path: `/static/${NS}/large.bin` },
  service: { app: 'svc', path: `/${NS}/web/` },
};
for (const t of CONFIG.targets) if (!TARGETS[t]) throw new Error(`BENCH_UPDATE_TARGETS: unknown target '${t}' (known: ${Object.keys(TARGETS).join(', ')})`);
const APPS = [...new Set(CONFIG.targets.map((t) => TARGETS[t].app))];
/** Which version a body is (or null: not one of them). Each answer names its version. */
function versionOf(target, body) {
  if (target === 'large') {
    const m = /^large v(\d+) /.exec(body.subarray(0, 32).toString('latin1'));
    if (!m) return null;
    const v = Number(m[1]);
    return body.length === LARGE && sha(body) === shaOf(v) ? v : null;
  }
  const text = body.toString('utf8');
  const m = /v(\d+)|1\.0\.(\d+)/.exec(text);
  if (!m) return null;
  const v = Number(m[1] ?? m[2]);
  return target === 'service' ? (text.startsWith(`${bodies.service(v)} `) ? v : null) : (text === bodies[target](v) ? v : null);
}
const shas = new Map();
const shaOf = (v) => {
  if (!shas.has(v)) shas.set(v, sha(largeFile(v)));
  return shas.get(v);
};

// --- the repositories ------------------------------------------------------------------------------

const head = (name) => ['apiVersion: zerverless.io/v1', 'kind: Application', 'metadata:', `  name: ${name}`, `  namespace: ${NS}`, 'spec:'];
const fnsFiles = (v) => ({
  'zerverless.yaml': [...head('fns'), '  functions:',
    '    - path: /js', '      runtime: js', '      codeFile: handlers/h.js',
    '    - path: /lua', '      runtime: lua', '      codeFile: handlers/h.lua',
    '    - path: /python', '      runtime: python', '      codeFile: handlers/h.py', ''].join('\n'),
  'handlers/h.js': `export function handle(req) {\n  return ${JSON.stringify(bodies.js(v))};\n}\n`,
  'handlers/h.lua': `function handle(req)\n  return {status=200, body=${JSON.stringify(bodies.lua(v))}}\nend\n`,
  'handlers/h.py': `def handle(req):\n    return ${JSON.stringify(bodies.python(v))}\n`,
});
const CGI = `#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf 'docker v%s' "$VERSION"\n`;
const dockFiles = (v) => ({
  'zerverless.yaml': [...head('dock'), '  functions:', '    - path: /cgi-bin/v', '      runtime: docker', '      dockerfile: ./svc/Dockerfile',
    '      context: ./svc', '      timeout: 10s', '      env:', `        VERSION: "${v}"`, ''].join('\n'),
  'svc/Dockerfile': `FROM ${BASE_IMAGE}\nCOPY www /www\nRUN chmod +x /www/cgi-bin/v\nCMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]\n`,
  'svc/www/cgi-bin/v': CGI,
});
const siteFiles = (v) => ({
  'zerverless.yaml': [...head('site'), '  static:', '    dir: ./public', ''].join('\n'),
  'public/index.html': bodies.page(v),
  'public/large.bin': largeFile(v),
});
const SERVICE_JS = (v) => `const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(200); return res.end('ok'); }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(${JSON.stringify(bodies.service(v))} + ' ' + req.url);
}).listen(Number(process.env.PORT), '127.0.0.1');
`;
const svcAppConfig = (url, v) => `#{
    name => web,
    version => <<"1.0.${v}">>,
    source => #{type => git, url => <<"${url}">>, ref => <<"v${v}">>},
    health => #{type => http, path => <<"/health">>, interval => 500, timeout => 2000},
    route => <<"/web">>,
    depends_on => []
}.
`;

async function newRepo(dir, files) {
  await mkdir(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  await commit(dir, files, 'v0');
}

/** The busybox base image of the docker tests (test/support/docker.ts), imported when missing. */
async function ensureBaseImage() {
  const { default: Dockerode } = await import('dockerode');
  const { default: tar } = await import('tar-fs');
  const docker = new Dockerode();
  try {
    const info = await docker.getImage(BASE_IMAGE).inspect();
    if (info.Config?.Labels?.['zerverless.test-base'] === '1') return;
  } catch (e) {
    if (e?.statusCode !== 404) throw e;
  }
  const root = await mkdtemp(join(tmpdir(), 'zv-rootfs-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'www', 'proc', 'sys', 'dev', 'root']) await mkdir(join(root, d));
    await chmod(join(root, 'tmp'), 0o1777);
    await copyFile('/bin/busybox', join(root, 'bin', 'busybox'));
    await chmod(join(root, 'bin', 'busybox'), 0o755);
    const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').map((s) => s.trim()).filter((s) => /^[a-z0-9_.[-]+$/.test(s) && s !== 'busybox');
    for (const a of applets) await symlink('busybox', join(root, 'bin', a)).catch(() => {});
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const out = await docker.importImage(tar.pack(root), { repo: 'zv-busybox', tag: 'test', changes: ['LABEL zerverless.test-base=1'] });
    await new Promise((resolve, reject) => {
      out.on('data', () => {});
      out.on('end', resolve);
      out.on('error', reject);
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

// --- load ------------------------------------------------------------------------------------------

/** One request on the connection's own keep-alive agent: outcome kind, version, start and end times. */
function once(agent, url, target) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const done = (kind, version = null) => resolve({ kind, version, t0, t1: performance.now() });
    const req = request(url, { agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => done(`response ${e.code ?? e.message}`));
      res.on('aborted', () => done('cut answer'));
      res.on('end', () => {
        if (!res.complete) return done('cut answer');
        const body = Buffer.concat(chunks);
        if (res.statusCode !== 200) return done(`status ${res.statusCode}${body.length < 400 ? ` ${(/"code":"([A-Z_]+)"/.exec(body.toString()) ?? [])[1] ?? ''}` : ''}`.trim());
        const v = versionOf(target, body);
        return v === null ? done('wrong body') : done('ok', v);
      });
    });
    req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => done(e.code === 'ECONNRESET' ? 'reset' : `error ${e.code ?? e.message}`));
    req.end();
  });
}

function startLoad(base, perTarget) {
  const results = Object.fromEntries(CONFIG.targets.map((t) => [t, []]));
  let stop = false;
  const loops = [];
  for (const t of CONFIG.targets) {
    for (let c = 0; c < perTarget; c++) {
      loops.push((async () => {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        try {
          while (!stop) results[t].push(await once(agent, `${base}${TARGETS[t].path}`, t));
        } finally {
          agent.destroy();
        }
      })());
    }
  }
  return { results, stop: async () => { stop = true; await Promise.all(loops); } };
}

// --- report ----------------------------------------------------------------------------------------

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const ms = (n) => (Number.isNaN(n) ? '–' : `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)} ms`);

function summarize(results, windows) {
  const out = {};
  for (const [t, rs] of Object.entries(results)) {
    const w = windows[TARGETS[t].app];
    const during = (r) => w.some(([a, b]) => r.t0 < b && r.t1 > a);
    const failures = {};
    const lat = { during: [], outside: [] };
    const versions = new Set();
    for (const r of rs) {
      if (r.kind !== 'ok') failures[r.kind] = (failures[r.kind] ?? 0) + 1;
      else versions.add(r.version);
      (during(r) ? lat.during : lat.outside).push(r.t1 - r.t0);
    }
    const q = (xs) => {
      const s = Float64Array.from(xs).sort();
      return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
    };
    out[t] = { requests: rs.length, failed: rs.length - rs.filter((r) => r.kind === 'ok').length, failures, versionsSeen: versions.size, during: q(lat.during), outside: q(lat.outside) };
  }
  return out;
}

function printReport(result) {
  const rows = [['target', 'requests', 'failed', 'failures by kind', 'versions', 'during: n', 'p50', 'p99', 'outside: n', 'p50', 'p99']];
  for (const [t, s] of Object.entries(result.targets)) {
    const kinds = Object.entries(s.failures).map(([k, n]) => `${k} ×${n}`).join(', ') || '–';
    rows.push([t, String(s.requests), String(s.failed), kinds, String(s.versionsSeen), String(s.during.n), ms(s.during.p50), ms(s.during.p99), String(s.outside.n), ms(s.outside.p50), ms(s.outside.p99)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = ['', `zerverless updates bench — ${result.meta.date}  node ${result.meta.node}, ${result.meta.cpus} CPUs`,
    `${result.meta.connectionsPerTarget} keep-alive connections per target; ${result.meta.rounds} rounds of a new version of every application (commit, then POST …/sync), ${result.meta.pauseMs / 1000} s apart`,
    `syncs: ${result.syncs.ok} synced, ${result.syncs.failed.length} not${result.syncs.failed.length ? ` (${result.syncs.failed.slice(0, 3).join('; ')})` : ''}; sync call median ${ms(result.syncs.medianMs)}, max ${ms(result.syncs.maxMs)}`, ''];
  for (const r of rows) lines.push(`  ${r.map((cell, c) => (c === 0 || c === 3 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')}`);
  lines.push('', `  "during": requests that overlapped an update window of their application (commit → sync answered + ${WINDOW_TAIL_MS / 1000} s)`, `results: ${RESULTS}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

// --- main ------------------------------------------------------------------------------------------

export async function runUpdates() {
  if (!existsSync(join(ROOT, 'dist', 'server', 'server.js'))) throw new Error('dist/ is missing: run `npm run bench -- --updates` (it builds first) or `npm run build`');
  const tmp = await mkdtemp(join(tmpdir(), 'zv-updates-'));
  const cleanup = async () => {
    await Promise.all([...children].map((c) => stopChild(c).catch(() => undefined)));
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.removeAllListeners(sig);
    process.once(sig, () => cleanup().finally(() => process.exit(130)));
  }
  try {
    if (APPS.includes('dock')) await ensureBaseImage();
    const dirs = Object.fromEntries(['fns', 'dock', 'site', 'svc', 'svc-code'].map((a) => [a, join(tmp, a)]));
    const filesOf = { fns: fnsFiles, dock: dockFiles, site: siteFiles, svc: (v) => ({ 'apps/web/app.config': svcAppConfig(`file://${dirs['svc-code']}`, v) }) };
    if (APPS.includes('svc')) {
      await newRepo(dirs['svc-code'], { 'package.json': JSON.stringify({ name: 'web', version: '0.0.0', private: true, scripts: { start: 'node server.js' } }), 'server.js': SERVICE_JS(0) });
      git(dirs['svc-code'], 'tag', 'v0');
    }
    for (const a of APPS) await newRepo(dirs[a], filesOf[a](0));

    const dataDir = join(tmp, 'data');
    const zv = await startChild('zerverless', 'server.mjs', ['--data-dir', dataDir, '--poll-interval', '1h', '--log-level', CONFIG.logLevel]);
    await readToken(zv.url, dataDir);
    log(`server at ${zv.url}; registering ${APPS.join(', ')}…`);
    for (const a of APPS) {
      const r = await api(zv.url, 'POST', '', { name: a, namespace: NS, source: { repoURL: `file://${dirs[a]}`, branch: 'main' } });
      if (r.status !== 201) throw new Error(`registering ${a} answered ${r.status}: ${JSON.stringify(r.body)}`);
    }
    for (const a of APPS) {
      const deadline = Date.now() + 300_000;
      for (;;) {
        const r = await api(zv.url, 'GET', `/${a}?namespace=${NS}`);
        const ready = r.body?.status === 'synced' && (a !== 'svc' || r.body.services?.[0]?.health === 'healthy');
        if (ready) break;
        if (r.body?.status === 'error') throw new Error(`${a}: ${r.body.message}`);
        if (Date.now() > deadline) throw new Error(`${a} not ready: ${JSON.stringify(r.body).slice(0, 400)}`);
        await sleep(200);
      }
    }
    // every target answers version 0 before the load starts
    const probe = new Agent({ keepAlive: false });
    for (const t of CONFIG.targets) {
      const r = await once(probe, `${zv.url}${TARGETS[t].path}`, t);
      if (r.kind !== 'ok' || r.version !== 0) throw new Error(`${t} answered ${r.kind} (version ${r.version}) before the load`);
    }

    const perTarget = Math.max(1, Math.round(CONFIG.connections / CONFIG.targets.length));
    log(`load: ${perTarget} connections on each of ${CONFIG.targets.join(', ')}; ${CONFIG.rounds} rounds of updates…`);
    const load = startLoad(zv.url, perTarget);
    const windows = Object.fromEntries(APPS.map((a) => [a, []]));
    const syncMs = [];
    const syncFailed = [];
    await sleep(CONFIG.pauseMs);
    for (let v = 1; v <= CONFIG.rounds; v++) {
      await Promise.all(APPS.map(async (a) => {
        const t0 = performance.now();
        if (a === 'svc') {
          await commit(dirs['svc-code'], { 'server.js': SERVICE_JS(v) }, `v${v}`);
          git(dirs['svc-code'], 'tag', `v${v}`);
        }
        await commit(dirs[a], filesOf[a](v), `v${v}`);
        const r = await api(zv.url, 'POST', `/${a}/sync?namespace=${NS}`);
        const t1 = performance.now();
        syncMs.push(t1 - t0);
        if (r.status !== 200 || r.body?.status !== 'synced') syncFailed.push(`${a} v${v}: ${r.status} ${r.body?.status ?? ''} ${String(r.body?.message ?? JSON.stringify(r.body)).slice(0, 200)}`);
        let t2 = t1;
        if (a === 'svc') {
          // a service's new version takes over once healthy, after the sync answered: until then it is an update
          const deadline = Date.now() + 120_000;
          for (;;) {
            const s = await api(zv.url, 'GET', `/${a}?namespace=${NS}`);
            if (s.body?.services?.[0]?.version === `1.0.${v}` && s.body.services[0].health === 'healthy') break;
            if (Date.now() > deadline) break;
            await sleep(100);
          }
          t2 = performance.now();
        }
        windows[a].push([t0, t2 + WINDOW_TAIL_MS]);
      }));
      log(`round ${v}/${CONFIG.rounds} synced`);
      await sleep(CONFIG.pauseMs);
    }
    await load.stop();
    await stopChild(zv.child);
    const sorted = [...syncMs].sort((x, y) => x - y);
    const result = {
      meta: { ...runMeta(), connectionsPerTarget: perTarget, rounds: CONFIG.rounds, pauseMs: CONFIG.pauseMs },
      syncs: { ok: syncMs.length - syncFailed.length, failed: syncFailed, medianMs: quantile(sorted, 0.5), maxMs: sorted[sorted.length - 1] },
      targets: summarize(load.results, windows),
    };
    await mkdir(dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    printReport(result);
    const failed = Object.values(result.targets).reduce((n, s) => n + s.failed, 0);
    if (failed > 0 || syncFailed.length > 0) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
