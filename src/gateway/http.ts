// The HTTP edge: one Hono app for system endpoints, the management API, static sites and functions
// (`app.fetch(Request) → Response`). On the node server, invoked functions are answered ahead of it
// on the raw request and response (function-path.ts, `createGateway`), static files ahead of its
// dispatch (staticFirst); everything else goes through the app.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { splitNamespace } from '../core/routing.js';
import { RESERVED_NAMESPACES } from '../core/names.js';
import { HOP_BY_HOP_AND_LENGTH } from '../core/http-headers.js';
import { ZvError, toZvError } from '../errors/registry.js';
import type { FunctionRequest } from '../core/function-contract.js';
import type { BlobStore } from '../store/types.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { ServingTable } from '../serving/table.js';
import { staticFirst, staticRoute } from './static.js';
import { BlobCache } from './blob-cache.js';
import { proxyRequest } from './proxy.js';
import { getConnInfo } from '@hono/node-server/conninfo';
import { declaresMoreThan, errorOf, errorResponse, isPlatformAnswer, payloadTooLarge } from '../errors/respond.js';
import { DEFAULT_MAX_RESPONSE_BYTES } from '../runtimes/response-cap.js';
import { lingerClose, lingerLimits, type LingerLimits } from './linger.js';
import type { IncomingMessage, RequestListener } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { callFunction, firstValues, functionFirst, observeFunctionRequest } from './function-path.js';
import { withHttpMetrics } from './http-metrics.js';

export interface HttpDeps {
  serving: ServingTable;
  blobs: BlobStore;
  metrics: Metrics;
  /** The management API: mounted under /api, behind `guard` (CORS, tokens, JSON bodies). */
  api: Hono;
  guard: MiddlewareHandler;
  /** The web console, mounted at /ui (src/ui/console.ts). */
  console?: Hono;
  /** Whether /metrics answers without a token (--public-metrics). */
  publicMetrics: boolean;
  ready: () => boolean;
  maxBodyBytes: number;
  /**
   * Largest response of an invoked (not proxied) function, default 10 MiB: the runtimes refuse a
   * bigger one where it is made; this is the backstop.
   */
  maxResponseBytes?: number;
  /** Webhooks (POST /hooks/{provider}): mounted without the API's guard (they are signed, not token-authenticated). */
  hooks?: Hono;
  /** After a 413, how much of the rest of the body is read and discarded (default: lingerLimits). */
  linger?: LingerLimits;
}

const RESERVED = new Set(RESERVED_NAMESPACES);

function responseHeaders(headers: Record<string, string>): Headers {
  const out = new Headers();
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    // A function may not set these: the server frames the body and owns the connection.
    if (HOP_BY_HOP_AND_LENGTH.has(name)) continue;
    try {
      out.append(name, v);
    } catch {
      // an invalid header name or value from the function is dropped, not a crash
    }
  }
  return out;
}

