// --max-git-processes and --max-syncs (issue 10, item 2): defaults, the three layers, bad values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../errors/registry.js';
import { fromConfigFile, fromEnv, resolveServeConfig } from './config.js';

test('--max-git-processes and --max-syncs: default 4, from a flag, ZV_* or the config file; a whole number from 1 to 1024', () => {
  const d = resolveServeConfig({}, {}, {});
  assert.equal(d.maxGitProcesses, 4);
  assert.equal(d.maxSyncs, 4);
  assert.equal(resolveServeConfig({ 'max-git-processes': '8' }, {}, {}).maxGitProcesses, 8);
  assert.equal(resolveServeConfig({}, fromEnv({ ZV_MAX_SYNCS: '2' }), {}).maxSyncs, 2);
  assert.equal(resolveServeConfig({}, {}, fromConfigFile('maxSyncs: 16\nmax-git-processes: 1\n')).maxSyncs, 16);
  assert.equal(resolveServeConfig({}, {}, fromConfigFile('maxGitProcesses: 6\n')).maxGitProcesses, 6);
  assert.equal(resolveServeConfig({ 'max-syncs': '3' }, fromEnv({ ZV_MAX_SYNCS: '2' }), {}).maxSyncs, 3, 'the flag wins');
  for (const bad of ['0', '-1', '2.5', 'many', '', '1025']) {
    for (const name of ['max-git-processes', 'max-syncs'] as const) {
      assert.throws(() => resolveServeConfig({ [name]: bad }, {}, {}), (e: unknown) => isZvError(e, 'CONFIG_INVALID') && e.message.startsWith(`${name}:`), `${name}=${bad}`);
    }
  }
  assert.throws(() => resolveServeConfig({ 'max-syncs': true }, {}, {}), (e: unknown) => isZvError(e, 'CONFIG_INVALID'));
});
