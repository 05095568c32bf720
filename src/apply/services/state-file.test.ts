// importAppliedFile and importAppliedFiles on real files and a real SQLite store: an old
// applied.json is imported once and deleted, a store that already has specs wins (the file is only
// deleted), an unreadable file is left in place and logged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ServiceSpec } from '../../core/services/types.js';
import { newApp, sampleSpec } from '../../store/contract.js';
import { openSqliteStore } from '../../store/sqlite/store.js';
import type { AppliedServices } from '../../store/types.js';
import { appliedFilePath, importAppliedFile, importAppliedFiles, readAppliedState } from './state-file.js';

let base = '';
let n = 0;
before(async () => { base = await mkdtemp(join(tmpdir(), 'zv-applied-file-')); });
after(() => rm(base, { recursive: true, force: true }));

/** A file exactly as the old ServiceReconciler wrote it (format 1, two-space JSON, specs by name). */
async function oldFile(path: string, commit: string | null, specs: ServiceSpec[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify({ format: 1, commit, specs }, null, 2) + '\n');
}

const recorder = () => {
  const lines: string[] = [];
  return { lines, warn: (o: object, m?: string) => { lines.push(`${m} ${JSON.stringify(o)}`); }, info: (o: object, m?: string) => { lines.push(`${m} ${JSON.stringify(o)}`); } };
};

test('importAppliedFile imports a file once, then deletes it; a store that has specs only loses the file', async () => {
  const path = join(base, `case${n++}`, 'applied.json');
  const specs = [sampleSpec('api', { dependsOn: ['db'] }), sampleSpec('db', { route: null })];
  await oldFile(path, 'a'.repeat(40), [specs[1]!, specs[0]!]);
  let stored: AppliedServices | null = null;
  let saves = 0;
  const save = async (a: AppliedServices): Promise<void> => { saves++; stored = a; };
  const has = async (): Promise<boolean> => stored !== null;

  assert.equal(await importAppliedFile(path, save, has), true);
  assert.deepEqual(stored, { commit: 'a'.repeat(40), specs }, 'read back sorted by name');
  assert.equal(existsSync(path), false);
  // once: no file any more, nothing to do
  assert.equal(await importAppliedFile(path, save, has), false);
  assert.equal(saves, 1);

  // a file reappearing (e.g. an older server ran on the dir again) while the store has specs: the store wins
  await oldFile(path, 'b'.repeat(40), [sampleSpec('old')]);
  assert.equal(await importAppliedFile(path, save, has), false);
  assert.equal(saves, 1);
  assert.deepEqual(stored, { commit: 'a'.repeat(40), specs });
  assert.equal(existsSync(path), false);
});

test('importAppliedFile leaves an unreadable file in place, logs it and imports nothing', async () => {
  const dir = join(base, `case${n++}`);
  const log = recorder();
  let saves = 0;
  const save = async (): Promise<void> => { saves++; };
  for (const [name, text] of [['garbage.json', '{not json'], ['format.json', '{"format": 2, "commit": null, "specs": []}'], ['nameless.json', '{"format": 1, "commit": null, "specs": [{}]}']] as const) {
    const path = join(dir, name);
    await mkdir(dir, { recursive: true });
    await writeFile(path, text);
    assert.equal(await importAppliedFile(path, save, async () => false, log), false);
    assert.equal(existsSync(path), true, `${name} is left in place`);
    await assert.rejects(readAppliedState(path));
  }
  assert.equal(saves, 0);
  assert.equal(log.lines.length, 3);
  assert.ok(log.lines.every((l) => l.includes('cannot be read') && l.includes(dir)), log.lines.join('\n'));
});

test('importAppliedFile keeps the file when the save fails (it is tried again at the next start)', async () => {
  const path = join(base, `case${n++}`, 'applied.json');
  await oldFile(path, null, [sampleSpec('api')]);
  await assert.rejects(importAppliedFile(path, () => Promise.reject(new Error('database is locked')), async () => false), /database is locked/);
  assert.equal(existsSync(path), true);
});

test('importAppliedFiles moves every application\'s old file of a data dir into a real SQLite store', async () => {
  const dataDir = join(base, `case${n++}`);
  const store = openSqliteStore(join(dataDir, 'state.db'));
  try {
    const web = await store.createApp(newApp('web'));
    const api = await store.createApp(newApp('api'));
    const broken = await store.createApp(newApp('broken'));
    const none = await store.createApp(newApp('none'));
    const newer = await store.createApp(newApp('newer'));
    await oldFile(appliedFilePath(dataDir, web.id), 'a'.repeat(40), [sampleSpec('web')]);
    await oldFile(appliedFilePath(dataDir, api.id), null, []);
    await mkdir(dirname(appliedFilePath(dataDir, broken.id)), { recursive: true });
    await writeFile(appliedFilePath(dataDir, broken.id), '{"format": 1, "specs": ');
    await oldFile(appliedFilePath(dataDir, newer.id), 'c'.repeat(40), [sampleSpec('stale')]);
    await store.saveAppliedServices(newer.id, { commit: 'd'.repeat(40), specs: [sampleSpec('fresh')] });
    // a file of an application that no longer exists is not touched (its folder goes with it)
    await oldFile(appliedFilePath(dataDir, 999), null, [sampleSpec('ghost')]);

    const log = recorder();
    assert.equal(await importAppliedFiles(store, dataDir, log), 2);
    assert.deepEqual(await store.getAppliedServices(web.id), { commit: 'a'.repeat(40), specs: [sampleSpec('web')] });
    assert.deepEqual(await store.getAppliedServices(api.id), { commit: null, specs: [] });
    assert.equal(await store.getAppliedServices(broken.id), null, 'restores without services');
    assert.equal(await store.getAppliedServices(none.id), null);
    assert.deepEqual(await store.getAppliedServices(newer.id), { commit: 'd'.repeat(40), specs: [sampleSpec('fresh')] });
    assert.equal(existsSync(appliedFilePath(dataDir, web.id)), false);
    assert.equal(existsSync(appliedFilePath(dataDir, api.id)), false);
    assert.equal(existsSync(appliedFilePath(dataDir, newer.id)), false);
    assert.equal(existsSync(appliedFilePath(dataDir, broken.id)), true);
    assert.equal(existsSync(appliedFilePath(dataDir, 999)), true);
    // the service folder itself stays (the Node runtime keeps its versions there)
    assert.deepEqual(await readdir(dirname(appliedFilePath(dataDir, web.id))), []);
    assert.ok(log.lines.some((l) => l.includes('cannot be read')), log.lines.join('\n'));

    // a second start: nothing left to import, the broken file is still there
    assert.equal(await importAppliedFiles(store, dataDir, recorder()), 0);
    assert.equal(existsSync(appliedFilePath(dataDir, broken.id)), true);
  } finally {
    await store.close();
  }
});
