// The event stream's bounds over real HTTP (node:http, a Hono app like the server's API): a client
// that never reads is dropped once its buffer passes the bound, streams per token are capped (429),
// the ring replays after Last-Event-ID or says `reset`, and closing the hub ends every stream.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import { EventHub, EventTickets, eventsApi } from './events.js';
import type { Principal } from '../core/access.js';
import { SseParser, type SseEvent } from '../cli/progress.js';
import { toZvError } from '../errors/registry.js';
import { errorResponse } from '../errors/respond.js';

const reader: Principal = { tokenId: 't1', name: 'reader', role: 'reader', namespaces: ['a'], services: false };

async function serve(hub: EventHub, o: { maxStreamsPerToken?: number; maxBufferedBytes?: number; heartbeatMs?: number } = {}): Promise<{ url: string; server: Server }> {
  const app = new Hono();
  app.onError((e) => errorResponse(toZvError(e)));
  app.use('*', async (c, next) => {
    c.set('principal', reader);
    await next();
  });
  app.route('/api/events', eventsApi({ hub, tickets: new EventTickets(), ...o }));
  const server = createServer(getRequestListener(app.fetch));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Reads a stream until `until` holds for what arrived (or the stream ends). */
function read(url: string, until: (events: SseEvent[]) => boolean, headers: Record<string, string> = {}): Promise<{ status: number; events: SseEvent[] }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers }, (res) => {
      const parser = new SseParser();
      const events: SseEvent[] = [];
      const done = (): void => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, events });
      };
      if (res.statusCode !== 200) return done();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        events.push(...parser.push(chunk));
        if (until(events)) done();
      });
      res.on('end', done);
      if (until(events)) done();
    });
    req.on('error', reject);
  });
}

const waitUntil = async (pred: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 60_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('event stream bounds', () => {
  const closers: (() => void)[] = [];
  after(() => {
    for (const c of closers) c();
  });

  it('drops a client that never reads, and keeps at most maxEvents for replay', async () => {
    const hub = new EventHub({ statusOf: async () => null, maxEvents: 50 });
    const { url, server } = await serve(hub, { maxBufferedBytes: 256 * 1024 });
    closers.push(() => server.close(), () => hub.close());
    // A raw socket that sends the request and never reads a byte of the answer.
    const u = new URL(url);
    const sock = connect(Number(u.port), u.hostname);
    sock.write(`GET /api/events HTTP/1.1\r\nhost: ${u.host}\r\n\r\n`);
    sock.pause();
    let closed = false;
    sock.on('close', () => {
      closed = true;
    });
    await waitUntil(() => hub.streams === 1, 'the stream to open');
    const big = 'x'.repeat(16 * 1024);
    let sent = 0;
    // Emits until the server drops the stream; the ring stays at its bound meanwhile.
    while (hub.streams > 0) {
      hub.emit('step', 'a', 'app', { big });
      sent++;
      assert.ok(sent < 200_000, 'the slow client was never dropped');
      if (sent % 8 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok(hub.since(0).reset, 'an id older than the ring asks for a reset');
    const kept = hub.since(Number.MAX_SAFE_INTEGER - 1);
    assert.equal(kept.reset, true);
    sock.resume();
    await waitUntil(() => closed, 'the server to close the dropped connection');
  });

  it('caps streams per token with 429 TOO_MANY_STREAMS', async () => {
    const hub = new EventHub({ statusOf: async () => null });
    const { url, server } = await serve(hub, { maxStreamsPerToken: 1 });
    closers.push(() => server.close(), () => hub.close());
    const first = new Promise<void>((resolve) => {
      get(`${url}/api/events`, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
    });
    await waitUntil(() => hub.streams === 1, 'the first stream');
    const second = await fetch(`${url}/api/events`);
    assert.equal(second.status, 429);
    assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'TOO_MANY_STREAMS');
    // Closing the hub (server shutdown) ends the open stream.
    hub.close();
    await first;
  });

  it('sends a heartbeat comment while nothing happens', async () => {
    const hub = new EventHub({ statusOf: async () => null });
    const { url, server } = await serve(hub, { heartbeatMs: 50 });
    closers.push(() => server.close(), () => hub.close());
    const raw = await new Promise<string>((resolve, reject) => {
      let text = '';
      const req = get(`${url}/api/events`, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.includes(': keep-alive\n\n')) {
            req.destroy();
            resolve(text);
          }
        });
      });
      req.on('error', reject);
    });
    assert.match(raw, /^retry: \d+\n/);
  });

  it('a ticket opens once, as its token, and not after it expires', () => {
    let now = 1_000_000;
    const tickets = new EventTickets({ ttlMs: 60_000, now: () => now });
    const a = tickets.issue(reader);
    assert.match(a.ticket, /^zvt_[A-Za-z0-9_-]{32}$/);
    assert.deepEqual(tickets.redeem(a.ticket), reader);
    assert.equal(tickets.redeem(a.ticket), null, 'used once');
    const b = tickets.issue(reader);
    now += 60_000;
    assert.equal(tickets.redeem(b.ticket), null, 'expired');
    assert.equal(tickets.redeem('zvt_unknown'), null);
  });

  it('replays exactly the events after Last-Event-ID, only of covered namespaces', async () => {
    const hub = new EventHub({ statusOf: async () => null });
    const { url, server } = await serve(hub);
    closers.push(() => server.close(), () => hub.close());
    const before = hub.lastId;
    hub.emit('step', 'a', 'one', { n: 1 });
    const seen = hub.lastId;
    hub.emit('step', 'b', 'secret-b', { n: 2 });
    hub.emit('step', 'a', 'two', { n: 3 });
    hub.emit('step', 'a', 'three', { n: 4 });
    const steps = (r: { events: SseEvent[] }) => r.events.filter((e) => e.event === 'step');
    const all = await read(`${url}/api/events`, (ev) => ev.filter((e) => e.event === 'step').length >= 3, { 'last-event-id': String(before) });
    assert.deepEqual(steps(all).map((e) => (JSON.parse(e.data) as { app: string }).app), ['one', 'two', 'three']);
    const missed = await read(`${url}/api/events`, (ev) => ev.filter((e) => e.event === 'step').length >= 2, { 'last-event-id': String(seen) });
    assert.deepEqual(steps(missed).map((e) => (JSON.parse(e.data) as { app: string }).app), ['two', 'three'], 'exactly the missed events; namespace b never');
    assert.deepEqual(steps(missed).map((e) => Number(e.id)), [seen + 2, seen + 3]);
    assert.ok(!JSON.stringify(all.events).includes('secret-b'));
    // An id from before this run of the hub: the client must read the list again.
    const reset = await read(`${url}/api/events`, (ev) => ev.some((e) => e.event === 'reset'), { 'last-event-id': '5' });
    assert.ok(reset.events.some((e) => e.event === 'reset'));
  });
});
