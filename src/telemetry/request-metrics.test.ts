// The request path's counters and histograms (request-metrics.ts) expose exactly what prom-client's
// Counter and Histogram expose for the same observations: names, help, labels, cumulative buckets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { RequestCounter, RequestHistogram } from './request-metrics.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const HELP = { c: 'Requests by kind and status', h: 'Durations by kind' };

describe('request metrics', () => {
  it('expose the same text as prom-client Counter and Histogram fed the same values', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const c1 = new RequestCounter(ours, { name: 'zv_test_requests_total', help: HELP.c, labelNames: ['kind', 'status'] as const });
    const h1 = new RequestHistogram(ours, { name: 'zv_test_duration_seconds', help: HELP.h, labelNames: ['kind'] as const, buckets: BUCKETS });
    const c2 = new Counter({ name: 'zv_test_requests_total', help: HELP.c, labelNames: ['kind', 'status'] as const, registers: [theirs] });
    const h2 = new Histogram({ name: 'zv_test_duration_seconds', help: HELP.h, labelNames: ['kind'] as const, buckets: BUCKETS, registers: [theirs] });
    // values on, below and above bounds, and past the last one (+Inf)
    const samples: Array<[string, string, number]> = [
      ['function', '200', 0.0004], ['function', '200', 0.001], ['function', '500', 0.0011], ['static', '200', 0.3],
      ['static', '404', 30], ['static', '200', 31], ['api', '201', 0], ['function', '200', 2.5],
    ];
    for (const [kind, status, v] of samples) {
      c1.inc({ kind, status });
      c2.inc({ kind, status });
      h1.observe({ kind }, v);
      h2.observe({ kind }, v);
    }
    c1.inc({ kind: 'api', status: '201' }, 3);
    c2.inc({ kind: 'api', status: '201' }, 3);
    const sorted = (text: string) => text.split('\n').sort().join('\n');
    assert.equal(sorted(await ours.metrics()), sorted(await theirs.metrics()));
    assert.equal(c1.value({ kind: 'api', status: '201' }), 4);
    assert.equal(c1.value({ kind: 'api', status: '500' }), 0);
  });

  it('keep label sets apart even when values contain the separator of others', async () => {
    const r = new Registry();
    const c = new RequestCounter(r, { name: 'zv_test_total', help: 'x', labelNames: ['a', 'b'] as const });
    c.inc({ a: 'x', b: 'y z' });
    c.inc({ a: 'x y', b: 'z' });
    assert.equal(c.value({ a: 'x', b: 'y z' }), 1);
    assert.equal(c.value({ a: 'x y', b: 'z' }), 1);
  });
});
