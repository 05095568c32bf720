// --python-workers and --python-max-workers (issue 10, item 3): absent unless set (the runtime's
// defaults apply), the three layers, bad values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../errors/registry.js';
import { fromConfigFile, fromEnv, resolveServeConfig } from './config.js';

test('--python-workers and --python-max-workers: from a flag, ZV_* or the config file; a whole number from 1 to 1024', () => {
  const d = resolveServeConfig({}, {}, {});
  assert.equal(d.pythonWorkers, undefined);
  assert.equal(d.pythonMaxWorkers, undefined);
  assert.equal(resolveServeConfig({ 'python-workers': '2' }, {}, {}).pythonWorkers, 2);
  assert.equal(resolveServeConfig({}, fromEnv({ ZV_PYTHON_MAX_WORKERS: '16' }), {}).pythonMaxWorkers, 16);
  assert.equal(resolveServeConfig({}, {}, fromConfigFile('python-workers: 1\n')).pythonWorkers, 1);
  for (const bad of ['0', '-1', 'many', '1.5', '5000']) {
    assert.throws(() => resolveServeConfig({ 'python-workers': bad }, {}, {}), (e: unknown) => isZvError(e, 'CONFIG_INVALID') && /python-workers/.test(e.message));
  }
});
