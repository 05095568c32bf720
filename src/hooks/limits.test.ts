// Limits of what an unauthenticated webhook body may cost before its signature is checked: the
// body is parsed first (the repository it names picks the secrets to check), so its nesting is bounded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { webhooksApp } from './index.js';

describe('webhook body limits', () => {
  it('refuses a deeply nested body without parsing it (400) and looks no application up', async () => {
    let looked = 0;
    const app = webhooksApp({ apps: async () => (looked++, []), serverSecret: 'a-server-secret-1234', sync: () => undefined });
    for (const body of ['['.repeat(200_000) + ']'.repeat(200_000), `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`]) {
      const res = await app.request('/generic', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 400);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'BAD_REQUEST');
      assert.match(error.message, /nested deeper than 64/);
    }
    assert.equal(looked, 0);
  });

  it('still reads a real payload nested a few levels deep', async () => {
    const app = webhooksApp({ apps: async () => [], serverSecret: 'a-server-secret-1234', sync: () => undefined });
    const body = JSON.stringify({ repoURL: 'https://example.com/a/b', branch: 'main', extra: { a: [{ b: { c: '[[[{{{' } }] } });
    const res = await app.request('/generic', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer a-server-secret-1234' }, body });
    assert.equal(res.status, 202);
  });
});
