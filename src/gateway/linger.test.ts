// lingerClose on a plain node:http server with small bounds: the answer is read, then the rest of
// the body is read and discarded up to the byte, total-time and idle bounds; a connection whose
// answer did not ask to close stays usable once the body ended.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, createServer, get as httpGet, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { lingerClose, lingerLimits, MIN_LINGER_BYTES } from './linger.js';
import { sendBody } from '../../test/support/raw-http.js';

const MiB = 1024 * 1024;
const LIMITS = { maxBytes: MiB, maxMs: 1500, idleMs: 800 };

describe('lingerClose', () => {
  let server: Server;
  let url: string;

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/keep') {
        lingerClose(req, LIMITS);
        res.writeHead(503, { 'content-length': '4' }).end('busy');
        return;
      }
      if (req.url === '/next') {
        res.writeHead(200, { 'content-length': '4' }).end('next');
        return;
      }
      if (req.url === '/listeners') {
        const n = String(req.socket.listenerCount('close'));
        res.writeHead(200, { 'content-length': String(n.length) }).end(n);
        return;
      }
      lingerClose(req, LIMITS);
      res.writeHead(413, { connection: 'close', 'content-length': '3' }).end('big');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('the bounds scale with --max-body, at least 64 MiB', () => {
    assert.equal(lingerLimits(MiB).maxBytes, MIN_LINGER_BYTES);
    assert.equal(lingerLimits(100 * MiB).maxBytes, 400 * MiB);
    assert.deepEqual([lingerLimits(MiB).maxMs, lingerLimits(MiB).idleMs], [30_000, 5_000]);
  });

  it('reads the rest of a body within the bounds and closes cleanly after it', async () => {
    const r = await sendBody(url, '/', MiB / 2, { readAfterSend: true });
    assert.equal(r.error, undefined);
    assert.equal(r.status, '413 Payload Too Large');
    assert.equal(r.sent, MiB / 2);
  });

  it('resets the connection past maxBytes', async () => {
    const r = await sendBody(url, '/', 256 * MiB);
    assert.ok(r.error, 'the whole body was read');
    assert.ok(r.sent < 128 * MiB, `sent ${r.sent}`);
  });

  it('closes a client that stops sending after idleMs', async () => {
    const r = await sendBody(url, '/', 10 * MiB, { stallAfter: 64 * 1024, timeoutMs: 120_000 });
    assert.notEqual(r.error, 'TIMEOUT');
    assert.equal(r.status, '413 Payload Too Large');
    assert.ok(r.ms >= 700, `closed after ${r.ms} ms`);
  });

  it('closes a client that trickles after maxMs', async () => {
    const u = new URL(url);
    const started = Date.now();
    let gaveUp = false;
    const closed = await new Promise<number>((resolve) => {
      const sock = connect(Number(u.port), u.hostname, () => {
        sock.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${10 * MiB}\r\n\r\n`);
        const t = setInterval(() => {
          if (!sock.destroyed) sock.write(Buffer.alloc(1024, 'x'));
        }, 100);
        sock.on('close', () => {
          clearInterval(t);
          resolve(Date.now() - started);
        });
        // Only ends a test whose server never closes (checked below), however slow the machine.
        setTimeout(() => { gaveUp = true; sock.destroy(); }, 120_000).unref();
      });
      sock.on('error', () => undefined);
      sock.resume();
    });
    assert.ok(!gaveUp, 'the server closed the trickling client');
    assert.ok(closed >= 1400, `closed after ${closed} ms`);
  });

  it('keeps a connection whose answer did not ask to close usable once the body ended', async () => {
    const u = new URL(url);
    const text = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(u.port), u.hostname, () => {
        sock.write(`POST /keep HTTP/1.1\r\nhost: x\r\ncontent-length: ${MiB / 2}\r\n\r\n`);
        sock.write(Buffer.alloc(MiB / 2, 'x'));
        sock.write('GET /next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
      });
      let got = '';
      sock.on('data', (d: Buffer) => {
        got += d.toString('latin1');
      });
      sock.on('error', reject);
      sock.on('close', () => resolve(got));
    });
    assert.match(text, /^HTTP\/1\.1 503 [\s\S]*busyHTTP\/1\.1 200 OK[\s\S]*next$/);
  });

  it('leaves no listener behind on a kept-alive connection, however many answers lingered on it', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) => new Promise<string>((resolve, reject) => {
      httpGet(`${url}${path}`, { agent }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    try {
      const before = await get('/listeners');
      for (let i = 0; i < 30; i++) assert.equal(await get('/keep'), 'busy');
      assert.equal(await get('/listeners'), before, 'the close listeners of the connection after 30 lingered answers');
    } finally {
      agent.destroy();
    }
  });
});