/** Reads the body as text, refusing more than `max` bytes (413) without buffering past it. */
async function readBody(req: Request, max: number): Promise<string> {
  if (declaresMoreThan(req, max)) throw payloadTooLarge(max);
  if (!req.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > max) throw payloadTooLarge(max);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function invokeFunction(c: Context, deps: HttpDeps): Promise<Response> {
  const url = new URL(c.req.url);
  const split = splitNamespace(url.pathname);
  if (!split || RESERVED.has(split.namespace)) return errorOf('NOT_FOUND');
  const first = deps.serving.findFunction(split.namespace, split.path);
  if (!first) return errorOf('NOT_FOUND', `no function at ${url.pathname}`);
  const upstreamOf = first.value.handle.fn.upstream?.bind(first.value.handle.fn);
  if (upstreamOf) {
    // Proxied (docker): stream both ways; counted in flight from here, so a switch drains it.
    const fn = first.value;
    const upstream = upstreamOf();
    if (!upstream) return errorResponse(new ZvError('FUNCTION_UNAVAILABLE', `the container of ${fn.path} is not running`));
    const started = performance.now();
    const done = fn.handle.begin();
    let clientAddress: string | undefined;
    try {
      clientAddress = getConnInfo(c).remote.address;
    } catch {
      clientAddress = undefined; // not served by the node adapter (e.g. in-process tests)
    }
    const { res, error } = await proxyRequest({
      req: c.req.raw, upstream, pathAndQuery: `${split.path}${url.search}`, namespace: split.namespace, clientAddress,
      timeoutMs: fn.timeoutMs, maxBodyBytes: deps.maxBodyBytes, done,
      bodyAbandoned: () => {
        const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
        if (incoming && !incoming.complete) lingerClose(incoming, deps.linger ?? lingerLimits(deps.maxBodyBytes));
      },
    });
    deps.metrics.invocations.inc({ runtime: fn.runtime, result: error?.code ?? 'ok' });
    // timed to the response head: the body streams on
    observeFunctionRequest(deps.metrics, fn, c.req.method, res.status, started, c.req.header('traceparent'), c.req.header('tracestate'));
    return res;
  }
  const headers: Record<string, string> = {};
  c.req.raw.headers.forEach((v, k) => {
    headers[k] = v;
  });
  // Read the whole body first, then look the function up again and invoke it in the same tick:
  // an update that lands while the body is uploading routes this request to the new code rather
  // than to an instance that is being disposed.
  let body: string;
  try {
    body = c.req.method === 'GET' || c.req.method === 'HEAD' ? '' : await readBody(c.req.raw, deps.maxBodyBytes);
  } catch (e) {
    return errorResponse(e, { connection: 'close' });
  }
  const match = deps.serving.findFunction(split.namespace, split.path);
  if (!match) return errorOf('NOT_FOUND', `no function at ${url.pathname}`);
  const fn = match.value;
  const req: FunctionRequest = { method: c.req.method, path: split.path, query: firstValues(url.searchParams), headers, body };
  try {
    const res = await callFunction(fn, req, deps.metrics, deps.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
    const noBody = res.status === 204 || res.status === 304 || c.req.method === 'HEAD';
    return new Response(noBody ? null : res.body, { status: res.status, headers: responseHeaders(res.headers) });
  } catch (e) {
    return errorResponse(toZvError(e, 'FUNCTION_ERROR'));
  }
}

export function createHttpApp(deps: HttpDeps): Hono {
  const app = new Hono({ strict: false });
  const cache = new BlobCache(deps.blobs);
  const limit = bodyLimit({ maxSize: deps.maxBodyBytes, onError: () => errorResponse(payloadTooLarge(deps.maxBodyBytes)) });

  app.onError((err) => errorResponse(err));
  app.notFound(() => errorOf('NOT_FOUND'));

  // An answer of ours given before the whole body arrived (a 413; a container that stopped
  // reading, 503): linger, reading and discarding the rest within bounds, so the client reads the
  // answer instead of a reset. Served by the node adapter only (c.env.incoming).
  const linger = deps.linger ?? lingerLimits(deps.maxBodyBytes);
  app.use('*', async (c, next) => {
    await next();
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    if (incoming && !incoming.complete && isPlatformAnswer(c.res)) lingerClose(incoming, linger);
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => (deps.ready() ? c.json({ status: 'ready' }) : errorOf('NOT_READY')));
  const metrics = async (c: Context) => c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType });
  if (deps.publicMetrics) app.get('/metrics', metrics);
  else app.get('/metrics', deps.guard, metrics);

  app.use('/api/*', limit, deps.guard);
  app.route('/api', deps.api);
  app.all('/api/*', () => errorOf('NOT_FOUND'));

  // The web console (src/ui): its own headers (CSP, no framing); the browser client calls /api.
  if (deps.console) app.route('/ui', deps.console);
  app.all('/ui/*', () => errorOf('NOT_FOUND'));

  if (deps.hooks) app.route('/hooks', deps.hooks);
  app.all('/hooks/*', () => errorOf('NOT_FOUND'));

  app.all('/static/*', (c) => staticRoute(c.req.raw, c.env, deps.serving, deps.blobs, cache));

  app.all('*', (c) => invokeFunction(c, deps));
  // Static files are answered before the framework's dispatch (its cost is most of a small file's).
  app.fetch = staticFirst(app.fetch, (req, env) => staticRoute(req, env, deps.serving, deps.blobs, cache), linger);
  return app;
}

/**
 * The node server's `request` listener: invoked functions on the raw node path (function-path.ts),
 * everything else through the Hono app (its node adapter). `app` is the same app createHttpApp makes.
 */
export function createGateway(deps: HttpDeps): { app: Hono; listener: RequestListener } {
  const app = createHttpApp(deps);
  // HTTP metrics: the function path counts its own answers, everything else is counted here
  return { app, listener: functionFirst(deps, withHttpMetrics(deps.metrics, getRequestListener(app.fetch))) };
}
