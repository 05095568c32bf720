#!/usr/bin/env node
// `npm run fuzz [-- --cases N --seed S --from I --max-ms M]`: fuzzes every parser of repository
// files (zerverless.yaml, service specs in YAML / JSON / Erlang terms, Erlang terms alone) with
// generated cases (test/support/fuzz.ts) and prints the figures. Fails (exit 1) on any throw that is
// not a ZvError, any answer without positions, or a case that cost --max-ms (default 1000) or more:
// cost = min(wall time, process CPU time), an upper bound of the parsing thread's own CPU time (on a
// busy machine the wall time includes waiting for a core; it is printed too).
// A failing case is replayed alone with --from <index> --cases 1 and the same seed.
import { parseArgs } from 'node:util';
import { fuzz } from '../test/support/fuzz.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '20261205' },
    from: { type: 'string', default: '0' },
    'max-ms': { type: 'string', default: '1000' },
    'extreme-rate': { type: 'string', default: '0.02' },
  },
});
const seed = values.seed === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const cases = Number(values.cases);
const maxMs = Number(values['max-ms']);
console.log(`fuzzing ${cases} cases, seed ${seed}`);
const s = fuzz({
  seed, cases, from: Number(values.from), extremeRate: Number(values['extreme-rate']),
  onProgress: (done, p) => console.log(`  ${done} cases, ${p.failures.length} failures, slowest ${p.slowest.wallMs.toFixed(0)} ms wall, costliest ${p.costliest.costMs.toFixed(0)} ms, ${(performance.now() / 1000).toFixed(0)} s`),
});
const ms = (n: number) => `${n.toFixed(1)} ms`;
console.log(`
cases:            ${s.cases} (${Object.entries(s.byTarget).map(([t, n]) => `${t} ${n}`).join(', ')}), ${s.extremes} structural extremes
answered:         ${s.returned} (problems returned as diagnostics, or a result)
ZvError throws:   ${s.zvErrors}
other throws:     ${s.failures.filter((f) => f.result === 'throw').length}
bad answers:      ${s.failures.filter((f) => f.result === 'bad').length}
slowest (wall):   ${ms(s.slowest.wallMs)} (cpu ${ms(s.slowest.cpuMs)}) case ${s.slowest.index} ${s.slowest.target} ${s.slowest.kind}, ${s.slowest.bytes} chars
costliest:        ${ms(s.costliest.costMs)} (wall ${ms(s.costliest.wallMs)}, cpu ${ms(s.costliest.cpuMs)}) case ${s.costliest.index} ${s.costliest.target} ${s.costliest.kind}, ${s.costliest.bytes} chars
total:            ${(s.totalMs / 1000).toFixed(1)} s`);
for (const f of s.failures.slice(0, 20)) console.log(`FAIL case ${f.index} ${f.target} ${f.kind}: ${f.result} ${f.detail}\n  input: ${f.sample}`);
const slow = s.costliest.costMs >= maxMs;
if (slow) console.log(`FAIL: case ${s.costliest.index} cost ${ms(s.costliest.costMs)} (limit ${maxMs} ms)`);
process.exit(s.failures.length || slow ? 1 : 0);
