// OpenTelemetry traces, on only when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). This module imports nothing of OpenTelemetry: `startTracing`
// loads otel.ts (and the SDK) with a dynamic import, so a server without an endpoint loads none of
// it, and the request path pays one null check (`requestSpans.record`).

/** One answered function request, as its server span shows it (no query string, no header but traceparent/tracestate). */
export interface RequestSpanInfo {
  method: string;
  /** The function's route template: `/<namespace><function path>`. */
  route: string;
  status: number;
  runtime: string;
  namespace: string;
  app: string;
  /** performance.now() at the start and the end. */
  start: number;
  end: number;
  traceparent: string | undefined;
  tracestate: string | undefined;
}

/** Where the function path hands its requests when tracing is on (null: off). */
export const requestSpans: { record: ((info: RequestSpanInfo) => void) | null } = { record: null };

export interface Tracing {
  /** Exports what is queued (within the export time limit) and stops. */
  close(): Promise<void>;
}

type Env = Record<string, string | undefined>;

/** Whether the environment names an OTLP endpoint for traces (and does not turn traces off). */
export function tracingConfigured(env: Env = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/**
 * Starts exporting the spans of syncs (from the sync step events) and of function requests when an
 * endpoint is configured; null when not (nothing is loaded).
 */
export async function startTracing(opts: { env?: Env; version?: string; onError?: (message: string) => void } = {}): Promise<Tracing | null> {
  const env = opts.env ?? process.env;
  if (!tracingConfigured(env)) return null;
  const { startOtel } = await import('./otel.js');
  return startOtel({ version: opts.version ?? '', onError: opts.onError ?? (() => undefined) });
}
