import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedVm, isolatedVmCandidates, isolatedVmLoaded } from './ivm.js';

test('the isolated-vm line that fits the running Node is tried first', () => {
  assert.deepEqual(isolatedVmCandidates('20.20.2'), ['isolated-vm', 'isolated-vm-node22']);
  assert.deepEqual(isolatedVmCandidates('22.23.3'), ['isolated-vm-node22', 'isolated-vm']);
  assert.deepEqual(isolatedVmCandidates('24.21.0'), ['isolated-vm-node22', 'isolated-vm']);
});

test('the loaded isolated-vm is the line for this Node, and runs code', async () => {
  const ivm = isolatedVm();
  const which = isolatedVmLoaded();
  assert.ok(which);
  const major = Number(process.versions.node.split('.')[0]);
  // isolated-vm 5 for Node 20, 6 (the isolated-vm-node22 alias) for Node 22 and 24
  if (major >= 22) assert.equal(which.name, 'isolated-vm-node22');
  else assert.equal(which.name, 'isolated-vm');
  assert.equal(which.version.split('.')[0], major >= 22 ? '6' : '5');
  const iso = new ivm.Isolate({ memoryLimit: 8 });
  try {
    const ctx = await iso.createContext();
    assert.equal(await ctx.eval('6 * 7'), 42);
  } finally {
    iso.dispose();
  }
  console.log(`node ${process.versions.node}: ${which.name}@${which.version}`);
});
