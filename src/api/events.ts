// Live events over server-sent events (PRODUCT.md §12, GET /api/events). The hub turns the
// telemetry channels (telemetry/events.ts: sync steps, builds, deploys, health checks, drift
// repairs, suspend/resume/rollback) and the applications' status changes into numbered events, kept
// in a bounded ring so a client that reconnects with Last-Event-ID gets what it missed. Each stream
// sees only the namespaces its token covers. Bounded everywhere: events kept, streams open (in all
// and per token), bytes buffered for a slow client (it is dropped past the bound).
import diagnostics_channel from 'node:diagnostics_channel';
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Hono, type Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { ZvError } from '../errors/registry.js';
import { errorResponse } from '../errors/respond.js';
import { CHANNELS, type EventMeta } from '../telemetry/events.js';
import type { Principal } from '../core/access.js';
import { coversNamespace } from '../core/access.js';
import { principalOf, requireAccess } from './auth-context.js';

/** One event as the stream sends it: `id`, `event` (type) and `data` (JSON with namespace and app). */
export interface LiveEvent {
  id: number;
  type: string;
  namespace: string;
  app: string;
  data: Record<string, unknown>;
  /** When it was made (ms since the epoch): events older than the ring's age bound are dropped. */
  at: number;
}

export interface EventHubOptions {
  /**
   * An application's status object now (null: it no longer exists). `settled`: a sync just ended
   * (its finish step), which must not show as `syncing` while its queue slot is released.
   */
  statusOf(namespace: string, name: string, settled: boolean): Promise<unknown>;
  /** Events kept for replay (default 1,000). */
  maxEvents?: number;
  /** How long events are kept for replay (default 10 minutes). */
  maxAgeMs?: number;
  now?: () => number;
}

/** Fields of the telemetry metadata never sent to clients (the repository is in the status already). */
const DROPPED = new Set(['repo', 'branch', 'app', 'namespace', 'application']);

/** Telemetry channel → event type; `status` after it: the application's status is read again. */
const SOURCES: { channel: string; type: string; phase?: string; status?: boolean }[] = [
  { channel: CHANNELS.syncStep, type: 'step' },
  { channel: CHANNELS.buildStart, type: 'build', phase: 'start' },
  { channel: CHANNELS.buildStop, type: 'build', phase: 'end' },
  { channel: CHANNELS.deployStart, type: 'deploy', phase: 'start' },
  { channel: CHANNELS.deployStop, type: 'deploy', phase: 'end' },
  { channel: CHANNELS.upgradeStart, type: 'upgrade', phase: 'start' },
  { channel: CHANNELS.upgradeStop, type: 'upgrade', phase: 'end' },
  { channel: CHANNELS.removeStart, type: 'remove', phase: 'start' },
  { channel: CHANNELS.removeStop, type: 'remove', phase: 'end' },
  { channel: CHANNELS.healthCheck, type: 'health' },
  { channel: CHANNELS.driftRepair, type: 'drift', status: true },
  { channel: CHANNELS.appSuspend, type: 'suspend', status: true },
  { channel: CHANNELS.appResume, type: 'resume', status: true },
  { channel: CHANNELS.appRollback, type: 'rollback', status: true },
];

export class EventHub {
  private readonly ring: LiveEvent[] = [];
  // Ids start at the clock so that ids of an earlier run of the server are older than any of this one.
  private nextId: number;
  private readonly listeners = new Set<(e: LiveEvent) => void>();
  private readonly closers = new Set<() => void>();
  private readonly lastStatus = new Map<string, string>();
  private readonly statusChain = new Map<string, Promise<void>>();
  private readonly subscriptions: { channel: string; fn: (m: unknown) => void }[] = [];
  private readonly now: () => number;
  private readonly maxEvents: number;
  private readonly maxAgeMs: number;
  private closed = false;

  constructor(private readonly opts: EventHubOptions) {
    this.now = opts.now ?? Date.now;
    this.nextId = this.now();
    this.maxEvents = opts.maxEvents ?? 1000;
    this.maxAgeMs = opts.maxAgeMs ?? 10 * 60_000;
    for (const s of SOURCES) {
      const fn = (m: unknown): void => this.fromChannel(s, m as EventMeta);
      diagnostics_channel.subscribe(s.channel, fn);
      this.subscriptions.push({ channel: s.channel, fn });
    }
  }

