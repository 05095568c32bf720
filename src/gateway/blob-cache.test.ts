// BlobCache over a real FsBlobStore: hits answer synchronously, a miss is read once however many
// ask at once, big files are not cached, the total stays under its bound (least recently used go).
// Also the Accept-Encoding parser of the static server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../store/blobs/fs.js';
import { BlobCache } from './blob-cache.js';
import { acceptedCodings } from './static.js';

describe('BlobCache', () => {
  let root: string;
  let blobs: FsBlobStore;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'zv-blob-cache-'));
    blobs = new FsBlobStore(join(root, 'blobs'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads a miss once for concurrent callers, then answers from memory even when the file is gone', async () => {
    const cache = new BlobCache(blobs, 1024, 4096);
    const hash = await blobs.put(Buffer.from('hello'));
    assert.equal(cache.peek(hash), undefined);
    const [a, b] = await Promise.all([cache.load(hash), cache.load(hash)]);
    assert.equal(a, b);
    assert.equal(a.toString(), 'hello');
    assert.deepEqual(cache.stats(), { hits: 0, misses: 1, entries: 1, bytes: 5 });
    await unlink(blobs.path(hash));
    assert.equal(cache.peek(hash)?.toString(), 'hello');
    assert.equal(cache.stats().hits, 1);
  });

  it('does not keep files over the entry limit and drops the least recently used past the total', async () => {
    const cache = new BlobCache(blobs, 1000, 2500);
    assert.equal(cache.fits(1000), true);
    assert.equal(cache.fits(1001), false);
    assert.equal(await cache.get(await blobs.put(Buffer.alloc(1001, 1)), 1001), null);
    const [h1, h2, h3] = await Promise.all([1, 2, 3].map((n) => blobs.put(Buffer.alloc(1000, n))));
    await cache.load(h1 as string);
    await cache.load(h2 as string);
    cache.peek(h1 as string); // h1 is now more recently used than h2
    await cache.load(h3 as string);
    assert.equal(cache.stats().entries, 2);
    assert.ok(cache.stats().bytes <= 2500);
    assert.ok(cache.peek(h1 as string));
    assert.equal(cache.peek(h2 as string), undefined);
    assert.ok(cache.peek(h3 as string));
  });

  it('a failed read is not cached and fails every caller', async () => {
    const cache = new BlobCache(blobs);
    const missing = 'a'.repeat(64);
    await assert.rejects(cache.load(missing));
    assert.equal(cache.peek(missing), undefined);
    assert.equal(cache.stats().entries, 0);
  });
});

describe('Accept-Encoding', () => {
  it('gives br, gzip and identity their q (RFC 9110 §12.5.3)', () => {
    assert.deepEqual(acceptedCodings(''), { br: 0, gzip: 0, identity: 1 });
    assert.deepEqual(acceptedCodings('gzip, deflate, br'), { br: 1, gzip: 1, identity: 1 });
    assert.deepEqual(acceptedCodings('br;q=0.5, GZIP;q=0.8'), { br: 0.5, gzip: 0.8, identity: 1 });
    assert.deepEqual(acceptedCodings('*;q=0.3'), { br: 0.3, gzip: 0.3, identity: 0.3 });
    assert.deepEqual(acceptedCodings('*;q=0, identity'), { br: 0, gzip: 0, identity: 1 });
    assert.deepEqual(acceptedCodings('identity;q=0'), { br: 0, gzip: 0, identity: 0 });
    assert.deepEqual(acceptedCodings('x-gzip ; q = 0.7 , br;level=5'), { br: 1, gzip: 0.7, identity: 1 });
    assert.deepEqual(acceptedCodings('br;q=5, gzip;q=oops'), { br: 1, gzip: 1, identity: 1 });
  });
});
