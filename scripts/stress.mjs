#!/usr/bin/env node
// Loads every core of this machine with a busy loop until killed, to run the test suite
// the way a loaded 2-core CI machine runs it (issue 9, item 8).
//
//   node scripts/stress.mjs &                # one spinning worker per core
//   node scripts/stress.mjs 3 &              # or a given number of workers
//   npm run build && node scripts/run-tests.mjs > /tmp/load-1.log 2>&1; kill %1
//
// SIGTERM / SIGINT (kill %1, Ctrl-C) end the workers with this process.
import { availableParallelism } from 'node:os';
import { Worker, isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const asked = Number(process.argv[2]);
  const count = Number.isInteger(asked) && asked > 0 ? asked : availableParallelism();
  const workers = [];
  for (let i = 0; i < count; i++) workers.push(new Worker(new URL(import.meta.url)));
  const stop = () => {
    for (const w of workers) void w.terminate();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.error(`stress: ${count} busy worker(s) on ${availableParallelism()} core(s), pid ${process.pid}`);
} else {
  // Spin. Checking the clock now and then keeps the loop from being optimised away.
  let x = 0;
  for (;;) {
    x = (x + Date.now()) % 1_000_003;
  }
}
