// Request counts and durations for /metrics, observed on the node server's own events rather than
// as framework middleware, so synchronous routes keep the adapter's fast path.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Metrics } from '../telemetry/metrics.js';

function kindOf(url: string): string {
  const q = url.indexOf('?');
  const pathname = q === -1 ? url : url.slice(0, q);
  if (pathname.startsWith('/api/')) return 'api';
  if (pathname.startsWith('/static/')) return 'static';
  if (pathname === '/healthz' || pathname === '/readyz' || pathname === '/metrics') return 'system';
  return 'function';
}

/** Set on a request whose answer its handler counts itself (countRequest), so the listener skips it. */
const COUNTED = Symbol('zerverless.httpCounted');

/** Marks `req` as counted by its handler: the listener below leaves it alone. */
export function countedByHandler(req: IncomingMessage): void {
  (req as IncomingMessage & { [COUNTED]?: true })[COUNTED] = true;
}

/** Counts one answered request (`started`: performance.now() when it was taken). */
export function countRequest(metrics: Metrics, kind: string, status: number, started: number): void {
  metrics.httpRequests.inc({ kind, status: String(status) });
  metrics.httpDuration.observe({ kind }, (performance.now() - started) / 1000);
}

/**
 * A `request` listener for the node server that records every answered request when it finishes,
 * but those a handler that ran before it marked countedByHandler (the function path counts its
 * own answers as it writes them, without a `finish` listener per request).
 */
export function httpMetricsListener(metrics: Metrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if ((req as IncomingMessage & { [COUNTED]?: true })[COUNTED]) return;
    const started = performance.now();
    res.once('finish', () => countRequest(metrics, kindOf(req.url ?? '/'), res.statusCode, started));
  };
}
