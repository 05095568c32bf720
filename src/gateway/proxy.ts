// Streams a request to an upstream HTTP server (a docker function's container, later a service's
// process) and its answer back: method, headers, query and body go through unchanged but for
// hop-by-hop headers; the path is the one below the namespace, with X-Forwarded-Prefix.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ZvError } from '../errors/registry.js';
import { HOP_BY_HOP } from '../core/http-headers.js';
import type { Upstream } from '../runtimes/types.js';
import { declaresMoreThan, errorResponse, payloadTooLarge } from '../errors/respond.js';

export interface ProxyRequest {
  req: Request;
  upstream: Upstream;
  /** Path and query to send: the part below the namespace. */
  pathAndQuery: string;
  namespace: string;
  clientAddress?: string;
  timeoutMs: number;
  /** Request bodies over this many bytes are refused with 413. */
  maxBodyBytes: number;
  /** Called once the exchange is over (answer streamed, failed or aborted). */
  done: () => void;
  /**
   * Called when the upstream stops taking the request body before all of it arrived (it answered
   * early and closed): the rest must be read and discarded (lingering), or the client gets a reset.
   */
  bodyAbandoned?: () => void;
}

function requestHeaders(p: ProxyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  p.req.headers.forEach((v, k) => {
    if (!HOP_BY_HOP.has(k)) out[k] = v;
  });
  const prior = out['x-forwarded-for'];
  if (p.clientAddress) out['x-forwarded-for'] = prior ? `${prior}, ${p.clientAddress}` : p.clientAddress;
  if (out.host) out['x-forwarded-host'] = out.host;
  out['x-forwarded-proto'] = new URL(p.req.url).protocol.replace(':', '');
  out['x-forwarded-prefix'] = `/${p.namespace}`;
  return out;
}

function responseHeaders(res: IncomingMessage): Headers {
  const out = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k)) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.append(k, one);
  }
  return out;
}

/** Resolves with the answer, and `error` set when the platform answered instead of the upstream. */
export function proxyRequest(p: ProxyRequest): Promise<{ res: Response; error?: ZvError }> {
  return new Promise((resolve) => {
    let settled = false;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      p.done();
    };
    const fail = (e: ZvError) => {
      if (!settled) {
        settled = true;
        resolve({ res: errorResponse(e), error: e });
      }
      finish();
    };

    const upstreamReq = httpRequest({
      host: p.upstream.host,
      port: p.upstream.port,
      method: p.req.method,
      path: p.pathAndQuery,
      headers: requestHeaders(p),
    });
    const timer = setTimeout(() => {
      upstreamReq.destroy(new ZvError('FUNCTION_TIMEOUT', `no answer within ${p.timeoutMs} ms`));
    }, p.timeoutMs);
    // The client went away: stop the upstream exchange too (and stop counting it in flight).
    p.req.signal.addEventListener('abort', () => {
      upstreamReq.destroy(new ZvError('FUNCTION_UNAVAILABLE', 'the client closed the connection'));
      finish();
    }, { once: true });

    upstreamReq.on('error', (e: Error & { code?: string }) => {
      if (e instanceof ZvError) return fail(e);
      if (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'EPIPE') {
        return fail(new ZvError('FUNCTION_UNAVAILABLE', `the upstream at ${p.upstream.host}:${p.upstream.port} is not answering (${e.code})`));
      }
      fail(new ZvError('FUNCTION_UNAVAILABLE', `the upstream failed: ${e.message}`));
    });

    upstreamReq.on('response', (res) => {
      settled = true;
      const noBody = p.req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
      res.once('end', finish);
      res.once('close', finish);
      res.once('error', finish);
      if (noBody) res.resume();
      resolve({ res: new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream), { status: res.statusCode ?? 502, headers: responseHeaders(res) }) });
    });

    const body = p.req.body;
    if (declaresMoreThan(p.req, p.maxBodyBytes)) {
      upstreamReq.destroy();
      return fail(payloadTooLarge(p.maxBodyBytes));
    }
    if (!body) upstreamReq.end();
    else {
      const stream = Readable.fromWeb(body as WebReadableStream);
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > p.maxBodyBytes) {
          stream.destroy();
          upstreamReq.destroy(payloadTooLarge(p.maxBodyBytes));
        }
      });
      stream.on('error', (e) => upstreamReq.destroy(e));
      let bodyEnded = false;
      stream.once('end', () => { bodyEnded = true; });
      // The upstream closed (or failed) while the body was still coming: stop feeding it, and let
      // the gateway drain what the client still sends.
      upstreamReq.once('close', () => {
        if (bodyEnded) return;
        stream.unpipe(upstreamReq);
        stream.destroy();
        p.bodyAbandoned?.();
      });
      stream.pipe(upstreamReq);
    }
  });
}
