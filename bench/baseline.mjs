// Benchmark helper: the baseline, a bare node:http hello-world server in its own process (same
// Node, same flags as the zerverless server). Prints `{"url": …}` on stdout once it listens.
import { createServer } from 'node:http';
import { announceAndServe } from './lib.mjs';

const BODY = 'Hello from node:http';
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(BODY) });
  res.end(BODY);
});
announceAndServe(server);
