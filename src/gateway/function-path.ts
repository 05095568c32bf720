// The hot path: function requests answered on the node server's own request and response objects,
// ahead of the framework. Every other request (the API, static files, system endpoints, proxied
// functions, paths no function serves) goes to `fallback`, the Hono app's listener, untouched.
// No Web Request/Response is made here: the request's head is read from IncomingMessage, the
// function's answer is written with one writeHead + end (headers and body in one write).
// What the Hono route (invokeFunction in http.ts) answers, this answers the same way: the same
// FunctionRequest, the same error shape, the same headers (hop-by-hop dropped, a default
// content-type, content-length), and a lingering close after an early 413.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { splitNamespace } from '../core/routing.js';
import { RESERVED_NAMESPACES } from '../core/names.js';
import { HOP_BY_HOP_AND_LENGTH } from '../core/http-headers.js';
import type { FunctionRequest, FunctionResponse } from '../core/function-contract.js';
import { ZvError, toZvError } from '../errors/registry.js';
import { errorResponse, payloadTooLarge } from '../errors/respond.js';
import type { ServedFunction } from '../serving/table.js';
import type { Metrics } from '../telemetry/metrics.js';
import { requestSpans } from '../telemetry/tracing.js';
import { checkResponse, DEFAULT_MAX_RESPONSE_BYTES } from '../runtimes/response-cap.js';
import { lingerClose, lingerLimits } from './linger.js';
import { countRequest } from './http-metrics.js';
import type { HttpDeps } from './http.js';

const RESERVED = new Set(RESERVED_NAMESPACES);
/** What the node adapter adds to a response with a body and no content-type. */
export const DEFAULT_CONTENT_TYPE = 'text/plain; charset=UTF-8';

/** How long after a function's own timeout the gateway gives up on a runtime that did not enforce it. */
export const BACKSTOP_GRACE_MS = 5000;
/** How often the backstop looks at the calls in flight. */
const BACKSTOP_SWEEP_MS = 1000;

interface InFlight {
  deadline: number;
  timeoutMs: number;
  reject: (e: ZvError) => void;
  /** Neighbours in the list of calls in flight; `listed` while in it. */
  prev: InFlight | null;
  next: InFlight | null;
  listed: boolean;
}

// One sweeper for every call in flight instead of a timer and a Promise.race per call (together
// about 3 µs of a small request's ~30). It runs only while calls are in flight. The calls are a
// doubly linked list, not a Set: under load a Set with an entry added and deleted per request kept
// about 1 MB of young objects alive at every scavenge (measured with --trace-gc-nvp: 1.1 MB
// survived and 1 MB promoted per scavenge, each taking ~1.3 ms instead of ~0.35; ~1 µs a request).
let first: InFlight | null = null;
let last: InFlight | null = null;
let inFlightCount = 0;
let sweeper: NodeJS.Timeout | null = null;

function track(c: InFlight): void {
  c.prev = last;
  if (last === null) first = c;
  else last.next = c;
  last = c;
  c.listed = true;
  inFlightCount++;
}

/** Takes a call out of the list; false when it was not in it (the backstop answered it already). */
function untrack(c: InFlight): boolean {
  if (!c.listed) return false;
  c.listed = false;
  if (c.prev === null) first = c.next;
  else c.prev.next = c.next;
  if (c.next === null) last = c.prev;
  else c.next.prev = c.prev;
  c.prev = null;
  c.next = null;
  inFlightCount--;
  return true;
}

