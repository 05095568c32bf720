// Serves /static/{namespace}/{file} from content-addressed blobs: index.html for directories,
// strong ETags (the content hash), If-None-Match → 304, HEAD, single byte ranges, content types,
// and precompressed variants committed next to a file (`x.html.br`, `x.html.gz`) chosen by
// Accept-Encoding.
//
// Decisions:
// - Variants are looked up at request time in the site's file map (nothing new is stored): a file
//   `x.gz` next to `x` is a variant of `x`; `x.gz` itself stays an ordinary file. What one file
//   answers (its variants, content type, header sets) is worked out once per deployed site and kept
//   in a WeakMap keyed by the site's file map, so it goes with the site at the next switch.
// - Negotiation (RFC 9110 §12.5.3): the acceptable coding with the highest q wins, br before gzip on
//   a tie and either before identity on a tie. When nothing acceptable exists (`identity;q=0`, or
//   `*;q=0`, without a usable variant) the answer is identity, never 406: RFC 9110 lets a server
//   disregard Accept-Encoding, and an identity answer is what every client can use.
// - A request with a Range header is answered from the identity file (and its ETag), so byte ranges
//   always count bytes of the file as committed.
// - Every answer of a file that has a variant carries `Vary: Accept-Encoding`.
// - Small files come from an in-memory cache (BlobCache; a hit answers synchronously). Bigger ones
//   are streamed from the blob file: behind the node adapter, read in 256 KiB chunks into reused
//   buffers and written straight into the response (no fs or web streams, no pipeline), with
//   backpressure, so a download holds at most a chunk; the file is closed when the answer ends or
//   the client goes. (Large files answered from memory with one write cost less CPU still, but
//   served fewer a second than these paced writes under load: measured, then left out.)
import { close, createReadStream, open, read, type ReadStream } from 'node:fs';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getMimeType } from 'hono/utils/mime';
import type { StaticFileEntry } from '../core/desired.js';
import type { BlobStore } from '../store/types.js';
import type { BlobCache } from './blob-cache.js';
import type { ServedStatic, ServingTable } from '../serving/table.js';
import { errorOf, errorResponse, isPlatformAnswer } from '../errors/respond.js';
import { ZvError } from '../errors/registry.js';
import { lingerClose, type LingerLimits } from './linger.js';

/**
 * Read size of a streamed file: 256 KiB reads cost the server less CPU per file than fs streams'
 * 64 KiB (fewer thread-pool round trips and writes).
 */
const STREAM_CHUNK = 256 * 1024;
/** Read size of the web stream (no node adapter: tests through `app.request`). */
const WEB_STREAM_CHUNK = 64 * 1024;

type Headers_ = Readonly<Record<string, string>>;

/** One way of answering a file: the file itself or one of its precompressed variants. */
interface Representation {
  entry: StaticFileEntry;
  etag: string;
  /** The headers of a 304 (no content-length). Frozen: shared by every request. */
  base: Headers_;
  /** The headers of a 200 with the whole body. Frozen: shared by every request. */
  full: Headers_;
}

interface Prepared {
  identity: Representation;
  br: Representation | null;
  gzip: Representation | null;
}

type Resolved = { file: StaticFileEntry } | { redirect: string } | null;

/** The node adapter's objects (`c.env` behind @hono/node-server); absent under `app.request`. */
export interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

const preparedBySite = new WeakMap<ReadonlyMap<string, StaticFileEntry>, Map<string, Prepared>>();

function contentTypeOf(path: string): string {
  return getMimeType(path) ?? 'application/octet-stream';
}

function variantOf(files: ReadonlyMap<string, StaticFileEntry>, file: StaticFileEntry, suffix: string): StaticFileEntry | null {
  const v = files.get(`${file.path}${suffix}`);
  // The same bytes as the file (or nothing, for a file that is not empty) cannot be its encoding.
  if (!v || v.hash === file.hash || (v.size === 0 && file.size > 0)) return null;
  return v;
}

