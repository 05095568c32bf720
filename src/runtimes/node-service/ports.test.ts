import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortPool } from './ports.js';

test('a pinned port held by one service is refused to another until released', async () => {
  const pool = new PortPool(45100, 45199);
  assert.equal(pool.hold(45150), true);
  assert.equal(pool.hold(45150), false);
  pool.release(45150);
  assert.equal(pool.hold(45150), true);
  const a = await pool.take();
  const b = await pool.take();
  assert.notEqual(a, b, 'two services sharing a pool never get one port');
});
