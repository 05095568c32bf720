// Test helper: the real server on 127.0.0.1 (port 0) with a temp data dir, plus small HTTP helpers.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServeConfig, type ServeConfig } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { silentLogger } from '../../src/telemetry/log.js';
import type { AppStatus } from '../../src/core/status.js';
import { removeInstanceObjects } from './docker.js';

export interface Harness {
  server: RunningServer;
  dataDir: string;
  url: string;
  restart(): Promise<void>;
  close(): Promise<void>;
  /** The admin token the server made on its first start (sent by api() and the helpers below). */
  readonly token: string;
  api<T = AppStatus>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Any /api/… call (`path` starts after /api) with a token of your choice (null: none). */
  call<T = unknown>(method: string, path: string, opts?: { body?: unknown; token?: string | null; headers?: Record<string, string> }): Promise<{ status: number; body: T; headers: Headers }>;
  get(path: string, init?: RequestInit): Promise<Response>;
  /** Registers an app and waits until its first sync has finished. */
  register(name: string, namespace: string, repoURL: string, extra?: Record<string, unknown>): Promise<AppStatus>;
  sync(name: string, namespace?: string): Promise<AppStatus>;
  waitFor(name: string, pred: (s: AppStatus) => boolean, timeoutMs?: number, namespace?: string): Promise<AppStatus>;
}

export async function startHarness(overrides: Partial<ServeConfig> = {}): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), 'zv-data-'));
  const config: ServeConfig = { ...resolveServeConfig({ port: 0, 'allow-file-repos': true, 'data-dir': dataDir, 'poll-interval': '1h' }, {}, {}), ...overrides };
  let server = await startServer(config, { logger: silentLogger });
  const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  const call = async <T>(method: string, path: string, opts: { body?: unknown; token?: string | null; headers?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = { ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }) };
    const t = opts.token === undefined ? token : opts.token;
    if (t !== null) headers.authorization = `Bearer ${t}`;
    const res = await fetch(`${server.url}/api${path}`, {
      method,
      headers: { ...headers, ...opts.headers },
      body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    });
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    return { status: res.status, body: body as T, headers: res.headers };
  };
  const h: Harness = {
    token,
    call,
    get server() {
      return server;
    },
    dataDir,
    get url() {
      return server.url;
    },
    async restart() {
      await server.close();
      server = await startServer({ ...config, port: 0 }, { logger: silentLogger });
    },
    async close() {
      await server.close();
      // Its docker containers outlive the stop (for a restart to adopt); this data dir goes, so they go too.
      await removeInstanceObjects(config.dataDir);
      await rm(dataDir, { recursive: true, force: true });
    },
    async api<T>(method: string, path: string, body?: unknown) {
      const r = await call<T>(method, `/gitops/applications${path}`, { body });
      return { status: r.status, body: r.body };
    },
    get(path: string, init?: RequestInit) {
      return fetch(`${server.url}${path}`, init);
    },
    async register(name, namespace, repoURL, extra = {}) {
      const r = await h.api('POST', '/', { name, namespace, source: { repoURL, branch: 'main', ...extra } });
      if (r.status !== 201) throw new Error(`register answered ${r.status}: ${JSON.stringify(r.body)}`);
      return h.waitFor(name, (s) => s.status !== 'pending' && s.status !== 'syncing', 60_000, namespace);
    },
    async sync(name, namespace) {
      const r = await h.api('POST', `/${name}/sync${namespace ? `?namespace=${namespace}` : ''}`);
      if (r.status !== 200) throw new Error(`sync answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body;
    },
    // The default deadline is generous: a loaded machine syncs slowly; it only ends a wait that will never end.
    waitFor: async (name: string, pred: (s: AppStatus) => boolean, timeoutMs = 120_000, namespace?: string) => {
      const deadline = Date.now() + timeoutMs;
      let last: AppStatus | null = null;
      while (Date.now() < deadline) {
        const r = await h.api('GET', `/${name}${namespace ? `?namespace=${namespace}` : ''}`);
        last = r.body;
        if (r.status === 200 && pred(r.body)) return r.body;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`timed out waiting for ${name}; last status ${JSON.stringify(last)}`);
    },
  } as Harness;
  return h;
}

/** The `error.code` of an error answer (undefined when the body has none). */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { error?: { code?: string } };
  return body.error?.code;
}
