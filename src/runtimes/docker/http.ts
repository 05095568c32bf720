// Plain HTTP to a function's container on loopback: the readiness probe (any HTTP answer counts)
// and a buffered request for `invoke` (tests and non-streaming callers; the gateway streams itself).
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import { HOP_BY_HOP_AND_LENGTH } from '../../core/http-headers.js';

/** Whether something answers HTTP on 127.0.0.1:port within `timeoutMs`. */
export function probeHttp(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1', port, method: 'GET', path: '/', agent: false, timeout: timeoutMs,
      headers: { 'user-agent': 'zerverless-readiness', connection: 'close' },
    }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Not passed on: connection headers, the length of a body sent whole, and the gateway's own Host. */
const dropped = (name: string): boolean => HOP_BY_HOP_AND_LENGTH.has(name) || name === 'host';

export class UpstreamTimeout extends Error {}

function flatten(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || dropped(k)) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * Sends `req` to 127.0.0.1:port with the path below the namespace and `X-Forwarded-Prefix`.
 * Rejects with UpstreamTimeout after `timeoutMs`, or with the socket error.
 */
export function forward(port: number, req: FunctionRequest, prefix: string, timeoutMs: number): Promise<FunctionResponse> {
  const qs = new URLSearchParams(req.query).toString();
  const path = `${req.path.startsWith('/') ? req.path : `/${req.path}`}${qs ? `?${qs}` : ''}`;
  const body = Buffer.from(req.body, 'utf8');
  const headers: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(req.headers)) if (!dropped(k.toLowerCase())) headers[k] = v;
  headers['x-forwarded-prefix'] = prefix;
  headers['content-length'] = body.length;
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const r = request({ host: '127.0.0.1', port, method: req.method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => settle(() => resolve({
        status: res.statusCode ?? 502, headers: flatten(res.headers), body: new Uint8Array(Buffer.concat(chunks)),
      })));
      res.on('error', (e) => settle(() => reject(e)));
    });
    const timer = setTimeout(() => {
      settle(() => reject(new UpstreamTimeout(`no answer within ${timeoutMs} ms`)));
      r.destroy();
    }, timeoutMs);
    r.on('error', (e) => settle(() => reject(e)));
    r.end(body);
  });
}
