// FsBlobStore on a real temp directory: layout, idempotent and concurrent puts, hash validation, gc.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes, writeFile, mkdir } from 'node:fs/promises';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZvError } from '../../errors/registry.js';
import { FsBlobStore, isBlobHash } from './fs.js';

const sha = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');

describe('FsBlobStore', () => {
  let root: string;
  let n = 0;
  before(async () => { root = await mkdtemp(join(tmpdir(), 'zv-blobs-')); });
  after(async () => { await rm(root, { recursive: true, force: true }); });
  const fresh = (opts?: ConstructorParameters<typeof FsBlobStore>[1]): FsBlobStore => new FsBlobStore(join(root, `s${n++}`, 'blobs'), opts);

  it('stores content under its sha256 at <dir>/ab/cdef…', async () => {
    const blobs = fresh();
    const data = new TextEncoder().encode('<h1>hello</h1>');
    const hash = await blobs.put(data);
    assert.equal(hash, sha(data));
    assert.equal(blobs.path(hash), join(blobs.dir, hash.slice(0, 2), hash.slice(2)));
    assert.deepEqual(readFileSync(blobs.path(hash)), Buffer.from(data));
    assert.ok(await blobs.has(hash));
    assert.deepEqual(await blobs.get(hash), Buffer.from(data));
    assert.equal(isBlobHash(hash), true);
  });

  it('stores empty and binary content', async () => {
    const blobs = fresh();
    const empty = await blobs.put(new Uint8Array());
    assert.equal(empty, sha(''));
    assert.equal((await blobs.get(empty)).length, 0);
    const bin = Uint8Array.from({ length: 70000 }, (_, i) => (i * 31) % 256);
    assert.deepEqual(await blobs.get(await blobs.put(bin)), Buffer.from(bin));
  });

  it('is idempotent and safe under concurrent puts of the same content', async () => {
    const blobs = fresh();
    const data = Buffer.from('same bytes '.repeat(5000));
    const hashes = await Promise.all(Array.from({ length: 20 }, () => blobs.put(data)));
    assert.ok(hashes.every((h) => h === sha(data)));
    assert.equal(await blobs.put(data), sha(data));
    assert.deepEqual(await blobs.get(sha(data)), data);
    const shard = await readdir(join(blobs.dir, sha(data).slice(0, 2)));
    assert.deepEqual(shard, [sha(data).slice(2)], 'no temp files left behind');
  });

  it('putMany stores every new blob in batches, leaves no temp files and skips what it has', async () => {
    const blobs = fresh();
    const datas: Buffer[] = Array.from({ length: 300 }, (_, i) => Buffer.from(`file ${i} `.repeat(1 + (i % 7))));
    datas.push(datas[0] as Buffer); // the same content twice in one call is written once
    const items = datas.map((d) => ({ hash: sha(d), read: () => Promise.resolve(new Uint8Array(d)) }));
    const already = await blobs.put(datas[5] as Buffer);
    const past = new Date(Date.now() - 120_000);
    await utimes(blobs.path(already), past, past);
    assert.equal(await blobs.putMany(items, { batchFiles: 64, concurrency: 5 }), 299);
    for (const d of datas) assert.deepEqual(await blobs.get(sha(d)), d);
    assert.ok(statSync(blobs.path(already)).mtimeMs > past.getTime() + 60_000, 'a blob it already had is marked as recently used');
    for (const shard of await readdir(blobs.dir)) {
      assert.deepEqual((await readdir(join(blobs.dir, shard))).filter((n) => n.startsWith('.tmp-')), [], `no temp files in ${shard}`);
    }
    assert.equal(await blobs.putMany(items), 0, 'nothing new the second time');
    assert.equal(await blobs.putMany([]), 0);
  });

  it('putMany refuses bytes that do not hash to their name and removes its temp files', async () => {
    const blobs = fresh();
    const good = Array.from({ length: 20 }, (_, i) => Buffer.from(`good ${i}`));
    const items = good.map((d) => ({ hash: sha(d), read: () => Promise.resolve(new Uint8Array(d)) }));
    items.splice(10, 0, { hash: sha('what the tree said'), read: () => Promise.resolve(new TextEncoder().encode('what was read')), label: 'static file a.html' } as (typeof items)[number]);
    await assert.rejects(blobs.putMany(items, { batchFiles: 1000 }), (e: unknown) => isZvError(e, 'INTERNAL') && /static file a\.html changed while it was read/.test((e as Error).message));
    assert.equal(await blobs.has(sha('what the tree said')), false);
    const left: string[] = [];
    for (const shard of existsSync(blobs.dir) ? await readdir(blobs.dir) : []) left.push(...(await readdir(join(blobs.dir, shard))).filter((n) => n.startsWith('.tmp-')));
    assert.deepEqual(left, [], 'no temp files left behind');
    // A failed read is thrown the same way.
    await assert.rejects(blobs.putMany([{ hash: sha('x'), read: () => Promise.reject(new Error('read failed')) }]), /read failed/);
    await assert.rejects(blobs.putMany([{ hash: 'not a hash', read: () => Promise.resolve(new Uint8Array()) }]), /invalid blob hash/);
  });

  it('putMany fsyncs file by file when `sync -f` cannot run', async () => {
    const blobs = fresh();
    const path = process.env.PATH;
    process.env.PATH = join(root, 'no-such-bin');
    try {
      const datas = Array.from({ length: 40 }, (_, i) => Buffer.from(`fallback ${i}`));
      assert.equal(await blobs.putMany(datas.map((d) => ({ hash: sha(d), read: () => Promise.resolve(new Uint8Array(d)) })), { batchFiles: 16 }), 40);
      for (const d of datas) assert.deepEqual(await blobs.get(sha(d)), d);
    } finally {
      process.env.PATH = path;
    }
  });

  it('reports missing blobs', async () => {
    const blobs = fresh();
    const h = sha('never stored');
    assert.equal(await blobs.has(h), false);
    await assert.rejects(blobs.get(h), (e: unknown) => isZvError(e, 'NOT_FOUND'));
  });

  it('rejects a malformed hash without touching the filesystem', async () => {
    const blobs = fresh();
    const bad = ['', 'abc', 'g'.repeat(64), 'A'.repeat(64), `${'a'.repeat(63)}/`, `../../${'a'.repeat(58)}`, `${'a'.repeat(64)}0`, `${'a'.repeat(64)}\n`];
    for (const h of bad) {
      assert.throws(() => blobs.path(h), /invalid blob hash/);
      await assert.rejects(blobs.has(h), /invalid blob hash/);
      await assert.rejects(blobs.get(h), /invalid blob hash/);
    }
    assert.equal(existsSync(blobs.dir), false, 'nothing was created');
  });

  it('gc removes every blob not kept and returns the count', async () => {
    const blobs = fresh();
    const keepA = await blobs.put(Buffer.from('a'));
    const keepB = await blobs.put(Buffer.from('b'));
    const dropC = await blobs.put(Buffer.from('c'));
    const dropD = await blobs.put(Buffer.from('d'));
    // files gc must leave alone: not blob-shaped
    await writeFile(join(blobs.dir, 'README'), 'not a blob');
    await mkdir(join(blobs.dir, 'zz'), { recursive: true });
    await writeFile(join(blobs.dir, 'zz', 'x'.repeat(62)), 'not in a hex shard');
    assert.equal(await blobs.gc(new Set([keepA, keepB])), 2);
    assert.ok(await blobs.has(keepA));
    assert.ok(await blobs.has(keepB));
    assert.equal(await blobs.has(dropC), false);
    assert.equal(await blobs.has(dropD), false);
    assert.ok(existsSync(join(blobs.dir, 'README')));
    assert.ok(existsSync(join(blobs.dir, 'zz', 'x'.repeat(62))));
    assert.equal(await blobs.gc(new Set([keepA, keepB])), 0);
    assert.equal(await fresh().gc(new Set()), 0, 'gc of a store that was never written');
  });

  it('gc removes stale temp files from a crashed put but not fresh ones', async () => {
    const blobs = fresh();
    const h = await blobs.put(Buffer.from('x'));
    const shard = join(blobs.dir, h.slice(0, 2));
    const stale = join(shard, '.tmp-deadbeef-1-aaaaaa');
    const recent = join(shard, '.tmp-deadbeef-1-bbbbbb');
    await writeFile(stale, 'partial');
    await writeFile(recent, 'partial');
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(stale, old, old);
    assert.equal(await blobs.gc(new Set([h])), 0);
    assert.equal(existsSync(stale), false);
    assert.equal(existsSync(recent), true);
  });

  it('gc with a grace period keeps recently put blobs, and a re-put refreshes them', async () => {
    const blobs = fresh({ gcGraceMs: 60_000 });
    const oldHash = await blobs.put(Buffer.from('old'));
    const newHash = await blobs.put(Buffer.from('new'));
    const refreshed = await blobs.put(Buffer.from('refreshed'));
    const past = new Date(Date.now() - 120_000);
    await utimes(blobs.path(oldHash), past, past);
    await utimes(blobs.path(refreshed), past, past);
    await blobs.put(Buffer.from('refreshed'));
    assert.equal(await blobs.gc(new Set()), 1);
    assert.equal(await blobs.has(oldHash), false);
    assert.ok(await blobs.has(newHash));
    assert.ok(await blobs.has(refreshed));
  });
});
