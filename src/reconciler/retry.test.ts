import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RETRY, RetrySchedule, backoffMs } from './retry.js';

test('backoff: 10 s doubling to 10 min', () => {
  const seconds = [1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => backoffMs(n) / 1000);
  assert.deepEqual(seconds, [10, 20, 40, 80, 160, 320, 600, 600, 600]);
  assert.equal(backoffMs(0), DEFAULT_RETRY.baseMs);
  assert.equal(backoffMs(3, { baseMs: 100, maxMs: 250 }), 250);
});

test('the schedule counts attempts, fires once per failure, and a success clears it', async () => {
  let now = Date.parse('2026-12-06T00:00:00.000Z');
  const fired: number[] = [];
  let wake: () => void = () => undefined;
  const s = new RetrySchedule({ baseMs: 20, maxMs: 60 }, () => new Date(now), (id) => {
    fired.push(id);
    wake();
  });
  const firedOnce = () => new Promise<void>((r) => (wake = r));
  // The schedule's timers do not hold the process open (unref): this does, while the test waits.
  const keepAlive = setInterval(() => undefined, 1_000);

  assert.equal(s.get(1), undefined);
  let next = firedOnce();
  assert.deepEqual(s.failed(1), { attempt: 1, nextAt: '2026-12-06T00:00:00.020Z' });
  await next;
  // While the retry runs, the status still shows it.
  assert.equal(s.get(1)?.attempt, 1);
  now += 1000;
  next = firedOnce();
  assert.deepEqual(s.failed(1), { attempt: 2, nextAt: '2026-12-06T00:00:01.040Z' });
  await next;
  assert.equal(s.failed(1)?.nextAt, '2026-12-06T00:00:01.060Z', 'at most maxMs');
  s.clear(1);
  assert.equal(s.get(1), undefined);
  assert.deepEqual(s.failed(1), { attempt: 1, nextAt: '2026-12-06T00:00:01.020Z' }, 'counting starts again after a success');
  s.close();
  assert.equal(s.get(1), undefined);
  assert.equal(s.failed(1), undefined, 'nothing is scheduled once closed');
  assert.deepEqual(fired, [1, 1]);
  clearInterval(keepAlive);
});
