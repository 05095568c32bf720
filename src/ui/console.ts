// The web console (PRODUCT.md §12): serves the browser client that `npm run build` bundles into
// dist/console/ (scripts/build-console.mjs). Everything comes from this process (no CDN): the
// index at /ui (never cached: it names the current assets) and /ui/assets/<name>-<hash>.<ext>
// (content-hashed, cached for a year). Every answer carries a strict Content-Security-Policy (no
// inline script or style, connections to this origin only) and refuses framing. The client talks
// to /api with the token the user signs in with; the console itself needs none (it holds no data).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Hono, type Context } from 'hono';
import { errorOf } from '../errors/respond.js';

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json; charset=utf-8',
};

interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer;
}

/** Where the built console is: dist/console beside dist/ui (built) or from src/ui (tsx). */
export function defaultConsoleDir(): string | null {
  for (const rel of ['../console/', '../../dist/console/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return null;
}

function load(dir: string): { index: Asset; assets: Map<string, Asset> } {
  const asset = (file: string): Asset => {
    const raw = readFileSync(file);
    const ext = file.slice(file.lastIndexOf('.'));
    return { type: TYPES[ext] ?? 'application/octet-stream', raw, gzip: gzipSync(raw, { level: 9 }) };
  };
  const assets = new Map<string, Asset>();
  const assetDir = `${dir}assets/`;
  if (existsSync(assetDir)) for (const name of readdirSync(assetDir)) assets.set(name, asset(assetDir + name));
  return { index: asset(`${dir}index.html`), assets };
}

function send(c: Context, a: Asset, cacheControl: string): Response {
  const gz = /\bgzip\b/.test(c.req.header('accept-encoding') ?? '');
  const body = gz ? a.gzip : a.raw;
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    'content-type': a.type,
    'cache-control': cacheControl,
    vary: 'accept-encoding',
    'content-length': String(body.length),
  };
  if (gz) headers['content-encoding'] = 'gzip';
  return new Response(c.req.method === 'HEAD' ? null : new Uint8Array(body), { status: 200, headers });
}

/**
 * The /ui app (mounted at /ui). `dir`: the built console (default: dist/console); read once, on the
 * first request, and kept in memory with its gzip form. Without a build, /ui answers 404 saying so.
 */
export function consoleApp(opts: { dir?: string | null } = {}): Hono {
  const app = new Hono({ strict: false });
  let loaded: ReturnType<typeof load> | null = null;
  const get = (): ReturnType<typeof load> | null => {
    if (loaded) return loaded;
    const dir = opts.dir === undefined ? defaultConsoleDir() : opts.dir;
    if (!dir || !existsSync(`${dir}/index.html`)) return null;
    loaded = load(dir.endsWith('/') ? dir : `${dir}/`);
    return loaded;
  };
  const notBuilt = () => errorOf('NOT_FOUND', 'the web console is not built (run npm run build)');

  app.on(['GET', 'HEAD'], '/assets/:name', (c) => {
    const l = get();
    if (!l) return notBuilt();
    const a = l.assets.get(c.req.param('name'));
    if (!a) return errorOf('NOT_FOUND');
    return send(c, a, 'public, max-age=31536000, immutable');
  });
  app.on(['GET', 'HEAD'], '/', (c) => {
    const l = get();
    return l ? send(c, l.index, 'no-cache') : notBuilt();
  });
  app.all('*', () => errorOf('NOT_FOUND'));
  return app;
}
