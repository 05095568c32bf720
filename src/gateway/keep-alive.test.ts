// closeIdleAfterPoll on a plain node:http server with a short keep-alive timeout: a request sent on
// an idle kept-alive connection while the event loop is blocked past the timeout is answered (Node
// alone resets it), and an idle connection still closes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { closeIdleAfterPoll } from './keep-alive.js';

const ASK = 'GET / HTTP/1.1\r\nhost: x\r\n\r\n';

async function withServer(fix: boolean, body: (port: number) => Promise<void>): Promise<void> {
  const server: Server = createServer((_req, res) => res.end('ok'));
  server.keepAliveTimeout = 200;
  if (fix) closeIdleAfterPoll(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await body((server.address() as AddressInfo).port);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** Two requests on one connection, the event loop blocked past the keep-alive timeout between them. */
function secondAfterBlock(port: number): Promise<{ answers: number; error?: string }> {
  return new Promise((resolve) => {
    let got = '';
    let error: string | undefined;
    const sock = connect(port, '127.0.0.1', () => sock.write(ASK));
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if ((got.match(/\r\n\r\nok/g) ?? []).length === 1 && !got.includes('sent')) {
        got += 'sent';
        // The loop stalls past the keep-alive timeout (as a blocked server would); in the next
        // timers phase the second request goes out first, then the server's keep-alive timer, due
        // meanwhile, runs, before the poll phase that would read the request.
        setTimeout(() => {
          const until = Date.now() + 1800; // past keepAliveTimeout + the 1 s Node adds to it
          while (Date.now() < until) { /* blocked */ }
        }, 10);
        setTimeout(() => sock.write(ASK), 100);
      }
      if ((got.match(/\r\n\r\nok/g) ?? []).length === 2) sock.end();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    sock.on('close', () => resolve({ answers: (got.match(/\r\n\r\nok/g) ?? []).length, ...(error ? { error } : {}) }));
  });
}

describe('closeIdleAfterPoll', () => {
  it('answers a request sent while the loop was blocked past the keep-alive timeout (Node alone drops it)', async () => {
    await withServer(false, async (port) => {
      const r = await secondAfterBlock(port);
      assert.equal(r.answers, 1, 'without the fix the second request is lost (this checks the test reproduces it)');
    });
    await withServer(true, async (port) => {
      const r = await secondAfterBlock(port);
      assert.deepEqual(r, { answers: 2 });
    });
  });

  it('still closes an idle kept-alive connection', async () => {
    await withServer(true, async (port) => {
      const closed = await new Promise<boolean>((resolve) => {
        const sock = connect(port, '127.0.0.1', () => sock.write(ASK));
        sock.resume();
        sock.on('error', () => undefined);
        sock.on('close', () => resolve(true));
        setTimeout(() => { resolve(false); sock.destroy(); }, 60_000).unref();
      });
      assert.ok(closed, 'the server closed the idle connection');
    });
  });
});
