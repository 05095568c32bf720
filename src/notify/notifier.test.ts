// The notifier against a real HTTP receiver on loopback: signatures, formats, event filters, the
// per-URL queue bound, redirects not followed, close() ending waits and POSTs under way.
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Notifier, signature, slackText, type NotificationBody } from './notifier.js';
import { silentLogger } from '../telemetry/log.js';

interface Got { path: string; headers: IncomingMessage['headers']; body: string }

describe('Notifier', () => {
  let server: Server;
  let base = '';
  const got: Got[] = [];
  const held: ServerResponse[] = [];
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ path: req.url ?? '', headers: req.headers, body });
        if (req.url === '/redirect') return void res.writeHead(307, { location: `${base}/ok` }).end();
        if (req.url === '/hold') return void held.push(res);
        if (req.url === '/big') {
          res.writeHead(200);
          res.write('x'.repeat(1 << 20));
          return; // never ends: the notifier must not wait for the rest
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const app = { namespace: 'team', name: 'web' };
  const ev = (event: NotificationBody['event'] = 'synced') => ({ event, commit: 'c'.repeat(40), status: 'synced', message: '', at: '2026-01-15T10:00:00.000Z' });
  const at = (path: string) => got.filter((g) => g.path === path);

  it('signs JSON with the server secret, or the target secret when it has one, and filters events', async () => {
    const n = new Notifier({ urls: [`${base}/server`], secret: 's3', logger: silentLogger, unseal: (sealed) => sealed.replace('sealed:', ''), policy: { firstDelayMs: 10 } });
    n.emit({ ...app, notify: [{ url: `${base}/own`, format: 'json', secret: 'sealed:mine' }, { url: `${base}/errors`, format: 'json', events: ['error'] }] }, ev());
    await n.idle();
    const [s] = at('/server');
    assert.equal(s?.headers['x-zerverless-signature'], `sha256=${createHmac('sha256', 's3').update(s?.body ?? '').digest('hex')}`);
    assert.deepEqual(JSON.parse(s?.body ?? ''), { event: 'synced', application: app, commit: 'c'.repeat(40), status: 'synced', message: '', at: '2026-01-15T10:00:00.000Z' });
    const [o] = at('/own');
    assert.equal(o?.headers['x-zerverless-signature'], signature('mine', o?.body ?? ''));
    assert.equal(o?.headers['x-zerverless-event'], 'synced');
    assert.equal(at('/errors').length, 0, 'a target that wants only errors gets no synced');
    await n.close();
  });

  it('sends Slack text', async () => {
    const n = new Notifier({ logger: silentLogger, policy: { firstDelayMs: 10 } });
    n.emit({ ...app, notify: [{ url: `${base}/slack`, format: 'slack' }] }, { ...ev('error'), status: 'error', message: 'MANIFEST_INVALID: zerverless.yaml:3: bad\nmore' });
    await n.idle();
    assert.deepEqual(JSON.parse(at('/slack')[0]?.body ?? ''), { text: ':x: team/web error at cccccccccccc: MANIFEST_INVALID: zerverless.yaml:3: bad' });
    assert.equal(slackText({ ...ev('rolledBack'), application: app }), ':rewind: team/web rolled back at cccccccccccc');
    await n.close();
  });

  it('does not follow a redirect (it counts as a failed try) and does not read a large answer', async () => {
    const counts: string[] = [];
    const n = new Notifier({ logger: silentLogger, count: (r) => counts.push(r), policy: { firstDelayMs: 10, tries: 2 } });
    n.emit({ ...app, notify: [{ url: `${base}/redirect`, format: 'json' }, { url: `${base}/big`, format: 'json' }] }, ev());
    await n.idle();
    assert.equal(at('/redirect').length, 2);
    assert.equal(at('/ok').length, 0, 'the Location was not followed');
    assert.deepEqual(counts.sort(), ['failed', 'sent']);
    await n.close();
  });

  it('keeps at most queueLimit waiting per URL (the oldest dropped), and close() ends a POST under way', async () => {
    const counts: string[] = [];
    const n = new Notifier({ logger: silentLogger, count: (r) => counts.push(r), policy: { queueLimit: 2, timeoutMs: 60_000 } });
    const target = { ...app, notify: [{ url: `${base}/hold`, format: 'json' as const }] };
    for (let i = 0; i < 5; i++) n.emit(target, { ...ev(), message: `n${i}` });
    // The first is under way (held by the receiver); of the four others, two wait and two were dropped.
    assert.deepEqual(counts, ['dropped', 'dropped']);
    const deadline = Date.now() + 60_000;
    while (at('/hold').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await n.close();
    assert.equal(at('/hold').length, 1);
    n.emit(target, ev());
    assert.equal(at('/hold').length, 1, 'nothing is sent after close');
  });
});
