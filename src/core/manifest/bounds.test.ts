// The limits of parsed files (issue 8.1): each limit at its file:line:col with its code, the inputs
// of the issue answered fast, duplicate keys found in linear time, a flood of syntax errors cut
// short, and files just under the limits still parsed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic } from '../desired.js';
import { parseManifest } from './parse.js';
import { MANIFEST_LIMITS, MAX_SYNTAX_ERRORS, scanYamlBounds, SPEC_LIMITS, utf8Bytes } from './bounds.js';
import { parseErlangTerm, parseServiceSpec } from '../services/spec/index.js';

const HEAD = 'apiVersion: zerverless.io/v1\nkind: Application\n';
const keys = (n: number, sep = ', '): string => Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join(sep);

/** The cost of f: min(wall, process CPU), a bound of this thread's own time that a busy machine does not inflate. */
function timed<T>(f: () => T): { value: T; ms: number } {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const value = f();
  const wall = performance.now() - t;
  const used = process.cpuUsage(cpu);
  return { value, ms: Math.min(wall, (used.user + used.system) / 1000) };
}

function tooLarge(r: ReturnType<typeof parseManifest> | ReturnType<typeof parseServiceSpec>): string {
  assert.ok('errors' in r, 'expected errors');
  assert.ok('code' in r && r.code, `expected a limit code, got ${JSON.stringify(r.errors)}`);
  return `${r.code} ${r.errors.map(formatDiagnostic).join('\n')}`;
}

test('zerverless.yaml: each limit with MANIFEST_TOO_LARGE at the place it was crossed', () => {
  const big = `${HEAD}metadata: {name: x, description: "${'a'.repeat(MANIFEST_LIMITS.maxBytes)}"}\n`;
  assert.match(tooLarge(parseManifest(big)), /^MANIFEST_TOO_LARGE zerverless\.yaml:1:1: is 1048\d{3} bytes; zerverless\.yaml may be at most 1048576 bytes \(1 MiB\)$/);
  assert.match(tooLarge(parseManifest(`${HEAD}metadata:\n  name: x\nspec: ${'['.repeat(100)}`)), /^MANIFEST_TOO_LARGE zerverless\.yaml:5:70: nested more than 64 levels deep/);
  assert.match(tooLarge(parseManifest(`${HEAD}metadata: {${keys(20_000)}}\n`)), /^MANIFEST_TOO_LARGE zerverless\.yaml:3:\d+: more than 10000 mapping keys/);
  assert.match(tooLarge(parseManifest(`${HEAD}metadata:\n  ${keys(20_000, '\n  ')}\n`)), /^MANIFEST_TOO_LARGE zerverless\.yaml:10001:3: more than 10000 mapping keys/);
  assert.match(tooLarge(parseManifest(`${HEAD}x: [${'1,'.repeat(20_000)}]\n`)), /^MANIFEST_TOO_LARGE zerverless\.yaml:3:20005: more than 10000 list items/);
  assert.match(tooLarge(parseManifest('#\n'.repeat(200_000))), /^MANIFEST_TOO_LARGE zerverless\.yaml:75001:1: more than 150000 YAML tokens/);
  // Block nesting: the exact first place, from the composed document.
  const block = Array.from({ length: 80 }, (_, i) => `${' '.repeat(i * 2)}- k:`).join('\n');
  assert.match(tooLarge(parseManifest(block)), /^MANIFEST_TOO_LARGE zerverless\.yaml:33:65: nested more than 64 levels deep/);
});

test('more than 1,000 functions is MANIFEST_TOO_LARGE at the 1,001st', () => {
  const fns = Array.from({ length: 1001 }, (_, i) => `    - {path: /f${i}, runtime: lua, code: x}`).join('\n');
  assert.equal(tooLarge(parseManifest(`${HEAD}metadata: {name: x}\nspec:\n  functions:\n${fns}\n`)),
    'MANIFEST_TOO_LARGE zerverless.yaml:1006:7: spec.functions: has 1001 functions; zerverless.yaml may declare at most 1000');
  const ok = parseManifest(`${HEAD}metadata: {name: x}\nspec:\n  functions:\n${fns.split('\n').slice(0, 1000).join('\n')}\n`);
  assert.ok('manifest' in ok, JSON.stringify(ok).slice(0, 300));
  assert.equal(ok.manifest.spec.functions.length, 1000);
});

