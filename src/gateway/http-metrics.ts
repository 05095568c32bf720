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

/** A `request` listener for the node server that records every answered request. */
export function httpMetricsListener(metrics: Metrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = performance.now();
    res.once('finish', () => {
      const kind = kindOf(req.url ?? '/');
      metrics.httpRequests.inc({ kind, status: String(res.statusCode) });
      metrics.httpDuration.observe({ kind }, (performance.now() - started) / 1000);
    });
  };
}
