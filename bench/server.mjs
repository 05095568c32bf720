// Benchmark helper: runs the real zerverless server (compiled, from ../dist) in its own process so
// it never shares an event loop with the load generator. Started by bench/run.mjs as
//   node --no-node-snapshot bench/server.mjs --data-dir DIR [--poll-interval 1h] [--log-level warn]
// It prints one JSON line `{"url": "http://127.0.0.1:PORT"}` on stdout once it listens, logs (pino,
// JSON) go to stderr, and SIGTERM/SIGINT close it cleanly (runtimes, workers, store).
import { parseArgs } from 'node:util';

// isolated-vm (the JS runtime) needs --no-node-snapshot on Node 20+; without it the JS runtime
// would crash or report itself unavailable and the figures would be wrong, so refuse to start.
if (!process.execArgv.includes('--no-node-snapshot')) {
  process.stderr.write('bench/server.mjs must run with `node --no-node-snapshot` (isolated-vm needs it)\n');
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    'poll-interval': { type: 'string', default: '1h' },
    'log-level': { type: 'string', default: 'warn' },
  },
});
if (!values['data-dir']) {
  process.stderr.write('bench/server.mjs: --data-dir is required\n');
  process.exit(2);
}

const { resolveServeConfig } = await import('../dist/server/config.js');
const { startServer } = await import('../dist/server/server.js');
const { createLogger } = await import('../dist/telemetry/log.js');

const config = resolveServeConfig(
  {
    host: '127.0.0.1',
    port: 0,
    'data-dir': values['data-dir'],
    'poll-interval': values['poll-interval'],
    'allow-file-repos': true,
    'log-level': values['log-level'],
  },
  // The webhooks row (bench/webhooks.mjs) passes its secret in the environment, never in argv;
  // the cold row (bench/scale.mjs) its short --function-idle.
  {
    ...(process.env.ZV_WEBHOOK_SECRET ? { 'webhook-secret': process.env.ZV_WEBHOOK_SECRET } : {}),
    ...(process.env.ZV_FUNCTION_IDLE ? { 'function-idle': process.env.ZV_FUNCTION_IDLE } : {}),
  },
  {},
);
const logger = createLogger({ level: config.logLevel, destination: process.stderr });
const server = await startServer(config, { logger });
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  try {
    await server.close();
  } catch (e) {
    process.stderr.write(`bench/server.mjs: close failed: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// If the bench process dies without signalling us, stdin (a pipe from it) closes: exit too.
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