test('the inputs of the issue answer in well under a second each', () => {
  const cases = [
    `${HEAD}metadata: {${keys(200_000)}}\n`,
    `${HEAD}metadata: {${keys(40_000)}}\n`,
    `x: ${'['.repeat(100_000)}`,
    `x: ${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  ];
  for (const text of cases) {
    const { value, ms } = timed(() => parseManifest(text));
    assert.ok('code' in value && value.code === 'MANIFEST_TOO_LARGE');
    assert.ok(ms < 1000, `${text.slice(0, 20)}…: ${ms} ms`);
  }
  for (const [text, file] of [
    [`${'{"a": '.repeat(5000)}1${'}'.repeat(5000)}`, 'apps/x/app.json'],
    [`${'['.repeat(5000)}${']'.repeat(5000)}`, 'apps/x/app.json'],
    [`${'['.repeat(5000)}${']'.repeat(5000)}.`, 'apps/x/app.config'],
    [`${'{'.repeat(5000)}${'}'.repeat(5000)}.`, 'apps/x/app.config'],
    [`${'#{a => '.repeat(5000)}1${'}'.repeat(5000)}.`, 'apps/x/app.config'],
    [`a: ${'['.repeat(5000)}`, 'apps/x/app.yaml'],
  ] as const) {
    for (let twice = 0; twice < 2; twice++) {
      const { value, ms } = timed(() => parseServiceSpec(text, file));
      assert.match(tooLarge(value), /^SERVICE_SPEC_TOO_LARGE apps\/x\/app\.\w+:1:\d+: nested more than 64 levels deep/);
      assert.ok(ms < 1000, `${file}: ${ms} ms`);
    }
  }
});

test('service specs: the byte, key and item limits, in every format', () => {
  assert.match(tooLarge(parseServiceSpec(`{"name": "${'a'.repeat(SPEC_LIMITS.maxBytes)}"}`, 'apps/x/app.json')), /^SERVICE_SPEC_TOO_LARGE apps\/x\/app\.json:1:1: is 262\d+ bytes; a service spec may be at most 262144 bytes \(256 KiB\)$/);
  assert.match(tooLarge(parseServiceSpec(`#{${Array.from({ length: 10_001 }, (_, i) => `k${i} => 1`).join(', ')}}.`, 'apps/x/app.config')), /^SERVICE_SPEC_TOO_LARGE apps\/x\/app\.config:1:\d+: more than 10000 mapping keys/);
  assert.match(tooLarge(parseServiceSpec(`[${'a, '.repeat(10_001)}a].`, 'apps/x/config')), /^SERVICE_SPEC_TOO_LARGE apps\/x\/config:1:30002: more than 10000 list items/);
  assert.match(tooLarge(parseServiceSpec(`{${Array.from({ length: 10_001 }, (_, i) => `"k${i}": 1`).join(', ')}}`, 'apps/x/app.json')), /more than 10000 mapping keys/);
  assert.match(tooLarge(parseServiceSpec(`env: {${keys(10_001)}}`, 'apps/x/app.yaml')), /more than 10000 mapping keys/);
  // The Erlang term parser alone: limits are its defaults, and a limit is marked as one.
  const r = parseErlangTerm(`${'['.repeat(65)}${']'.repeat(65)}.`);
  assert.deepEqual('error' in r && r.error, { line: 1, col: 65, message: 'nested more than 64 levels deep (a service spec may nest at most 64 levels of maps and lists)', limit: true });
  assert.ok('term' in parseErlangTerm(`${'['.repeat(64)}${']'.repeat(64)}.`));
});

test('duplicate keys are found in linear time, at the repeated key', () => {
  const text = `${HEAD}metadata: {${keys(9_000)}, k5: again}\n`;
  const { value, ms } = timed(() => parseManifest(text));
  assert.ok('errors' in value);
  assert.deepEqual(value.errors.map((e) => e.message), ['invalid YAML: Map keys must be unique']);
  assert.ok(ms < 1000, `${ms} ms`);
  const json = parseServiceSpec(`{"name": "a", "version": "1", "name": "b"}`, 'apps/x/app.json');
  assert.deepEqual('errors' in json && json.errors.map(formatDiagnostic), ['apps/x/app.json:1:31: invalid JSON: duplicate key']);
  // Equal by value and type, like the YAML library: 1 and "1" are two keys.
  const mixed = parseManifest(`${HEAD}metadata: {name: x, labels: {1: a, "1": b}}\nspec: {}\n`);
  assert.ok(!('errors' in mixed && mixed.errors.some((e) => /unique/.test(e.message))));
});

test('a flood of syntax errors is cut short after MAX_SYNTAX_ERRORS', () => {
  for (const unit of ['&a ', '!t ', '"" ', '*a ']) {
    const { value, ms } = timed(() => parseManifest(unit.repeat(40_000)));
    assert.ok('errors' in value && !('code' in value && value.code));
    assert.ok(value.errors.length <= MAX_SYNTAX_ERRORS, `${unit}: ${value.errors.length} errors`);
    assert.ok(ms < 1000, `${unit}: ${ms} ms`);
  }
});

test('the scan counts what the parser will see, and never more nesting than there is', () => {
  const limits = { maxBytes: 1e9, maxDepth: 4, maxKeys: 5, maxItems: 5, maxTokens: 1e9 };
  assert.equal(scanYamlBounds('a:\n  b:\n    c: [x]\n', limits, 'f')?.message, undefined);
  assert.equal(scanYamlBounds('a:\n  b:\n    c: [[x]]\n', limits, 'f')?.offset, 16);
  assert.equal(scanYamlBounds('k: |\n  [[[[[[[[\n  a: b: c: d: e: f:\n', limits, 'f'), null, 'block scalar content is one token');
  assert.equal(scanYamlBounds('k: "[[[[[[ a: b: c: d: e: f:"\n# [[[[[[ a: b: c: d: e:\n', limits, 'f'), null);
  assert.match(scanYamlBounds('{a, b, c, d, e, f}', limits, 'f')?.message ?? '', /more than 5 mapping keys/);
  assert.match(scanYamlBounds('- a\n- b\n- c\n- d\n- e\n- f\n', limits, 'f')?.message ?? '', /more than 5 list items/);
  assert.match(scanYamlBounds('[,,,,,,]', limits, 'f')?.message ?? '', /more than 5 list items/);
  assert.equal(utf8Bytes('aé€😀'), 1 + 2 + 3 + 4);
});
