// The parse pool: answers from worker threads, a parse over its time limit ends with PARSE_TIMEOUT
// (its worker replaced, the next parse answered), parses queue in order, a closed pool refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ParsePool } from './pool.js';

const MANIFEST = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: web
spec:
  functions:
    - path: /hi
      runtime: lua
      code: |
        function handle(req) return "one" end
`;

/** A valid manifest of many keys: parses in a good fraction of a second, never in 1 ms. */
const big = (): string => `${MANIFEST}  static: {dir: ./s}\nx-extra: {${Array.from({ length: 9000 }, (_, i) => `k${i}: ${i}`).join(', ')}}\n`;

test('parses in a worker: the same answer as the core parser, limits included', async () => {
  const pool = new ParsePool({ size: 1 });
  try {
    const ok = await pool.parse({ kind: 'manifest', text: MANIFEST, file: 'zerverless.yaml' });
    assert.ok('manifest' in ok, JSON.stringify(ok));
    assert.equal(ok.manifest.spec.functions[0]?.path, '/hi');
    const deep = await pool.parse({ kind: 'spec', text: `${'['.repeat(5000)}${']'.repeat(5000)}`, file: 'apps/x/app.json' });
    assert.ok('errors' in deep && 'code' in deep);
    assert.equal(deep.code, 'SERVICE_SPEC_TOO_LARGE');
    assert.match(deep.errors[0]?.message ?? '', /nested more than 64 levels deep/);
  } finally {
    await pool.close();
  }
});

test('a parse over its time limit ends with PARSE_TIMEOUT; the worker is replaced and the next parse answers', async () => {
  const pool = new ParsePool({ size: 1 });
  try {
    // Warm the worker so the limit counts the parse alone.
    await pool.parse({ kind: 'manifest', text: MANIFEST, file: 'zerverless.yaml' });
    const slow = await pool.parse({ kind: 'manifest', text: big(), file: 'zerverless.yaml' }, { timeoutMs: 1 });
    assert.ok('errors' in slow && 'code' in slow, JSON.stringify(slow).slice(0, 300));
    assert.equal(slow.code, 'PARSE_TIMEOUT');
    assert.deepEqual(slow.errors.map((e) => [e.file, e.line, e.col]), [['zerverless.yaml', 1, 1]]);
    assert.match(slow.errors[0]?.message ?? '', /parsing took longer than 0\.001 s/);
    const next = await pool.parse({ kind: 'manifest', text: MANIFEST, file: 'zerverless.yaml' });
    assert.ok('manifest' in next);
  } finally {
    await pool.close();
  }
});

test('parses queue behind a busy pool and all answer; a closed pool refuses', async () => {
  const pool = new ParsePool({ size: 2 });
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.parse({ kind: 'manifest', text: MANIFEST.replace('web', `web${i}`), file: `m${i}.yaml` })));
  assert.deepEqual(answers.map((a) => ('manifest' in a ? a.manifest.metadata.name : 'error')), ['web0', 'web1', 'web2', 'web3', 'web4', 'web5']);
  await pool.close();
  const refused = await pool.parse({ kind: 'manifest', text: MANIFEST, file: 'zerverless.yaml' });
  assert.ok('errors' in refused && 'code' in refused && refused.code === 'INTERNAL');
});
