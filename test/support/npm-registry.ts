// Test helper: npm registries on loopback for the `npm` source of services.
// - startVerdaccio(): a real Verdaccio (when the `verdaccio` package is installed; null otherwise),
//   with storage in a temp dir, no uplinks, and a user made for publishing with the real `npm publish`.
// - startMiniRegistry(): a minimal read-only registry (packuments and tarballs, what `npm pack
//   name@version` needs) whose packages are packed by the real `npm pack` from a folder.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestNpmRegistry {
  kind: 'verdaccio' | 'mini';
  /** Registry URL with a trailing slash, e.g. http://127.0.0.1:4873/ */
  url: string;
  /** Publishes the package in `dir` (package.json + files); resolves with its name and version. */
  publish(dir: string): Promise<{ name: string; version: string }>;
  close(): Promise<void>;
}

/** Writes `files` into a fresh temp folder (a package to publish). */
export async function packageDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'zv-npmpkg-'));
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    await mkdir(join(p, '..'), { recursive: true });
    await writeFile(p, text);
  }
  return dir;
}

function listen(srv: Server): Promise<number> {
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as AddressInfo).port)));
}

function closeServer(srv: Server): Promise<void> {
  return new Promise((resolve) => {
    srv.closeAllConnections();
    srv.close(() => resolve());
  });
}

interface Packument {
  name: string;
  'dist-tags': Record<string, string>;
  versions: Record<string, Record<string, unknown>>;
}

export async function startMiniRegistry(): Promise<TestNpmRegistry> {
  const packuments = new Map<string, Packument>();
  const tarballs = new Map<string, Buffer>();
  const srv = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/').replace(/^\/+/, '');
    const tgz = tarballs.get(path);
    if (req.method === 'GET' && tgz) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tgz.length });
      res.end(tgz);
      return;
    }
    const doc = packuments.get(path);
    if (req.method === 'GET' && doc) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(doc));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"Not found"}');
  });
  const port = await listen(srv);
  const url = `http://127.0.0.1:${port}/`;
  return {
    kind: 'mini',
    url,
    async publish(dir) {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name: string; version: string };
      const out = await mkdtemp(join(tmpdir(), 'zv-npmpack-'));
      try {
        const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], { cwd: dir });
        const filename = (JSON.parse(stdout) as { filename: string }[])[0]?.filename as string;
        const bytes = await readFile(join(out, filename));
        const file = `${pkg.name}/-/${pkg.name.split('/').pop()}-${pkg.version}.tgz`;
        tarballs.set(file, bytes);
        const doc = packuments.get(pkg.name) ?? { name: pkg.name, 'dist-tags': {}, versions: {} };
        doc.versions[pkg.version] = {
          ...pkg,
          dist: {
            tarball: url + file,
            shasum: createHash('sha1').update(bytes).digest('hex'),
            integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
          },
        };
        doc['dist-tags'].latest = pkg.version;
        packuments.set(pkg.name, doc);
        return { name: pkg.name, version: pkg.version };
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    },
    close: () => closeServer(srv),
  };
}

/**
 * A real Verdaccio on loopback, or null when the `verdaccio` package is not installed (it is not a
 * dependency yet; verdaccio 6.0.x runs on Node ≥ 18, later 6.x need Node 22).
 */
export async function startVerdaccio(): Promise<TestNpmRegistry | null> {
  let mod: { runServer?: (config: unknown) => Promise<Server> };
  try {
    const name = 'verdaccio';
    mod = (await import(name)) as typeof mod;
  } catch {
    return null;
  }
  if (typeof mod.runServer !== 'function') return null;
  const storage = await mkdtemp(join(tmpdir(), 'zv-verdaccio-'));
  const config = {
    self_path: storage,
    storage: join(storage, 'storage'),
    auth: { htpasswd: { file: join(storage, 'htpasswd'), max_users: 10 } },
    uplinks: {},
    packages: { '**': { access: '$all', publish: '$authenticated', unpublish: '$authenticated' } },
    logs: { type: 'stdout', format: 'json', level: 'fatal' },
    security: { api: { legacy: true } },
  };
  const srv = await mod.runServer(config);
  const port = await listen(srv);
  const url = `http://127.0.0.1:${port}/`;
  const user = { name: 'zvtest', password: 'zvtest-password', email: 'zv@example.com' };
  const res = await fetch(`${url}-/user/org.couchdb.user:${user.name}`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ _id: `org.couchdb.user:${user.name}`, ...user, type: 'user', roles: [] }),
  });
  const token = ((await res.json()) as { token?: string }).token;
  if (!token) throw new Error(`verdaccio did not create the publishing user (HTTP ${res.status})`);
  const npmrc = join(storage, 'npmrc');
  await writeFile(npmrc, `//127.0.0.1:${port}/:_authToken=${token}\n`);
  return {
    kind: 'verdaccio',
    url,
    async publish(dir) {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name: string; version: string };
      await run('npm', ['publish', '--registry', url, '--userconfig', npmrc, '--ignore-scripts'], { cwd: dir });
      return { name: pkg.name, version: pkg.version };
    },
    async close() {
      await closeServer(srv);
      await rm(storage, { recursive: true, force: true });
    },
  };
}
