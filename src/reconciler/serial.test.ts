import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerialRunner } from './serial.js';

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

test('runs one at a time per key and coalesces requests made during a run', async () => {
  const r = new SerialRunner();
  let running = 0;
  let max = 0;
  let runs = 0;
  const job = async () => {
    running++;
    max = Math.max(max, running);
    runs++;
    await tick(30);
    running--;
    return runs;
  };
  const a = r.run('k', job);
  await tick(5);
  const b = r.run('k', job);
  const c = r.run('k', job);
  assert.equal(b, c, 'requests during a run join one follow-up');
  assert.deepEqual(await Promise.all([a, b, c]), [1, 2, 2]);
  assert.equal(max, 1);
  assert.equal(r.isBusy('k'), false);
});

test('different keys run in parallel; a failure does not block the next run', async () => {
  const r = new SerialRunner();
  const order: string[] = [];
  const x = r.run('x', async () => { await tick(20); order.push('x'); throw new Error('fail'); });
  const y = r.run('y', async () => { order.push('y'); return 'y'; });
  await assert.rejects(x);
  assert.equal(await y, 'y');
  assert.deepEqual(order, ['y', 'x']);
  assert.equal(await r.run('x', async () => 'again'), 'again');
});

test('after() queues behind a running job without joining', async () => {
  const r = new SerialRunner();
  const order: string[] = [];
  const a = r.run('k', async () => { await tick(20); order.push('sync'); });
  const d = r.after('k', async () => { order.push('delete'); });
  await Promise.all([a, d]);
  assert.deepEqual(order, ['sync', 'delete']);
});
