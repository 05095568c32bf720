// The webhook secret settings: flag, environment, config file, or a file path; never both.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../errors/registry.js';
import { fromConfigFile, fromEnv, resolveServeConfig } from './config.js';

it('reads the webhook secret from the flag, ZV_WEBHOOK_SECRET, the config file, or names a file', () => {
  const none = resolveServeConfig({}, {}, {});
  assert.equal(none.webhookSecret, null);
  assert.equal(none.webhookSecretFile, null);
  assert.equal(resolveServeConfig({ 'webhook-secret': ' s3cret ' }, {}, {}).webhookSecret, 's3cret');
  assert.equal(resolveServeConfig({}, fromEnv({ ZV_WEBHOOK_SECRET: 'from-env' }), {}).webhookSecret, 'from-env');
  assert.equal(resolveServeConfig({}, {}, fromConfigFile('webhookSecretFile: /run/secrets/hook\n')).webhookSecretFile, '/run/secrets/hook');
  assert.equal(resolveServeConfig({}, fromEnv({ ZV_WEBHOOK_SECRET_FILE: '/x' }), {}).webhookSecretFile, '/x');
  for (const bad of [{ 'webhook-secret': '' }, { 'webhook-secret': true }, { 'webhook-secret-file': '  ' }, { 'webhook-secret': 'a', 'webhook-secret-file': '/x' }] as const) {
    assert.throws(() => resolveServeConfig(bad, {}, {}), (e: unknown) => isZvError(e, 'CONFIG_INVALID') && /webhook-secret/.test(e.message), JSON.stringify(bad));
  }
});
