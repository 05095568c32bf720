// BlobCache over a real FsBlobStore: hits answer synchronously, a miss is read once however many
// ask at once, big files are not cached, the total stays under its bound (least recently used go);
// large files enter their own tier once hot.
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

  it('keeps a large file in memory only once hot (the second request), within its own bound', async () => {
    const cache = new BlobCache(blobs, 100, 1000, { maxEntryBytes: 3000, maxTotalBytes: 5000, hotAfter: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((x) => blobs.put(Buffer.alloc(2000, x))));
    const huge = await blobs.put(Buffer.alloc(3001, 'h'));
    // Waits for a background load: until the file answers from memory (which marks it as used).
    const loaded = async (hash: string) => {
      const deadline = Date.now() + 60_000;
      while (!cache.hotLarge(hash, 2000)) {
        if (Date.now() > deadline) assert.fail(`the cache did not load ${hash}: ${JSON.stringify(cache.stats())}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    assert.equal(cache.hotLarge(a as string, 2000), undefined, 'the first request streams');
    assert.equal(cache.stats().misses, 0);
    assert.equal(cache.hotLarge(a as string, 2000), undefined, 'the second streams too, and loads the file');
    await loaded(a as string);
    assert.equal(cache.stats().entries, 1);
    assert.equal(cache.hotLarge(a as string, 2000)?.toString(), 'a'.repeat(2000));
    for (let i = 0; i < 3; i++) assert.equal(cache.hotLarge(huge as string, 3001), undefined, 'over the entry bound');
    cache.hotLarge(b as string, 2000);
    cache.hotLarge(b as string, 2000);
    await loaded(b as string);
    cache.hotLarge(a as string, 2000); // a is now more recently used than b
    cache.hotLarge(c as string, 2000);
    cache.hotLarge(c as string, 2000);
    await loaded(c as string);
    // c came in and the total passed 5000: b, the least recently used, went
    assert.deepEqual(cache.stats(), { hits: 5, misses: 3, entries: 2, bytes: 4000 });
    assert.ok(cache.hotLarge(a as string, 2000));
    assert.equal(cache.hotLarge(b as string, 2000), undefined);
    // the small tier is apart: its own bound, untouched
    assert.equal(cache.peek(b as string), undefined);
  });

  it('a large blob that cannot be read is not cached, and the request is streamed (which answers the error)', async () => {
    const cache = new BlobCache(blobs, 100, 1000, { hotAfter: 1 });
    const missing = 'b'.repeat(64);
    assert.equal(cache.hotLarge(missing, 5000), undefined);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(cache.hotLarge(missing, 5000), undefined);
    assert.equal(cache.stats().entries, 0);
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
