// Prometheus metrics (prom-client) on a registry of our own, served at /metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DEFAULT_MAX_FUNCTION_SERIES, FunctionMetrics } from './function-metrics.js';
import { RequestCounter, RequestHistogram } from './request-metrics.js';

const SLOW_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export class Metrics {
  readonly registry = new Registry();
  // The three metrics of the request path add to plain numbers (request-metrics.ts).
  readonly httpRequests = new RequestCounter(this.registry, {
    name: 'zerverless_http_requests_total',
    help: 'HTTP requests answered, by kind (function, static, api, system) and status code',
    labelNames: ['kind', 'status'] as const,
  });
  readonly httpDuration = new RequestHistogram(this.registry, {
    name: 'zerverless_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by kind',
    labelNames: ['kind'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  readonly invocations = new RequestCounter(this.registry, {
    name: 'zerverless_function_invocations_total',
    help: 'Function invocations by runtime and result (ok or an error code)',
    labelNames: ['runtime', 'result'] as const,
  });
  readonly syncs = new Counter({
    name: 'zerverless_syncs_total',
    help: 'Application syncs by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly pollLateness = new Gauge({
    name: 'zerverless_poll_lateness_seconds',
    help: 'How late the latest branch check of the last poll round started after its slot (checks are spread evenly over the poll interval)',
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'zerverless_auth_failures_total',
    help: 'API calls refused for want of a valid token (missing, unknown, expired) or of a permission (forbidden)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly webhooks = new Counter({
    name: 'zerverless_webhooks_total',
    help: 'Webhook deliveries by provider and result (triggered, no_match, deleted, tag, ping, ignored, duplicate, unauthorized, bad_request, too_large)',
    labelNames: ['provider', 'result'] as const,
    registers: [this.registry],
  });
  readonly notifications = new Counter({
    name: 'zerverless_notifications_total',
    help: 'Notification deliveries by result: sent, failed (every try failed), dropped (too many waiting for one URL)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly syncDuration = new Histogram({
    name: 'zerverless_sync_duration_seconds',
    help: 'Duration of one sync of one application, by namespace, application and result (success or error)',
    labelNames: ['namespace', 'app', 'result'] as const,
    buckets: SLOW_BUCKETS,
    registers: [this.registry],
  });
  readonly gitDuration = new Histogram({
    name: 'zerverless_git_duration_seconds',
    help: 'Duration of git work against a remote, by operation (ls-remote, fetch) and result',
    labelNames: ['op', 'result'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly buildDuration = new Histogram({
    name: 'zerverless_build_duration_seconds',
    help: 'Duration of builds, by kind (docker: a docker function image; service: fetching, installing and building a service version) and result',
    labelNames: ['kind', 'result'] as const,
    buckets: SLOW_BUCKETS,
    registers: [this.registry],
  });
  /** The bounded per-function series (function-metrics.ts). */
  readonly functions: FunctionMetrics;
  /** Where the applications gauge reads the statuses from when it is scraped. */
  private appStatuses: (() => Promise<string[]>) | null = null;
  readonly applications: Gauge<'status'>;

  constructor(opts: { maxFunctionSeries?: number } = {}) {
    // zerverless_function_requests_total and zerverless_function_request_duration_seconds
    this.functions = new FunctionMetrics(this.registry, opts.maxFunctionSeries ?? DEFAULT_MAX_FUNCTION_SERIES);
    collectDefaultMetrics({ register: this.registry, prefix: 'zerverless_' });
    const statuses = () => this.appStatuses?.() ?? Promise.resolve([]);
    this.applications = new Gauge({
      name: 'zerverless_applications',
      help: 'Registered applications by status',
      labelNames: ['status'] as const,
      registers: [this.registry],
      // Counted at scrape time, rather than re-read after every change.
      async collect() {
        this.reset();
        for (const s of await statuses()) this.inc({ status: s });
      },
    });
  }

  countApplications(statuses: () => Promise<string[]>): void {
    this.appStatuses = statuses;
  }
}
