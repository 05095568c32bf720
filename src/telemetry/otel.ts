// The OpenTelemetry side of tracing.ts, loaded only when an OTLP endpoint is configured.
// Spans go through a BatchSpanProcessor (a bounded queue, OTEL_BSP_MAX_QUEUE_SIZE, default 2048:
// spans beyond it are dropped; an export time limit, OTEL_BSP_EXPORT_TIMEOUT, default 30 s) to the
// OTLP/HTTP (JSON) exporter, which reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS and _TIMEOUT.
// The provider reads OTEL_TRACES_SAMPLER(_ARG); the resource reads OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES (service.name defaults to `zerverless`). Nothing here ever waits on an
// export: spans are handed to the processor and the work goes on.
//
// Sync spans come from the `zerverless:sync:step` events: a root span `sync <namespace>/<app>` from
// the first step's start to the end of `finish`, one child per step (head, snapshot, read,
// ownership, plan, prepare, commit, services, finish) and a `build` child of the step a docker
// function's image or a service version is built in. Request spans are made when the answer is
// written, with the times it started and ended, as children of the request's W3C `traceparent`.
import {
  DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, diag, trace,
  type Attributes, type Context, type Span, type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';
import { CHANNELS, observer, type EventMeta } from './events.js';

/** The sync's step events (CHANNELS.syncStep: `phase` start / end, `syncId`, `step`, `result`). */
const SYNC_STEP = 'zerverless:sync:step';
import { requestSpans, type RequestSpanInfo, type Tracing } from './tracing.js';

interface RunningSync {
  key: string;
  root: Span;
  context: Context;
  step: { name: string; span: Span } | null;
  failed: boolean;
}

const MAX_RUNNING = 10_000;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export function startOtel(opts: { version: string; onError: (message: string) => void }): Tracing {
  // The SDK reports failed exports through diag: at most one message a minute reaches the log.
  let lastError = 0;
  const report = (...args: unknown[]): void => {
    const now = Date.now();
    if (now - lastError < 60_000) return;
    lastError = now;
    opts.onError(args.map(String).join(' '));
  };
  const quiet = (): void => undefined;
  diag.setLogger({ error: report, warn: report, info: quiet, debug: quiet, verbose: quiet }, DiagLogLevel.WARN);

  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'zerverless', ...(opts.version ? { [ATTR_SERVICE_VERSION]: opts.version } : {}) })
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  const tracer: Tracer = provider.getTracer('zerverless', opts.version || undefined);
  const propagator = new W3CTraceContextPropagator();

  const syncs = new Map<unknown, RunningSync>();
  const builds = new Map<string, Span>();
  const subs = observer();
  const on = subs.on;
  const endStep = (s: RunningSync, failed: boolean): void => {
    if (!s.step) return;
    if (failed) s.step.span.setStatus({ code: SpanStatusCode.ERROR });
    s.step.span.end();
    s.step = null;
  };

  on(SYNC_STEP, (m) => {
    const id = m.syncId;
    const namespace = str(m.namespace);
    const app = str(m.app);
    let s = syncs.get(id);
    if (m.phase === 'start') {
      if (!s) {
        if (syncs.size >= MAX_RUNNING) syncs.clear();
        const attributes: Attributes = { 'zerverless.namespace': namespace, 'zerverless.app': app, 'zerverless.branch': str(m.branch), 'zerverless.trigger': str(m.trigger), 'zerverless.sync_id': Number(id) };
        const root = tracer.startSpan(`sync ${namespace}/${app}`, { kind: SpanKind.INTERNAL, attributes }, ROOT_CONTEXT);
        s = { key: `${namespace}/${app}`, root, context: trace.setSpan(ROOT_CONTEXT, root), step: null, failed: false };
        syncs.set(id, s);
      }
      endStep(s, false);
      const name = str(m.step);
      s.step = { name, span: tracer.startSpan(name, { attributes: { 'zerverless.step': name } }, s.context) };
      return;
    }
    if (!s) return;
    const failed = m.result === 'error';
    if (failed && m.step !== 'finish') s.failed = true;
    endStep(s, failed);
    if (typeof m.commit === 'string') s.root.setAttribute('zerverless.commit', m.commit);
    if (m.step !== 'finish') return;
    syncs.delete(id);
    s.root.setAttribute('zerverless.result', s.failed ? 'error' : 'success');
    if (s.failed) s.root.setStatus({ code: SpanStatusCode.ERROR });
    s.root.end();
  });

  /** The sync a build belongs to: the application's (docker function), or the namespace's sync applying its services. */
  const buildParent = (m: EventMeta): Context => {
    const key = `${str(m.namespace)}/${str(m.app)}`;
    let found: RunningSync | undefined;
    for (const s of syncs.values()) {
      if (s.key === key) found = s;
      else if (!found && s.key.startsWith(`${str(m.namespace)}/`) && s.step?.name === 'services') found = s;
    }
    if (!found) return ROOT_CONTEXT;
    return found.step ? trace.setSpan(found.context, found.step.span) : found.context;
  };
  const buildKey = (m: EventMeta): string => `${str(m.namespace)}\0${str(m.app)}\0${str(m.path)}\0${str(m.version)}`;
  on(CHANNELS.buildStart, (m) => {
    const kind = 'dockerfile' in m ? 'docker' : 'service';
    const attributes: Attributes = { 'zerverless.namespace': str(m.namespace), 'zerverless.build.kind': kind };
    if (kind === 'docker') Object.assign(attributes, { 'zerverless.app': str(m.app), 'zerverless.function': str(m.path) });
    else Object.assign(attributes, { 'zerverless.service': str(m.app), 'zerverless.version': str(m.version) });
    if (builds.size >= MAX_RUNNING) builds.clear();
    builds.set(buildKey(m), tracer.startSpan('build', { attributes }, buildParent(m)));
  });
  on(CHANNELS.buildStop, (m) => {
    const k = buildKey(m);
    const span = builds.get(k);
    if (!span) return;
    builds.delete(k);
    if (m.result === 'error') span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });

  requestSpans.record = (r: RequestSpanInfo): void => {
    try {
      const carrier: Record<string, string> = {};
      if (r.traceparent) carrier.traceparent = r.traceparent;
      if (r.tracestate) carrier.tracestate = r.tracestate;
      const parent = r.traceparent ? propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter) : ROOT_CONTEXT;
      const span = tracer.startSpan(`${r.method} ${r.route}`, {
        kind: SpanKind.SERVER,
        startTime: r.start,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: r.method, [ATTR_HTTP_ROUTE]: r.route, [ATTR_HTTP_RESPONSE_STATUS_CODE]: r.status,
          'zerverless.runtime': r.runtime, 'zerverless.namespace': r.namespace, 'zerverless.app': r.app,
        },
      }, parent);
      if (r.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end(r.end);
    } catch {
      // never in a request's way
    }
  };

  return {
    async close() {
      requestSpans.record = null;
      subs.close();
      for (const s of syncs.values()) {
        endStep(s, false);
        s.root.end();
      }
      syncs.clear();
      for (const b of builds.values()) b.end();
      builds.clear();
      await provider.shutdown().catch(() => undefined);
      diag.disable();
    },
  };
}
