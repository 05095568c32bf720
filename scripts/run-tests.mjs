#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node's test runner (through tsx).
// --no-node-snapshot is required by isolated-vm on Node 20+.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir, out = []) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (name !== 'node_modules') find(p, out); }
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = [...find('src'), ...find('test')].sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (!files.length) { console.error('no test files found'); process.exit(1); }
const concurrency = process.env.ZV_TEST_CONCURRENCY ?? '2';
// --test-force-exit: a test file whose tests have all ended exits even if a child process or handle
// is left open (an esbuild service once kept a file's process idle for 13 minutes on a loaded
// machine), so a leak can never hang the run until CI's time limit. Node 20.14+ and 22+ have it.
const r = spawnSync(process.execPath, [
  '--no-node-snapshot', '--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, ...files,
], { stdio: 'inherit' });
process.exit(r.status ?? 1);
