// Serves /static/{namespace}/{file} from content-addressed blobs: index.html for directories,
// strong ETags (the content hash), If-None-Match → 304, HEAD, single byte ranges, content types.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { getMimeType } from 'hono/utils/mime';
import type { StaticFileEntry } from '../core/desired.js';
import type { BlobStore } from '../store/types.js';
import type { BlobCache } from './blob-cache.js';
import type { ServedStatic } from '../serving/table.js';
import { errorOf, errorResponse } from '../errors/respond.js';
import { ZvError } from '../errors/registry.js';

type Resolved = { file: StaticFileEntry } | { redirect: string } | null;

/** A file; a folder's index.html (a folder named without its trailing slash redirects to it). */
function resolveFile(files: ReadonlyMap<string, StaticFileEntry>, rel: string): Resolved {
  const clean = rel.replace(/^\/+/, '');
  if (clean === '' || clean.endsWith('/')) {
    const index = files.get(`${clean}index.html`);
    return index ? { file: index } : null;
  }
  const file = files.get(clean);
  if (file) return { file };
  return files.has(`${clean}/index.html`) ? { redirect: `${clean}/` } : null;
}

function parseRange(header: string, size: number): { start: number; end: number } | 'invalid' | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null; // multiple or odd ranges: ignore, send the whole file
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return 'invalid';
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'invalid';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return 'invalid';
  return { start, end };
}

function etagMatches(header: string, etag: string): boolean {
  return header.split(',').some((t) => {
    const v = t.trim();
    return v === '*' || v === etag || v === `W/${etag}`;
  });
}

/** `rel` is the raw (percent-encoded) path below `base` (`/static/{namespace}/`). */
export async function serveStatic(site: ServedStatic | null, rel: string, req: Request, blobs: BlobStore, cache: BlobCache, base: string): Promise<Response> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return errorResponse(new ZvError('METHOD_NOT_ALLOWED', `static files answer GET and HEAD, not ${req.method}`), { allow: 'GET, HEAD' });
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return errorOf('BAD_REQUEST', 'malformed percent-encoding in the path');
  }
  if (decoded.split('/').some((seg) => seg === '..') || decoded.includes('\0')) return errorOf('NOT_FOUND');
  const found = site ? resolveFile(site.files, decoded) : null;
  if (!found) return errorOf('NOT_FOUND', `no static file ${JSON.stringify(decoded || '/')}`);
  if ('redirect' in found) {
    const location = `${base}${found.redirect.split('/').map(encodeURIComponent).join('/')}${new URL(req.url).search}`;
    return new Response(null, { status: 301, headers: { location } });
  }
  const { file } = found;

  const etag = `"${file.hash}"`;
  const headers = new Headers({
    etag,
    'content-type': getMimeType(file.path.endsWith('/') ? 'index.html' : file.path) ?? 'application/octet-stream',
    'accept-ranges': 'bytes',
    'cache-control': 'no-cache',
  });
  const inm = req.headers.get('if-none-match');
  if (inm && etagMatches(inm, etag)) return new Response(null, { status: 304, headers });

  let start = 0;
  let end = file.size - 1;
  let status = 200;
  const range = req.headers.get('range');
  const ifRange = req.headers.get('if-range');
  if (range && (!ifRange || ifRange === etag)) {
    const r = parseRange(range, file.size);
    if (r === 'invalid') {
      headers.set('content-range', `bytes */${file.size}`);
      const res = errorOf('RANGE_NOT_SATISFIABLE');
      headers.forEach((v, k) => { if (k !== 'content-type') res.headers.set(k, v); });
      return res;
    }
    if (r) {
      ({ start, end } = r);
      status = 206;
      headers.set('content-range', `bytes ${start}-${end}/${file.size}`);
    }
  }
  const length = file.size === 0 ? 0 : end - start + 1;
  headers.set('content-length', String(length));
  if (req.method === 'HEAD' || length === 0) return new Response(null, { status, headers });
  const cached = await cache.get(file.hash, file.size);
  if (cached) return new Response(status === 206 ? cached.subarray(start, end + 1) : cached, { status, headers });
  const stream = createReadStream(blobs.path(file.hash), { start, end });
  return new Response(Readable.toWeb(stream) as ReadableStream, { status, headers });
}
