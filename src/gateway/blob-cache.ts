// An in-memory LRU of small static files, keyed by content hash. Blobs are immutable, so an entry
// can never be stale; it saves the open/read/close and the stream of every request.
//
// `peek` answers a hit synchronously (the gateway then answers without awaiting anything, which
// keeps the node adapter's fast path); `load` reads a miss, once however many requests ask for the
// same blob at the same time. Bounded twice: files over `maxEntryBytes` are never cached (they are
// streamed), and the least recently used entries go once the total passes `maxTotalBytes`.
import { readFile } from 'node:fs/promises';
import type { BlobStore } from '../store/types.js';

export interface BlobCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}

export class BlobCache {
  private readonly entries = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly blobs: BlobStore,
    readonly maxEntryBytes = 1024 * 1024,
    private readonly maxTotalBytes = 64 * 1024 * 1024,
  ) {}

  /** Whether a file of this size is served from the cache (else it is streamed from disk). */
  fits(size: number): boolean {
    return size <= this.maxEntryBytes;
  }

  /** The cached bytes, or undefined on a miss. Marks the entry as recently used. */
  peek(hash: string): Buffer | undefined {
    const hit = this.entries.get(hash);
    if (hit) {
      this.hits++;
      this.entries.delete(hash);
      this.entries.set(hash, hit); // most recently used last
    }
    return hit;
  }

  /** Reads a blob into the cache (one read however many callers ask at once). */
  load(hash: string): Promise<Buffer> {
    const hit = this.peek(hash);
    if (hit) return Promise.resolve(hit);
    const pending = this.loading.get(hash);
    if (pending) return pending;
    this.misses++;
    const p = readFile(this.blobs.path(hash)).then(
      (data) => {
        this.loading.delete(hash);
        if (data.length <= this.maxEntryBytes) this.add(hash, data);
        return data;
      },
      (e: unknown) => {
        this.loading.delete(hash);
        throw e;
      },
    );
    this.loading.set(hash, p);
    return p;
  }

  /** The file's bytes when it is small enough to cache (reading it on a miss), else null. */
  async get(hash: string, size: number): Promise<Buffer | null> {
    return this.fits(size) ? this.load(hash) : null;
  }

  stats(): BlobCacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.entries.size, bytes: this.bytes };
  }

  private add(hash: string, data: Buffer): void {
    if (this.entries.has(hash)) return;
    this.entries.set(hash, data);
    this.bytes += data.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxTotalBytes) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }
}