function sweep(): void {
  const now = performance.now();
  for (let c = first; c !== null;) {
    const next = c.next;
    if (now >= c.deadline && untrack(c)) c.reject(new ZvError('FUNCTION_TIMEOUT', `no answer within ${c.timeoutMs} ms`));
    c = next;
  }
  if (inFlightCount === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

/**
 * Runs an invoked (not proxied) function: the runtime's answer within its timeout (the runtime
 * enforces it; BACKSTOP_GRACE_MS later, give or take a sweep, the gateway answers FUNCTION_TIMEOUT
 * should a runtime fail to), checked against --max-response, counted in the invocation metrics.
 * Rejects with a ZvError.
 */
export function callFunction(
  fn: ServedFunction, req: FunctionRequest, metrics: Metrics, maxResponseBytes: number, graceMs = BACKSTOP_GRACE_MS,
): Promise<FunctionResponse> {
  return new Promise<FunctionResponse>((resolve, reject) => {
    runFunction(fn, req, metrics, maxResponseBytes, (e, r) => (e === null ? resolve(r as FunctionResponse) : reject(e)), graceMs);
  });
}

/**
 * callFunction with a callback (`done(null, response)` or `done(error, null)`, called once, never
 * synchronously): the function path's own calls, without a promise of their own between the
 * runtime's answer and the write.
 */
export function runFunction(
  fn: ServedFunction, req: FunctionRequest, metrics: Metrics, maxResponseBytes: number,
  done: (e: ZvError | null, r: FunctionResponse | null) => void, graceMs = BACKSTOP_GRACE_MS,
): void {
  const failed = (e: unknown): void => {
    const err = toZvError(e, 'FUNCTION_ERROR');
    metrics.invocations.inc({ runtime: fn.runtime, result: err.code });
    done(err, null);
  };
  const call: InFlight = { deadline: performance.now() + fn.timeoutMs + graceMs, timeoutMs: fn.timeoutMs, reject: failed, prev: null, next: null, listed: false };
  track(call);
  sweeper ??= setInterval(sweep, BACKSTOP_SWEEP_MS).unref();
  let running: Promise<FunctionResponse>;
  try {
    running = fn.handle.invoke(req);
  } catch (e) {
    running = Promise.reject(e);
  }
  running.then(
    (r) => {
      if (!untrack(call)) return; // the backstop answered already
      let res: FunctionResponse;
      try {
        res = checkResponse(r, maxResponseBytes);
      } catch (e) {
        failed(e);
        return;
      }
      metrics.invocations.inc({ runtime: fn.runtime, result: 'ok' });
      done(null, res);
    },
    (e: unknown) => {
      if (untrack(call)) failed(e);
    },
  );
}

/**
 * Counts an answered function request in the per-function metrics (bounded labels,
 * telemetry/function-metrics.ts) and, when tracing is on, makes its server span: called after the
 * answer is written (`started`: performance.now() when the request was taken, `end`: now), out of
 * its way.
 */
export function observeFunctionRequest(
  metrics: Metrics, fn: ServedFunction, method: string, status: number, started: number,
  traceparent: string | undefined | null, tracestate: string | string[] | undefined | null, end = performance.now(),
): void {
  metrics.functions.observe(fn, status, (end - started) / 1000);
  const record = requestSpans.record;
  if (record === null) return;
  const slash = fn.appKey.indexOf('/');
  const namespace = fn.appKey.slice(0, slash);
  record({
    method, route: `/${namespace}${fn.path}`, status, runtime: fn.runtime, namespace, app: fn.appKey.slice(slash + 1), start: started, end,
    traceparent: traceparent ?? undefined, tracestate: typeof tracestate === 'string' ? tracestate : undefined,
  });
}

/** The first value of each query parameter (as URLSearchParams decodes them). */
export function firstValues(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) if (!(k in out)) out[k] = v;
  return out;
}

// A request path made only of these characters, with no dot segment and no percent sign, is its
// own WHATWG URL pathname (what `new URL()` would give: nothing to normalise, encode or resolve);
// any other target goes through `new URL()`.
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

/** The pathname and query string of an origin-form request target (`/…`), as `new URL()` reads them. */
export function splitTarget(target: string): { pathname: string; search: string } {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  if (PLAIN_PATH.test(path) && !path.includes('/.') && !target.includes('#')) {
    return { pathname: path, search: q === -1 ? '' : target.slice(q) };
  }
  try {
    const url = new URL(`http://localhost${target}`);
    return { pathname: url.pathname, search: url.search };
  } catch {
    return { pathname: '', search: '' };
  }
}

/** The request's headers as a Web Headers object lists them: lower-case names, repeats joined by ', '. */
function requestHeaders(req: IncomingMessage): Record<string, string> {
  const raw = req.rawHeaders;
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    if (name.startsWith(':')) continue;
    const prev = out[name];
    out[name] = prev === undefined ? value : `${prev}, ${value}`;
  }
  return out;
}

const HTTP_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

/**
 * The function's headers for the node response: lower-case names, hop-by-hop and content-length
 * dropped (the server frames the body and owns the connection), invalid names and values dropped,
 * repeats joined (set-cookie kept apart), and the default content-type for a body without one.
 */
function responseHeaders(headers: Record<string, string>, hasBody: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of Object.keys(headers)) {
    const name = k.toLowerCase();
    if (HOP_BY_HOP_AND_LENGTH.has(name)) continue;
    const value = String(headers[k]).replace(HTTP_WHITESPACE, '');
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      continue; // an invalid header name or value from the function is dropped, not a crash
    }
    const prev = out[name];
    if (prev === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = `${prev}, ${value}`;
  }
  if (hasBody && out['content-type'] === undefined) out['content-type'] = DEFAULT_CONTENT_TYPE;
  return out;
}

/** Writes a function's answer: one writeHead and one end, so headers and body leave in one write. */
export function writeFunctionResponse(res: ServerResponse, method: string, r: FunctionResponse): void {
  const noBody = r.status === 204 || r.status === 304 || method === 'HEAD';
  const headers = responseHeaders(r.headers, !noBody);
  if (noBody) {
    res.writeHead(r.status, headers);
    res.end();
    return;
  }
  headers['content-length'] = String(typeof r.body === 'string' ? Buffer.byteLength(r.body) : r.body.byteLength);
  res.writeHead(r.status, headers);
  res.end(r.body);
}