function prepare(files: ReadonlyMap<string, StaticFileEntry>, file: StaticFileEntry): Prepared {
  const type = contentTypeOf(file.path);
  const br = variantOf(files, file, '.br');
  const gzip = variantOf(files, file, '.gz');
  const vary = br !== null || gzip !== null;
  const rep = (entry: StaticFileEntry, encoding: string | null): Representation => {
    const etag = `"${entry.hash}"`;
    const base: Record<string, string> = { etag, 'content-type': type, 'accept-ranges': 'bytes', 'cache-control': 'no-cache' };
    if (encoding) base['content-encoding'] = encoding;
    if (vary) base.vary = 'Accept-Encoding';
    return { entry, etag, base: Object.freeze(base), full: Object.freeze({ ...base, 'content-length': String(entry.size) }) };
  };
  return { identity: rep(file, null), br: br && rep(br, 'br'), gzip: gzip && rep(gzip, 'gzip') };
}

function preparedFor(files: ReadonlyMap<string, StaticFileEntry>, file: StaticFileEntry): Prepared {
  let site = preparedBySite.get(files);
  if (!site) {
    site = new Map();
    preparedBySite.set(files, site);
  }
  let p = site.get(file.path);
  if (!p) {
    p = prepare(files, file);
    site.set(file.path, p); // at most one entry per file of the site
  }
  return p;
}

/** A file; a folder's index.html (a folder named without its trailing slash redirects to it). */
function resolveFile(files: ReadonlyMap<string, StaticFileEntry>, rel: string): Resolved {
  const clean = rel.charCodeAt(0) === 47 ? rel.replace(/^\/+/, '') : rel;
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
  if (header === etag) return true;
  return header.split(',').some((t) => {
    const v = t.trim();
    return v === '*' || v === etag || v === `W/${etag}`;
  });
}

const Q_PARAM = /;\s*q\s*=\s*([0-9.]+)/i;

/**
 * The q of br, gzip and identity in an Accept-Encoding value (RFC 9110 §12.5.3): a coding not named
 * takes the q of `*` when there is one; else br and gzip are not acceptable and identity is (q=1).
 */
export function acceptedCodings(header: string): { br: number; gzip: number; identity: number } {
  let br = -1;
  let gzip = -1;
  let identity = -1;
  let star = -1;
  for (const part of header.split(',')) {
    const semi = part.indexOf(';');
    const name = (semi === -1 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (name === '') continue;
    let q = 1;
    if (semi !== -1) {
      const m = Q_PARAM.exec(part.slice(semi));
      if (m) {
        const n = Number(m[1]);
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
      }
    }
    if (name === 'br') br = Math.max(br, q);
    else if (name === 'gzip' || name === 'x-gzip') gzip = Math.max(gzip, q);
    else if (name === 'identity') identity = Math.max(identity, q);
    else if (name === '*') star = Math.max(star, q);
  }
  return {
    br: br >= 0 ? br : Math.max(star, 0),
    gzip: gzip >= 0 ? gzip : Math.max(star, 0),
    identity: identity >= 0 ? identity : star >= 0 ? star : 1,
  };
}

/** Which representation answers: see the decisions at the top of the file. */
function negotiate(p: Prepared, accept: string | undefined, ranged: boolean): Representation {
  if ((p.br === null && p.gzip === null) || accept === undefined || ranged) return p.identity;
  const q = acceptedCodings(accept);
  let best: Representation | null = null;
  let bestQ = 0;
  if (p.br && q.br > 0) {
    best = p.br;
    bestQ = q.br;
  }
  if (p.gzip && q.gzip > bestQ) {
    best = p.gzip;
    bestQ = q.gzip;
  }
  return best && bestQ >= q.identity ? best : p.identity;
}

let nativeResponse: typeof Response | undefined;
/**
 * The platform's Response class: @hono/node-server replaces the global one with a lighter class
 * it answers from directly (it would write the head again); a native Response carrying its
 * `x-hono-already-sent` header tells it the answer was written to the socket already.
 */
function alreadySent(): Response {
  if (!nativeResponse) {
    const proto = Object.getPrototypeOf(Response) as unknown;
    nativeResponse = proto === Function.prototype ? Response : (proto as typeof Response);
  }
  return new nativeResponse(null, { headers: { 'x-hono-already-sent': 'true' } });
}

function missingBlob(): Response {
  return errorResponse(new ZvError('INTERNAL', 'the stored copy of this file cannot be read; the next drift check restores it'));
}

const noop = (): void => {};

/**
 * Read buffers of streamed files, reused: one goes back when the socket is done with it (its write
 * callback). A new buffer per chunk grows external memory by the file's size per download, and
 * the collections that triggers cost in proportion to the server's whole heap.
 */
const chunkPool: Buffer[] = [];
const CHUNK_POOL_MAX = 64;
const takeChunk = (): Buffer => chunkPool.pop() ?? Buffer.allocUnsafeSlow(STREAM_CHUNK);
const giveChunk = (b: Buffer): void => {
  if (chunkPool.length < CHUNK_POOL_MAX) chunkPool.push(b);
};

/**
 * Writes bytes pos..stop-1 of the open file `fd` into `out`, one chunk read at a time (the next read
 * starts when the socket took the last chunk), then ends it. The file is closed once, whatever ends
 * the answer: the last byte, a read error or a file shorter than recorded (the answer is cut: the
 * client sees fewer bytes than the content-length), or the client going away.
 */
function pump(fd: number, out: ServerResponse, pos: number, stop: number): void {
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    out.off('close', finish);
    out.off('drain', next);
    close(fd, noop);
  };
  function next(): void {
    if (done) return;
    if (pos >= stop) {
      finish();
      out.end();
      return;
    }
    const n = Math.min(STREAM_CHUNK, stop - pos);
    // From the pool; back to it once written (a buffer whose write never completes is not reused).
    const buf = takeChunk();
    read(fd, buf, 0, n, pos, (err, got) => {
      if (done || err || got === 0) {
        giveChunk(buf);
        if (done) return;
        finish();
        out.destroy();
        return;
      }
      pos += got;
      if (out.write(got === buf.length ? buf : buf.subarray(0, got), () => giveChunk(buf))) next();
      else out.once('drain', next);
    });
  }
  out.once('close', finish);
  next();
}

