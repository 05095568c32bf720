import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromConfigFile, fromEnv, parseSize, resolveServeConfig } from './config.js';
import { isZvError } from '../errors/registry.js';

test('defaults', () => {
  const c = resolveServeConfig({}, {}, {});
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8000);
  assert.equal(c.dataDir, './.zerverless');
  assert.equal(c.pollIntervalMs, 300_000);
  assert.equal(c.allowFileRepos, false);
  assert.equal(c.maxBodyBytes, 10 * 1024 * 1024);
  assert.equal(c.repo, null);
});

test('flags win over env, env over the file', () => {
  const file = fromConfigFile('port: 9000\npollInterval: 1h\ndata-dir: /from/file\nhost: 0.0.0.0\n');
  const env = fromEnv({ ZV_PORT: '9100', ZV_POLL_INTERVAL: '30s', ZV_ALLOW_FILE_REPOS: 'true' });
  const c = resolveServeConfig({ port: '9200' }, env, file);
  assert.equal(c.port, 9200);
  assert.equal(c.pollIntervalMs, 30_000);
  assert.equal(c.dataDir, '/from/file');
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.allowFileRepos, true);
});

test('bootstrap repo gets a name from its URL', () => {
  const c = resolveServeConfig({ repo: 'https://example.com/team/My_Site.git', namespace: 'team' }, {}, {});
  assert.deepEqual(c.repo, { url: 'https://example.com/team/My_Site.git', branch: 'main', appsDir: 'apps', namespace: 'team', name: 'my-site' });
});

test('bad values name the setting', () => {
  assert.throws(() => resolveServeConfig({ 'poll-interval': 'soon' }, {}, {}), (e: unknown) => isZvError(e, 'CONFIG_INVALID') && /poll-interval/.test(e.message));
  assert.throws(() => resolveServeConfig({ port: 'x' }, {}, {}), /port/);
  assert.throws(() => fromConfigFile('nope: 1'), /unknown setting 'nope'/);
  assert.throws(() => fromConfigFile('port: [1'), /zerverless.config.yaml/);
});

test('sizes', () => {
  assert.equal(parseSize('10MiB'), 10 * 1024 * 1024);
  assert.equal(parseSize('1kb'), 1000);
  assert.equal(parseSize(512), 512);
  assert.equal(parseSize('lots'), null);
});

test('--drift-interval: default 1m, a duration, 0 or off disables, anything else is refused', () => {
  assert.equal(resolveServeConfig({}, {}, {}).driftIntervalMs, 60_000);
  assert.equal(resolveServeConfig({ 'drift-interval': '30s' }, {}, {}).driftIntervalMs, 30_000);
  assert.equal(resolveServeConfig({}, fromEnv({ ZV_DRIFT_INTERVAL: '2m' }), {}).driftIntervalMs, 120_000);
  assert.equal(resolveServeConfig({ 'drift-interval': 'off' }, {}, {}).driftIntervalMs, 0);
  assert.equal(resolveServeConfig({ 'drift-interval': '0' }, {}, {}).driftIntervalMs, 0);
  assert.equal(resolveServeConfig({}, {}, fromConfigFile('driftInterval: 0\n')).driftIntervalMs, 0);
  for (const bad of ['soon', '10ms', '-1s']) {
    assert.throws(() => resolveServeConfig({ 'drift-interval': bad }, {}, {}), (e: unknown) => isZvError(e, 'CONFIG_INVALID') && /drift-interval/.test(e.message));
  }
});

test('--function-idle: default 5m, a duration, 0 or off never unloads, anything else is refused', () => {
  assert.equal(resolveServeConfig({}, {}, {}).functionIdleMs, 300_000);
  assert.equal(resolveServeConfig({ 'function-idle': '30s' }, {}, {}).functionIdleMs, 30_000);
  assert.equal(resolveServeConfig({}, fromEnv({ ZV_FUNCTION_IDLE: '1h' }), {}).functionIdleMs, 3_600_000);
  assert.equal(resolveServeConfig({ 'function-idle': 'off' }, {}, {}).functionIdleMs, 0);
  assert.equal(resolveServeConfig({ 'function-idle': '0' }, {}, {}).functionIdleMs, 0);
  assert.equal(resolveServeConfig({}, {}, fromConfigFile('functionIdle: 10m\n')).functionIdleMs, 600_000);
  for (const bad of ['soon', '10ms', '-1s']) {
    assert.throws(() => resolveServeConfig({ 'function-idle': bad }, {}, {}), (e: unknown) => isZvError(e, 'CONFIG_INVALID') && /function-idle/.test(e.message));
  }
});
