// A small fixed-seed run of the parser fuzzer (the full run is `npm run fuzz`, 100,000+ cases):
// every parser of repository files answers generated inputs, structural extremes included, with
// its problems or a ZvError, never another throw, each in well under a second of its own time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz } from './support/fuzz.js';

test('2,000 generated cases over every parser: no non-ZvError throw, no answer without positions, none costs 1 s', () => {
  const s = fuzz({ seed: 8_1, cases: 2000, extremeRate: 0.05 });
  assert.equal(s.cases, 2000);
  assert.ok(s.extremes >= 50, `${s.extremes} extremes`);
  assert.deepEqual(s.failures, []);
  assert.ok(s.costliest.costMs < 1000, `case ${s.costliest.index} (${s.costliest.target} ${s.costliest.kind}) cost ${s.costliest.costMs.toFixed(0)} ms`);
});
