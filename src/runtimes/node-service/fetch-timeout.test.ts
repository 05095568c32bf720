// A release download's time limit must hold after a garbage collection. fetch() follows the signal
// it is given only through weak references (nodejs/undici#4068), and an AbortSignal.timeout() is
// itself held weakly by its timer: after a GC a download from a server that accepts the connection
// and never answers was never aborted, and the sync that fetched it hung for good.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isZvError } from '../../errors/registry.js';
import { fetchSource } from './fetch.js';
import { LogBuffer } from './log.js';
import { makeSpec } from './fixtures.test.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('node services: release download time limit', () => {
  for (const kind of ['silent', 'trickling'] as const) {
    it(`gives up on a ${kind} server even when a GC runs during the download`, { timeout: 120_000 }, async () => {
      const sockets: Socket[] = [];
      const timers: NodeJS.Timeout[] = [];
      const server = createServer((s) => {
        sockets.push(s);
        s.on('error', () => undefined);
        if (kind === 'trickling') {
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n');
          timers.push(setInterval(() => s.write('x'), 50));
        }
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/svc.tgz`;
      const work = await mkdtemp(join(tmpdir(), 'zv-fetch-timeout-'));
      const collector = setInterval(() => gc(), 20);
      try {
        const spec = makeSpec('slow', { source: { type: 'release', url, sha256: 'a'.repeat(64) } });
        const err = await fetchSource(spec, work, {
          allowFileRepos: false, npmRegistry: undefined, gitTimeoutMs: 5000, downloadTimeoutMs: 400, maxDownloadBytes: 10_000_000,
          log: new LogBuffer(64 * 1024), env: process.env,
        }).then(() => null, (e: unknown) => e);
        assert.ok(isZvError(err), `rejected with a ZvError: ${String(err)}`);
        assert.match((err as Error).message, /cannot download .*: no complete answer within 400 ms/);
      } finally {
        clearInterval(collector);
        for (const t of timers) clearInterval(t);
        for (const s of sockets) s.destroy();
        server.close();
        await rm(work, { recursive: true, force: true });
      }
    });
  }
});
