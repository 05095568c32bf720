// The bounded per-function series: the cap, `_other`, removal of deleted functions and applications.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from './metrics.js';
import { OTHER } from './function-metrics.js';

const fnOf = (ns: string, app: string, path: string, runtime = 'lua') => ({ appKey: `${ns}/${app}`, path, runtime });

/** The label sets of one metric as /metrics shows them. */
async function seriesOf(m: Metrics, name: string): Promise<Record<string, string | number>[]> {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (metric?.values ?? []).map((v) => v.labels as Record<string, string | number>);
}

describe('function request metrics', () => {
  it('counts by namespace, app, function, runtime and status class', async () => {
    const m = new Metrics();
    const f = fnOf('ns', 'shop', '/cart');
    m.functions.observe(f, 200, 0.01);
    m.functions.observe(f, 201, 0.02);
    m.functions.observe(f, 404, 0.01);
    m.functions.observe(fnOf('ns', 'shop', '/pay', 'python'), 502, 1.5);
    const text = await m.registry.metrics();
    assert.match(text, /zerverless_function_requests_total\{namespace="ns",app="shop",function="\/cart",runtime="lua",status_class="2xx"\} 2/);
    assert.match(text, /zerverless_function_requests_total\{namespace="ns",app="shop",function="\/cart",runtime="lua",status_class="4xx"\} 1/);
    assert.match(text, /zerverless_function_requests_total\{namespace="ns",app="shop",function="\/pay",runtime="python",status_class="5xx"\} 1/);
    assert.match(text, /zerverless_function_request_duration_seconds_count\{namespace="ns",app="shop",function="\/cart",runtime="lua",status_class="2xx"\} 2/);
  });

  it('holds the cap: functions beyond it are counted as _other', async () => {
    const m = new Metrics({ maxFunctionSeries: 50 });
    for (let i = 0; i < 120; i++) m.functions.observe(fnOf(`ns${i % 7}`, `app${i % 3}`, `/f${i}`), 200, 0.001);
    const labels = await seriesOf(m, 'zerverless_function_requests_total');
    const own = labels.filter((l) => l.function !== OTHER);
    const other = labels.filter((l) => l.function === OTHER);
    assert.equal(own.length, 50, 'exactly the cap of functions have series of their own');
    assert.equal(other.length, 1);
    assert.deepEqual({ ...other[0] }, { namespace: OTHER, app: OTHER, function: OTHER, runtime: 'lua', status_class: '2xx' });
    const total = (await m.registry.getMetricsAsJSON()).find((x) => x.name === 'zerverless_function_requests_total');
    assert.equal(total?.values.reduce((a, v) => a + v.value, 0), 120, 'every request is counted');
    // A function already counted keeps its own series.
    m.functions.observe(fnOf('ns0', 'app0', '/f0'), 200, 0.001);
    assert.equal((await seriesOf(m, 'zerverless_function_requests_total')).length, 51);
  });

  it('removes the series of a deleted function or application, which frees their slots', async () => {
    const m = new Metrics({ maxFunctionSeries: 3 });
    m.functions.observe(fnOf('a', 'one', '/x'), 200, 0.001);
    m.functions.observe(fnOf('a', 'one', '/y'), 500, 0.001);
    m.functions.observe(fnOf('a', 'two', '/z'), 200, 0.001);
    m.functions.retain('a', 'one', new Set(['/x']));
    let labels = await seriesOf(m, 'zerverless_function_requests_total');
    assert.deepEqual(labels.map((l) => `${l.app}${l.function}`).sort(), ['one/x', 'two/z']);
    m.functions.removeApp('a', 'two');
    labels = await seriesOf(m, 'zerverless_function_requests_total');
    assert.deepEqual(labels.map((l) => `${l.app}${l.function}`), ['one/x']);
    assert.equal((await seriesOf(m, 'zerverless_function_request_duration_seconds')).filter((l) => l.app === 'two').length, 0);
    // freed slots take new functions under their own names
    m.functions.observe(fnOf('b', 'three', '/p'), 200, 0.001);
    m.functions.observe(fnOf('b', 'three', '/q'), 200, 0.001);
    labels = await seriesOf(m, 'zerverless_function_requests_total');
    assert.ok(labels.every((l) => l.function !== OTHER), JSON.stringify(labels));
    // a served function object whose series were removed is counted afresh, not lost
    const served = fnOf('c', 'four', '/r');
    m.functions.observe(served, 200, 0.001); // beyond the cap: _other
    m.functions.removeApp('b', 'three');
    m.functions.observe(served, 200, 0.001); // still cached as _other: counted there
    labels = await seriesOf(m, 'zerverless_function_requests_total');
    assert.ok(labels.some((l) => l.function === OTHER));
  });
});
