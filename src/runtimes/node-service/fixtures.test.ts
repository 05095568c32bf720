// Not a test: fixtures shared by the Node service runtime's tests (named *.test.ts so that the build
// leaves it out and it may import test/support). A tiny HTTP service on $PORT with a /health route,
// specs, tarballs, a loopback file server, and process helpers.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ServiceSpec } from '../../core/services/types.js';
import { TestRepo } from '../../../test/support/repo.js';
import { NodeServiceRuntime } from './index.js';
import type { NodeServiceRuntimeOptions } from './index.js';

/**
 * The service. Env: HEALTH_STATUS (status of /health), CRASH=1 (exits at once), IGNORE_TERM=1 (ignores
 * SIGTERM), SPAM=n (prints n lines at start), GREETING (echoed). GET / answers {version, greeting, pid, port, env}.
 */
export const SERVER_JS = `
const http = require('node:http');
const { version } = require('./package.json');
if (process.env.CRASH === '1') { console.error('crashing at once'); process.exit(3); }
for (let i = 0; i < Number(process.env.SPAM || 0); i++) console.log('spam line ' + i + ' ' + 'x'.repeat(40));
const port = Number(process.env.PORT);
const health = Number(process.env.HEALTH_STATUS || 200);
const server = http.createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(health); res.end(health === 200 ? 'ok' : 'not ok'); return; }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ version, greeting: process.env.GREETING ?? null, pid: process.pid, port, env: Object.keys(process.env).sort() }));
});
server.listen(port, '127.0.0.1', () => console.log('listening on ' + port + ' pid=' + process.pid));
process.on('SIGTERM', () => {
  if (process.env.IGNORE_TERM === '1') { console.log('ignoring SIGTERM'); return; }
  console.log('SIGTERM: closing');
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
});
`;

/** package.json + server.js of version `version` (start script `node server.js`). */
export function serviceFiles(version: string, extra: Record<string, unknown> = {}): Record<string, string> {
  const pkg = { name: 'zv-test-service', version, private: true, scripts: { start: 'node server.js' }, ...extra };
  return { 'package.json': JSON.stringify(pkg, null, 2) + '\n', 'server.js': SERVER_JS };
}

/** A git repository with one commit per version (serviceFiles), each tagged `v<version>`. */
export async function taggedServiceRepo(first: string, ...more: string[]): Promise<TestRepo> {
  const repo = await TestRepo.create(serviceFiles(first));
  repo.git('tag', `v${first}`);
  for (const version of more) {
    await repo.commit(serviceFiles(version));
    repo.git('tag', `v${version}`);
  }
  return repo;
}

/** The spec of service `web` at `version`, from its tag in `repo`. */
export function taggedSpec(repo: TestRepo, version: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return makeSpec('web', { version, source: { type: 'git', url: repo.url, ref: `v${version}` }, ...over });
}

export const HTTP_HEALTH = { type: 'http' as const, path: '/health', interval: 400, timeout: 1000 };

export function makeSpec(name: string, over: Partial<ServiceSpec> & Pick<ServiceSpec, 'source'>): ServiceSpec {
  return { name, version: '1.0.0', env: {}, health: HTTP_HEALTH, dependsOn: [], route: null, port: null, file: `apps/${name}/app.yaml`, ...over };
}

export async function tempDir(prefix = 'zv-svc-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Writes `files` under `<tmp>/package/` and packs them as a .tgz (npm's layout); returns bytes and sha256. */
export async function makeTarball(files: Record<string, string>): Promise<{ bytes: Buffer; sha256: string }> {
  const dir = await tempDir('zv-tgz-');
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, 'package', rel)), { recursive: true });
    await writeFile(join(dir, 'package', rel), text);
  }
  execFileSync('tar', ['-czf', join(dir, 'out.tgz'), '-C', dir, 'package']);
  const bytes = await readFile(join(dir, 'out.tgz'));
  await rm(dir, { recursive: true, force: true });
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** A loopback HTTP server answering `files` by path; counts requests per path. */
export async function fileServer(files: Record<string, Buffer>): Promise<{ url: string; hits: Map<string, number>; close(): Promise<void> }> {
  const hits = new Map<string, number>();
  const srv = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const body = files[path];
    if (!body) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, hits, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
}

/** GET through the runtime's upstream (resolved now); rejects when there is none or the request fails. */
export async function viaUpstream(rt: NodeServiceRuntime, name: string, path = '/'): Promise<{ status: number; json: Record<string, unknown> }> {
  const up = rt.upstream(name);
  if (!up) throw new Error(`no upstream for ${name}`);
  const res = await fetch(`http://${up.host}:${up.port}${path}`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  return { status: res.status, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text } };
}

export function runtime(dataDir: string, over: Partial<NodeServiceRuntimeOptions> = {}): NodeServiceRuntime {
  return new NodeServiceRuntime({
    dataDir, allowFileRepos: true, gracePeriodMs: 3000, drainMs: 300, readyTimeoutMs: 60_000,
    healthDefaults: { startupPollMs: 100, livenessDelayMs: 500 }, ...over,
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `pred`; the deadline is generous (a loaded machine is slow), it only ends a wait that will never end. */
export async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Whether a process exists and is not a zombie (PID 1 here may not reap orphans). */
export async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return true;
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

/** Children of `pid` (Linux). */
export async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}
