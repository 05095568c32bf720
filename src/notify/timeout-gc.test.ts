// A notification POST's time limit must hold after a garbage collection. fetch() follows the
// signal it is given only through weak references (nodejs/undici#4068, nodejs/node#55428), and an
// AbortSignal.timeout() is itself held weakly by its timer: after a GC the POST to a receiver that
// accepts the connection and never answers was never aborted, and that URL's queue stopped for good.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Notifier } from './notifier.js';
import { silentLogger } from '../telemetry/log.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('Notifier time limit', () => {
  it('gives up on a receiver that never answers even when a GC runs during the POST', { timeout: 120_000 }, async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/never`;
    const results: string[] = [];
    const n = new Notifier({ urls: [url], logger: silentLogger, count: (r) => results.push(r), policy: { tries: 2, firstDelayMs: 10, timeoutMs: 300 } });
    try {
      n.emit({ namespace: 'ns', name: 'app' }, { event: 'synced', commit: null, status: 'synced', message: '', at: new Date().toISOString() });
      // Collect garbage while the POSTs wait for an answer (each try waits 300 ms).
      const collector = setInterval(() => gc(), 20);
      try {
        await n.idle();
      } finally {
        clearInterval(collector);
      }
      assert.deepEqual(results, ['failed'], 'both tries timed out and the notification counts as failed');
      assert.ok(sockets.length >= 2, 'each try connected');
    } finally {
      await n.close();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