/** Writes a Web Response (an error answer of ours) to the node response. */
async function writeWeb(res: ServerResponse, web: Response): Promise<void> {
  const body = Buffer.from(await web.arrayBuffer());
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | string[]> = {};
  web.headers.forEach((v, k) => {
    headers[k] = v;
  });
  headers['content-length'] = String(body.byteLength);
  res.writeHead(web.status, headers);
  res.end(body);
}

/**
 * Reads the body as text, refusing more than `max` bytes (a ZvError PAYLOAD_TOO_LARGE) without
 * buffering past it; null when the client went away before it ended.
 */
function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        done();
        req.pause();
        reject(payloadTooLarge(max));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    };
    const onClose = (): void => {
      done();
      resolve(null);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}

/**
 * A node `request` listener that answers invoked functions itself and hands everything else to
 * `fallback` (the Hono app's listener).
 */
export function functionFirst(deps: HttpDeps, fallback: RequestListener): RequestListener {
  const maxResponse = deps.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const linger = deps.linger ?? lingerLimits(deps.maxBodyBytes);

  const fail = (req: IncomingMessage, res: ServerResponse, e: unknown, extra?: Record<string, string>): number => {
    const web = errorResponse(e, extra);
    // An answer given before the whole body arrived: read and discard the rest within bounds.
    if (!req.complete) lingerClose(req, linger);
    writeWeb(res, web).catch(() => res.destroy());
    return web.status;
  };

  // This path counts its answers in the HTTP metrics itself (no `finish` listener per request).
  const failCounted = (req: IncomingMessage, res: ServerResponse, started: number, e: unknown, extra?: Record<string, string>): void => {
    countRequest(deps.metrics, 'function', fail(req, res, e, extra), started);
  };

  // (the trace headers from the FunctionRequest's headers: req.headers would build node's own copy)
  const observe = (fn: ServedFunction, freq: FunctionRequest, status: number, started: number): void => {
    const end = performance.now();
    countRequest(deps.metrics, 'function', status, started, end);
    observeFunctionRequest(deps.metrics, fn, freq.method, status, started, freq.headers.traceparent, freq.headers.tracestate, end);
  };

  const answer = (req: IncomingMessage, res: ServerResponse, fn: ServedFunction, freq: FunctionRequest, started: number): void => {
    runFunction(fn, freq, deps.metrics, maxResponse, (e, r) => {
      if (r === null) {
        observe(fn, freq, fail(req, res, e), started);
        return;
      }
      let status = r.status;
      try {
        writeFunctionResponse(res, freq.method, r);
      } catch (err) {
        // e.g. a status node refuses
        if (!res.headersSent) status = fail(req, res, toZvError(err, 'FUNCTION_BAD_RESPONSE'));
        else res.destroy();
      }
      observe(fn, freq, status, started);
    });
  };

  return (req, res) => {
    const target = req.url ?? '/';
    // an absolute-form or asterisk target: the framework's adapter reads those
    if (!target.startsWith('/')) return fallback(req, res);
    const { pathname, search } = splitTarget(target);
    const split = splitNamespace(pathname);
    if (!split || RESERVED.has(split.namespace)) return fallback(req, res);
    const first = deps.serving.findFunction(split.namespace, split.path);
    // proxied functions (docker, services) stream through the Hono route; a miss answers there too
    if (!first || first.value.handle.fn.upstream) return fallback(req, res);
    const started = performance.now();
    const method = req.method ?? 'GET';
    const query = search.length > 1 ? firstValues(new URLSearchParams(search)) : {};
    const headers = requestHeaders(req);
    if (method === 'GET' || method === 'HEAD') {
      answer(req, res, first.value, { method, path: split.path, query, headers, body: '' }, started);
      return;
    }
    if (Number(req.headers['content-length'] ?? '0') > deps.maxBodyBytes) {
      failCounted(req, res, started, payloadTooLarge(deps.maxBodyBytes), { connection: 'close' });
      return;
    }
    // Read the whole body first, then look the function up again and invoke it in the same tick:
    // an update that lands while the body is uploading routes this request to the new code rather
    // than to an instance that is being disposed.
    readBody(req, deps.maxBodyBytes).then(
      (body) => {
        if (body === null) {
          res.destroy();
          return;
        }
        const match = deps.serving.findFunction(split.namespace, split.path);
        if (!match || match.value.handle.fn.upstream) {
          failCounted(req, res, started, new ZvError('NOT_FOUND', `no function at ${pathname}`));
          return;
        }
        answer(req, res, match.value, { method, path: split.path, query, headers, body }, started);
      },
      (e: unknown) => failCounted(req, res, started, e, { connection: 'close' }),
    );
  };
}
