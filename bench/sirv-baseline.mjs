// Benchmark helper: the static-file baseline, sirv (a small, fast Node static server) serving one
// directory in its own process. Started by bench/scale.mjs as
//   node --no-node-snapshot bench/sirv-baseline.mjs DIR
// and prints `{"url": …, "pid": …}` on stdout once it listens.
import { createServer } from 'node:http';
import sirv from 'sirv';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('bench/sirv-baseline.mjs: the directory to serve is required\n');
  process.exit(2);
}
const serve = sirv(dir, { etag: true });
const server = createServer((req, res) => serve(req, res, () => {
  res.statusCode = 404;
  res.end('not found');
}));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid })}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