/** Streams bytes start..end of a blob: written into the socket behind the node adapter, else a web stream. */
async function streamed(path: string, start: number, end: number, status: number, headers: Headers_, out: ServerResponse | undefined): Promise<Response> {
  if (out) {
    let fd: number;
    try {
      fd = await new Promise<number>((resolve, reject) => open(path, 'r', (e, d) => (e ? reject(e) : resolve(d))));
    } catch {
      return missingBlob();
    }
    if (out.destroyed || out.headersSent) {
      close(fd, noop);
      return alreadySent();
    }
    out.writeHead(status, headers);
    pump(fd, out, start, end + 1);
    return alreadySent();
  }
  const stream: ReadStream = createReadStream(path, { start, end, highWaterMark: WEB_STREAM_CHUNK });
  try {
    await once(stream, 'ready');
  } catch {
    stream.destroy();
    return missingBlob();
  }
  return new Response(Readable.toWeb(stream) as ReadableStream, { status, headers });
}

type HeaderOf = (name: string) => string | undefined;

function headerReader(req: Request, incoming: IncomingMessage | undefined): HeaderOf {
  if (incoming) {
    const h = incoming.headers;
    return (name) => {
      const v = h[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
  }
  return (name) => req.headers.get(name) ?? undefined;
}

/**
 * `rel` is the raw (percent-encoded) path below `base` (`/static/{namespace}/`); `search` the
 * query (with its `?`) kept on a redirect. Answers synchronously when it can (a cached file, a 304,
 * HEAD, an error), so the node adapter writes the answer without a promise in between.
 */
export function serveStatic(
  site: ServedStatic | null, rel: string, req: Request, blobs: BlobStore, cache: BlobCache, base: string,
  node: NodeBindings = {}, search?: string,
): Response | Promise<Response> {
  const method = req.method;
  if (method !== 'GET' && method !== 'HEAD') return errorResponse(new ZvError('METHOD_NOT_ALLOWED', `static files answer GET and HEAD, not ${method}`), { allow: 'GET, HEAD' });
  let decoded = rel;
  if (rel.includes('%')) {
    try {
      decoded = decodeURIComponent(rel);
    } catch {
      return errorOf('BAD_REQUEST', 'malformed percent-encoding in the path');
    }
  }
  if (/(?:^|\/)\.\.(?:\/|$)/.test(decoded) || decoded.includes('\0')) return errorOf('NOT_FOUND');
  const found = site ? resolveFile(site.files, decoded) : null;
  if (!found || !site) return errorOf('NOT_FOUND', `no static file ${JSON.stringify(decoded || '/')}`);
  if ('redirect' in found) {
    const location = `${base}${found.redirect.split('/').map(encodeURIComponent).join('/')}${search ?? new URL(req.url).search}`;
    return new Response(null, { status: 301, headers: { location } });
  }

  const header = headerReader(req, node.incoming);
  const prepared = preparedFor(site.files, found.file);
  const range = header('range');
  const rep = negotiate(prepared, header('accept-encoding'), range !== undefined);
  const inm = header('if-none-match');
  if (inm !== undefined && etagMatches(inm, rep.etag)) return new Response(null, { status: 304, headers: rep.base });

  const { entry } = rep;
  const size = entry.size;
  let start = 0;
  let end = size - 1;
  let status = 200;
  let headers = rep.full;
  if (range !== undefined) {
    const ifRange = header('if-range');
    if (ifRange === undefined || ifRange === rep.etag) {
      const r = parseRange(range, size);
      if (r === 'invalid') {
        const res = errorOf('RANGE_NOT_SATISFIABLE');
        for (const [k, v] of Object.entries(rep.base)) if (k !== 'content-type') res.headers.set(k, v);
        res.headers.set('content-range', `bytes */${size}`);
        return res;
      }
      if (r) {
        ({ start, end } = r);
        status = 206;
        headers = { ...rep.base, 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': String(end - start + 1) };
      }
    }
  }
  if (method === 'HEAD' || size === 0) return new Response(null, { status, headers });
  const whole = status === 200;
  if (cache.fits(size)) {
    const hit = cache.peek(entry.hash);
    if (hit) return new Response(whole ? hit : hit.subarray(start, end + 1), { status, headers });
    return cache.load(entry.hash).then(
      (data) => new Response(whole ? data : data.subarray(start, end + 1), { status, headers }),
      () => missingBlob(),
    );
  }
  return streamed(blobs.path(entry.hash), start, end, status, headers, node.outgoing);
}

/** Where the path of an absolute request URL starts (after `scheme://host`). */
function pathStartOf(url: string): number {
  const i = url.indexOf('/', url.indexOf('//') + 2);
  return i === -1 ? url.length : i;
}

/** Whether the request is for /static/…: answered by `staticRoute` without the framework. */
export function isStaticRequest(req: Request): boolean {
  return req.url.startsWith('/static/', pathStartOf(req.url));
}

/**
 * The /static/* route: splits `/static/{namespace}/{file…}` from the raw path (the namespace is
 * matched as sent) and serves the namespace's site as it is at this moment in the serving table.
 */
export function staticRoute(req: Request, env: unknown, serving: ServingTable, blobs: BlobStore, cache: BlobCache): Response | Promise<Response> {
  const node = (env ?? {}) as NodeBindings;
  const url = req.url;
  const pathStart = pathStartOf(url);
  const q = url.indexOf('?', pathStart);
  const pathname = q === -1 ? url.slice(pathStart) : url.slice(pathStart, q);
  const search = q === -1 ? '' : url.slice(q);
  const rest = pathname.slice('/static/'.length);
  const slash = rest.indexOf('/');
  const ns = slash === -1 ? rest : rest.slice(0, slash);
  if (!ns) return errorOf('NOT_FOUND');
  if (slash === -1) return new Response(null, { status: 301, headers: { location: `/static/${ns}/${search}` } });
  return serveStatic(serving.findStatic(ns), rest.slice(slash + 1), req, blobs, cache, `/static/${ns}/`, node, search);
}

/**
 * Puts /static/* in front of `next` (the Hono app's fetch): a static request is answered without
 * the framework's routing, context and middleware chain, none of which applies to it but two
 * things done here as the app does them: an error becomes the error shape (app.onError), and an
 * answer of ours given before a request body arrived lingers (see linger.ts).
 */
export function staticFirst<A extends unknown[]>(
  next: (req: Request, ...rest: A) => Response | Promise<Response>,
  serve: (req: Request, env: unknown) => Response | Promise<Response>,
  linger: LingerLimits,
): (req: Request, ...rest: A) => Response | Promise<Response> {
  const settle = (res: Response, env: unknown): Response => {
    const incoming = (env as NodeBindings | undefined)?.incoming;
    if (incoming && !incoming.complete && isPlatformAnswer(res)) lingerClose(incoming, linger);
    return res;
  };
  return (req, ...rest) => {
    if (!isStaticRequest(req)) return next(req, ...rest);
    const env = rest[0];
    let res: Response | Promise<Response>;
    try {
      res = serve(req, env);
    } catch (e) {
      return settle(errorResponse(e), env);
    }
    if (res instanceof Promise) return res.then((r) => settle(r, env), (e: unknown) => settle(errorResponse(e), env));
    return settle(res, env);
  };
}
