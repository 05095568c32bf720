#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node's test runner (through tsx).
// --no-node-snapshot is required by isolated-vm on Node 20+.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
// test-exit.mjs: a test file whose tests have all ended exits on its own, or 5 s later when a child
// process or handle is left open, so a leak can never hang the run until CI's time limit. Not
// --test-force-exit: its process.exit() right after the last test crashed processes whose
// isolated-vm threads were still at work (see test-exit.mjs).
const r = spawnSync(process.execPath, [
  '--no-node-snapshot', '--import', 'tsx', '--import', pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'test-exit.mjs')).href,
  '--test', `--test-concurrency=${concurrency}`, ...files,
], { stdio: 'inherit' });
process.exit(r.status ?? 1);
