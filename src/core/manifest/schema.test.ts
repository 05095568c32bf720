// The shipped schema/zerverless.schema.json must equal the TS schema object (regenerate with
// `node scripts/gen-schema.mjs`), and the schema must accept the PRODUCT.md example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
// A test may read the shipped file; the module under test stays pure.
import { readFileSync } from 'node:fs';
import { manifestSchema, RUNTIMES } from './schema.js';

test('schema/zerverless.schema.json is in sync with schema.ts', () => {
  const file = new URL('../../../schema/zerverless.schema.json', import.meta.url);
  const json: unknown = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(json, JSON.parse(JSON.stringify(manifestSchema)), 'run: node scripts/gen-schema.mjs');
});

test('runtime enum lists every accepted spelling', () => {
  const fn = manifestSchema.properties.spec.properties.functions.items.properties;
  assert.deepEqual(fn.runtime.enum, [...RUNTIMES]);
  assert.deepEqual([...RUNTIMES].sort(), ['docker', 'javascript', 'js', 'lua', 'python', 'ts', 'typescript']);
});
