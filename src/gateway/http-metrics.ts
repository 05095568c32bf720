// Request counts and durations for /metrics, observed on the node server's own events rather than
// as framework middleware, so synchronous routes keep the adapter's fast path.
import type { RequestListener } from 'node:http';
import type { Metrics } from '../telemetry/metrics.js';

/** The `kind` label of a request the fallback answers, from its target. */
export function kindOf(url: string): string {
  const q = url.indexOf('?');
  const pathname = q === -1 ? url : url.slice(0, q);
  if (pathname.startsWith('/api/')) return 'api';
  if (pathname.startsWith('/static/')) return 'static';
  if (pathname === '/healthz' || pathname === '/readyz' || pathname === '/metrics') return 'system';
  if (pathname.startsWith('/hooks/')) return 'hooks';
  if (pathname === '/ui' || pathname.startsWith('/ui/')) return 'console';
  return 'function';
}

/** Counts one answered request (`started`: performance.now() when it was taken; `end`: now). */
export function countRequest(metrics: Metrics, kind: string, status: number, started: number, end = performance.now()): void {
  metrics.httpRequests.inc({ kind, status: String(status) });
  metrics.httpDuration.observe({ kind }, (end - started) / 1000);
}

/**
 * `listener`, with every request it answers counted when the answer finishes. The gateway wraps its
 * fallback (the framework) in it; the function path counts its own answers as it writes them
 * (countRequest), without a `finish` listener per request.
 */
export function withHttpMetrics(metrics: Metrics, listener: RequestListener): RequestListener {
  return (req, res) => {
    const started = performance.now();
    res.once('finish', () => countRequest(metrics, kindOf(req.url ?? '/'), res.statusCode, started));
    return listener(req, res);
  };
}