  private fromChannel(s: (typeof SOURCES)[number], meta: EventMeta): void {
    const namespace = meta.namespace;
    // A service's events name the service as `app` and its application as `application`.
    const service = typeof meta.application === 'string' && meta.application !== meta.app ? meta.app : undefined;
    const app = typeof meta.application === 'string' ? meta.application : meta.app;
    // An event that names no namespace cannot be filtered by the token's namespaces: never sent.
    if (typeof namespace !== 'string' || typeof app !== 'string') return;
    const data: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta)) if (!DROPPED.has(k)) data[k] = typeof v === 'number' && k === 'duration' ? Math.round(v) : v;
    if (service !== undefined) data.service = service;
    if (s.phase) data.phase = s.phase;
    this.emit(s.type, namespace, app, data);
    // A sync's first and last steps, and the other changes, move the status.
    const step = s.type === 'step' ? `${String(meta.step)}:${String(meta.phase)}` : '';
    if (s.status || step === 'head:start' || step === 'finish:end') this.refreshStatus(namespace, app, step === 'finish:end');
  }

  /** Adds an event to the ring and hands it to every stream. */
  emit(type: string, namespace: string, app: string, data: Record<string, unknown>): void {
    if (this.closed) return;
    const e: LiveEvent = { id: this.nextId++, type, namespace, app, data, at: this.now() };
    this.ring.push(e);
    while (this.ring.length > this.maxEvents) this.ring.shift();
    for (const l of this.listeners) l(e);
  }

  /** Reads the application's status and sends it when it differs from the last one sent; in order per application. */
  refreshStatus(namespace: string, app: string, settled = false): void {
    const key = `${namespace}/${app}`;
    const prev = this.statusChain.get(key) ?? Promise.resolve();
    const next = prev.then(async () => {
      let status: unknown;
      try {
        status = await this.opts.statusOf(namespace, app, settled);
      } catch {
        return;
      }
      const json = JSON.stringify(status ?? null);
      if (this.lastStatus.get(key) === json) return;
      if (status === null || status === undefined) {
        if (!this.lastStatus.has(key)) return;
        this.lastStatus.delete(key);
        this.emit('status', namespace, app, { removed: true });
        return;
      }
      this.lastStatus.set(key, json);
      this.emit('status', namespace, app, { status });
    });
    this.statusChain.set(key, next);
    void next.finally(() => {
      if (this.statusChain.get(key) === next) this.statusChain.delete(key);
    });
  }

  /**
   * The events after `lastId` still kept, or `reset` when some were dropped (or `lastId` is not of
   * this run of the server): the client must read the list again.
   */
  since(lastId: number): { reset: boolean; events: LiveEvent[] } {
    this.prune();
    const first = this.ring[0]?.id ?? this.nextId;
    if (!Number.isSafeInteger(lastId) || lastId >= this.nextId || lastId < first - 1) return { reset: true, events: [] };
    return { reset: false, events: this.ring.filter((e) => e.id > lastId) };
  }

  private prune(): void {
    const oldest = this.now() - this.maxAgeMs;
    while (this.ring.length && (this.ring[0] as LiveEvent).at < oldest) this.ring.shift();
  }

  /** Calls `fn` with every new event until the returned function is called; `onClose` when the hub closes. */
  subscribe(fn: (e: LiveEvent) => void, onClose: () => void): () => void {
    this.listeners.add(fn);
    this.closers.add(onClose);
    return () => {
      this.listeners.delete(fn);
      this.closers.delete(onClose);
    };
  }

  /** Stops listening and ends every stream (server shutdown: the drain does not wait for them). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.subscriptions) diagnostics_channel.unsubscribe(s.channel, s.fn);
    for (const c of [...this.closers]) c();
    this.listeners.clear();
    this.closers.clear();
  }

  /** The id of the newest event (none yet: one less than the first id to come). */
  get lastId(): number {
    return this.nextId - 1;
  }

  get streams(): number {
    return this.listeners.size;
  }
}

/** Short-lived, single-use tickets for `GET /api/events?ticket=` (a browser's EventSource sends no Authorization header). */
export class EventTickets {
  private readonly tickets = new Map<string, { principal: Principal; expires: number }>();

  constructor(private readonly o: { ttlMs?: number; max?: number; now?: () => number } = {}) {}

  private get ttl(): number {
    return this.o.ttlMs ?? 60_000;
  }

  issue(principal: Principal): { ticket: string; expiresAt: string } {
    const now = (this.o.now ?? Date.now)();
    for (const [t, v] of this.tickets) if (v.expires <= now) this.tickets.delete(t);
    if (this.tickets.size >= (this.o.max ?? 10_000)) throw new ZvError('TOO_MANY_STREAMS', 'too many event tickets are outstanding; try again in a minute');
    const ticket = `zvt_${randomBytes(24).toString('base64url')}`;
    const expires = now + this.ttl;
    this.tickets.set(ticket, { principal, expires });
    return { ticket, expiresAt: new Date(expires).toISOString() };
  }

