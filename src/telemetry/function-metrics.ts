// Per-function request metrics with a bounded label set (docs/telemetry.md):
//   zerverless_function_requests_total{namespace, app, function, runtime, status_class}
//   zerverless_function_request_duration_seconds{namespace, app, function, runtime, status_class}
// At most `max` distinct (namespace, app, function, runtime) series exist at once; a function met
// beyond the cap is counted under namespace, app and function `_other`. Series of a deleted
// application, or of a function an application no longer has, are removed (which frees their slots).
// The request path asks for a function's handle once per served function object (a WeakMap) and
// then only adds to plain numbers of that handle (no label hashing per request: prom-client's own
// labelled children hash their labels on every call, about 2 µs); the registry reads the numbers
// when /metrics is scraped, through two collectors in prom-client's metric format.
import type { Metric, Registry } from 'prom-client';
import { histogramPoints, type MetricPoint } from './request-metrics.js';

export const DEFAULT_MAX_FUNCTION_SERIES = 2000;
/** The label value of every series beyond the cap. */
export const OTHER = '_other';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** What a served function is, for its labels (ServedFunction satisfies it). */
export interface FunctionIdentity {
  /** `namespace/app` */
  appKey: string;
  path: string;
  runtime: string;
}

/** The duration histogram's bucket bounds, seconds. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const B = DURATION_BUCKETS.length + 1; // + the +Inf bucket

/** One series group: request counts, duration sums and (non-cumulative) bucket counts per status class. */
export class FunctionSeriesHandle {
  live = true;
  readonly counts = new Float64Array(CLASSES.length);
  readonly sums = new Float64Array(CLASSES.length);
  readonly buckets = new Float64Array(CLASSES.length * B);
  constructor(readonly key: string, readonly labels: { namespace: string; app: string; function: string; runtime: string }) {}
}

const REQUESTS = 'zerverless_function_requests_total';
const DURATION = 'zerverless_function_request_duration_seconds';

export class FunctionMetrics {
  private readonly series = new Map<string, FunctionSeriesHandle>();
  private readonly byFunction = new WeakMap<object, FunctionSeriesHandle>();
  /** How many of `series` are `_other` groups (one per runtime). */
  private others = 0;

  constructor(registry: Registry, readonly max: number = DEFAULT_MAX_FUNCTION_SERIES) {
    const series = this.series;
    const requests = {
      name: REQUESTS, type: 'counter', aggregator: 'sum',
      help: 'Function requests answered, by function and status class (at most 2,000 functions; beyond them namespace, app and function are _other)',
      get: async () => ({ name: REQUESTS, help: requests.help, type: 'counter', aggregator: 'sum', values: counterValues(series) }),
      reset: () => undefined,
    };
    const durations = {
      name: DURATION, type: 'histogram', aggregator: 'sum',
      help: 'Time to answer a function request, by function and status class (same bounded labels as zerverless_function_requests_total)',
      get: async () => ({ name: DURATION, help: durations.help, type: 'histogram', aggregator: 'sum', values: histogramValues(series) }),
      reset: () => undefined,
    };
    registry.registerMetric(requests as unknown as Metric);
    registry.registerMetric(durations as unknown as Metric);
  }

  /** Distinct series groups now (the `_other` group included once made). */
  get size(): number {
    return this.series.size;
  }

  /** The handle of a function's series: its own while under the cap, else the `_other` one. */
  handle(namespace: string, app: string, fn: string, runtime: string): FunctionSeriesHandle {
    const key = `${namespace}\0${app}\0${fn}\0${runtime}`;
    let h = this.series.get(key);
    if (h) return h;
    const otherKey = `${OTHER}\0${OTHER}\0${OTHER}\0${runtime}`;
    // Slots are for real functions; the `_other` groups (one per runtime) come on top of them.
    if (this.series.size - this.others >= this.max) {
      h = this.series.get(otherKey);
      if (!h) {
        h = new FunctionSeriesHandle(otherKey, { namespace: OTHER, app: OTHER, function: OTHER, runtime });
        this.series.set(otherKey, h);
        this.others++;
      }
      return h;
    }
    h = new FunctionSeriesHandle(key, { namespace, app, function: fn, runtime });
    this.series.set(key, h);
    return h;
  }

  /** The handle of a served function, cached on the object. */
  of(fn: FunctionIdentity): FunctionSeriesHandle {
    let h = this.byFunction.get(fn);
    if (h && h.live) return h;
    const slash = fn.appKey.indexOf('/');
    h = this.handle(fn.appKey.slice(0, slash), fn.appKey.slice(slash + 1), fn.path, fn.runtime);
    this.byFunction.set(fn, h);
    return h;
  }

  /** Counts one answered request of `fn` with HTTP status `status`, `seconds` long. */
  observe(fn: FunctionIdentity, status: number, seconds: number): void {
    const h = this.of(fn);
    const i = status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : 4;
    let b = 0;
    while (b < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[b] as number)) b++;
    h.counts[i]! += 1;
    h.sums[i]! += seconds;
    h.buckets[i * B + b]! += 1;
  }

  /** Removes every series of an application (deleted). */
  removeApp(namespace: string, app: string): void {
    this.retain(namespace, app, new Set());
  }

  /** Removes the series of an application's functions not in `functions` (the paths it serves now). */
  retain(namespace: string, app: string, functions: ReadonlySet<string>): void {
    const prefix = `${namespace}\0${app}\0`;
    for (const [key, h] of this.series) {
      if (!key.startsWith(prefix) || functions.has(h.labels.function)) continue;
      this.drop(key, h);
    }
  }

  private drop(key: string, h: FunctionSeriesHandle): void {
    h.live = false;
    this.series.delete(key);
  }
}

function counterValues(series: Map<string, FunctionSeriesHandle>): MetricPoint[] {
  const out: MetricPoint[] = [];
  for (const h of series.values()) {
    for (let i = 0; i < CLASSES.length; i++) {
      if (h.counts[i] === 0) continue;
      out.push({ labels: { ...h.labels, status_class: CLASSES[i] as string }, value: h.counts[i] as number });
    }
  }
  return out;
}

function histogramValues(series: Map<string, FunctionSeriesHandle>): MetricPoint[] {
  const out: MetricPoint[] = [];
  for (const h of series.values()) {
    for (let i = 0; i < CLASSES.length; i++) {
      if (h.counts[i] === 0) continue;
      histogramPoints(out, DURATION, { ...h.labels, status_class: CLASSES[i] as string }, DURATION_BUCKETS, h.buckets, i * B, h.sums[i] as number, h.counts[i] as number);
    }
  }
  return out;
}
