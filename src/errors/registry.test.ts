import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS, ZvError, isCommitFault, toZvError, type ErrorCode } from './registry.js';

test('every error code is documented in docs/errors.md with its HTTP status', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const [code, { status }] of Object.entries(ERRORS)) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is not documented in docs/errors.md`);
    assert.match(row, new RegExp(`\\| ${status} \\|`), `${code}: docs/errors.md gives another status than ${status}`);
  }
});

test('codes are upper-case identifiers', () => {
  for (const code of Object.keys(ERRORS)) assert.match(code, /^[A-Z][A-Z0-9_]+$/);
});

test('ZvError carries code and status and serialises to the error shape', () => {
  const e = new ZvError('APP_NOT_FOUND', 'nope');
  assert.equal(e.status, 404);
  assert.deepEqual(e.toJSON(), { error: { code: 'APP_NOT_FOUND', message: 'nope' } });
  assert.equal(toZvError(new Error('x')).code, 'INTERNAL');
  assert.equal(toZvError(e), e);
});

test('docs/errors.md lists exactly the codes whose sync failures are not retried (fault: commit)', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const line = doc.split('\n').find((l) => l.startsWith('Not retried (the commit is at fault): '));
  assert.ok(line, 'docs/errors.md has no "Not retried" line');
  const listed = [...line.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]).sort();
  const commitFaults = Object.keys(ERRORS).filter((c) => isCommitFault(c as ErrorCode)).sort();
  assert.deepEqual(listed, commitFaults);
});