  /** The principal the ticket was issued to, once, before it expires; null otherwise. */
  redeem(ticket: string): Principal | null {
    const v = this.tickets.get(ticket);
    if (!v) return null;
    this.tickets.delete(ticket);
    return v.expires > (this.o.now ?? Date.now)() ? v.principal : null;
  }
}

export interface EventsApiOptions {
  hub: EventHub;
  tickets: EventTickets;
  /** Streams open at once in all (default 100) and per token (default 5); 429 TOO_MANY_STREAMS beyond. */
  maxStreams?: number;
  maxStreamsPerToken?: number;
  /** Bytes a stream may have waiting for a client that does not read before it is dropped (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Comment line sent this often so proxies keep the stream open (default 15 s). */
  heartbeatMs?: number;
}

function frame(e: LiveEvent): string {
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ namespace: e.namespace, app: e.app, at: new Date(e.at).toISOString(), ...e.data })}\n\n`;
}

/** `GET /api/events` and `POST /api/events/ticket`. */
export function eventsApi(o: EventsApiOptions): Hono {
  const api = new Hono({ strict: false });
  const perToken = new Map<string, number>();
  let open = 0;
  const maxStreams = o.maxStreams ?? 100;
  const maxPerToken = o.maxStreamsPerToken ?? 5;
  const maxBuffered = o.maxBufferedBytes ?? 1024 * 1024;
  const heartbeatMs = o.heartbeatMs ?? 15_000;

  api.post('/ticket', (c) => {
    const p = requireAccess(c, 'read');
    return c.json(o.tickets.issue(p), 201);
  });

  api.get('/', (c: Context) => {
    const p = principalOf(c);
    const namespace = c.req.query('namespace');
    const app = c.req.query('app');
    // A namespace the token does not cover is refused, not silently empty.
    if (namespace !== undefined) requireAccess(c, 'read', namespace);
    const res = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (!res) return errorResponse(new ZvError('NOT_READY', 'the event stream is served only over HTTP by the server'));
    const mine = perToken.get(p.tokenId) ?? 0;
    if (open >= maxStreams || mine >= maxPerToken) {
      const which = open >= maxStreams ? `the server has ${open} event streams open (at most ${maxStreams})` : `token '${p.name}' has ${mine} event streams open (at most ${maxPerToken})`;
      return errorResponse(new ZvError('TOO_MANY_STREAMS', `${which}; close one first`), { 'retry-after': '10' });
    }
    const lastHeader = c.req.header('last-event-id') ?? c.req.query('lastEventId');
    const visible = (e: LiveEvent): boolean =>
      (p.namespaces === null || coversNamespace(p, e.namespace)) && (namespace === undefined || e.namespace === namespace) && (app === undefined || e.app === app);

    open++;
    perToken.set(p.tokenId, mine + 1);
    const headers: Record<string, string> = {
      'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive',
    };
    // The guard let this origin through (an allowed --cors-origin or the same host).
    const origin = c.req.header('origin');
    if (origin !== undefined) Object.assign(headers, { 'access-control-allow-origin': origin, vary: 'Origin' });
    res.writeHead(200, headers);
    let ended = false;
    const end = (drop: boolean): void => {
      if (ended) return;
      ended = true;
      clearInterval(beat);
      unsubscribe();
      open--;
      const n = (perToken.get(p.tokenId) ?? 1) - 1;
      if (n <= 0) perToken.delete(p.tokenId);
      else perToken.set(p.tokenId, n);
      // A client that stopped reading: drop what waits for it, never let it grow.
      if (drop) res.destroy();
      else res.end();
    };
    const write = (text: string): void => {
      if (ended) return;
      if (res.writableLength > maxBuffered) return end(true);
      res.write(text);
    };
    const unsubscribe = o.hub.subscribe((e) => {
      if (visible(e)) write(frame(e));
    }, () => end(false));
    const beat = setInterval(() => write(': keep-alive\n\n'), heartbeatMs);
    beat.unref();
    res.on('close', () => end(false));
    write(`retry: 3000\n: connected\n\n`);
    if (lastHeader !== undefined && lastHeader !== '') {
      const { reset, events } = o.hub.since(Number(lastHeader));
      if (reset) write(`event: reset\ndata: ${JSON.stringify({ reason: 'events since the given Last-Event-ID are no longer kept; read the applications again' })}\n\n`);
      for (const e of events) if (visible(e)) write(frame(e));
    }
    return RESPONSE_ALREADY_SENT;
  });
  return api;
}
