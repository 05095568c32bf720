// Benchmark helper: the static-file baseline, sirv (a small, fast Node static server) serving one
// directory in its own process. Started by bench/scale.mjs as
//   node --no-node-snapshot bench/sirv-baseline.mjs DIR
// and prints `{"url": …, "pid": …}` on stdout once it listens.
import { createServer } from 'node:http';
import { announceAndServe } from './lib.mjs';
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
announceAndServe(server);
