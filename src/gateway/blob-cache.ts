// An in-memory LRU of static files, keyed by content hash. Blobs are immutable, so an entry can
// never be stale; it saves the open/read/close and the stream of every request.
//
// `peek` answers a hit synchronously (the gateway then answers without awaiting anything, which
// keeps the node adapter's fast path); `load` reads a miss, once however many requests ask for the
// same blob at the same time. Bounded twice: files over `maxEntryBytes` are never cached this way,
// and the least recently used entries go once the total passes `maxTotalBytes`.
//
// Large files (over `maxEntryBytes`, up to `large.maxEntryBytes`) have a tier of their own, with
// its own total, and enter it only once hot: `hotLarge` counts the requests for a blob and loads it
// at the `large.hotAfter`-th (until then, and for a one-off download, the gateway streams the file
// from disk). Serving a 10 MiB file from memory costs the server about a third of the CPU time of
// reading it from the page cache for every request (one copy into the socket instead of a read, a
// copy and a write per chunk), which under load is what decides how many a second it serves.
import { readFile } from 'node:fs/promises';
import type { BlobStore } from '../store/types.js';

export interface BlobCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}

export interface LargeTierOptions {
  /** Largest file kept in memory once hot (default 16 MiB). */
  maxEntryBytes?: number;
  /** Bound of the large tier's total (default 64 MiB; least recently used go first). */
  maxTotalBytes?: number;
  /** The request for a blob that makes it hot and loads it (default 2: the first repeat). */
  hotAfter?: number;
}

/** Blobs counted towards hotness at most (the oldest counts go first). */
const SEEN_LIMIT = 4096;

export class BlobCache {
  private readonly entries = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private readonly large = new Map<string, Buffer>();
  private readonly largeLoading = new Set<string>();
  private readonly seen = new Map<string, number>();
  private largeBytes = 0;
  private readonly largeMaxEntry: number;
  private readonly largeMaxTotal: number;
  private readonly hotAfter: number;

  constructor(
    private readonly blobs: BlobStore,
    readonly maxEntryBytes = 1024 * 1024,
    private readonly maxTotalBytes = 64 * 1024 * 1024,
    large: LargeTierOptions = {},
  ) {
    this.largeMaxTotal = large.maxTotalBytes ?? 64 * 1024 * 1024;
    this.largeMaxEntry = Math.min(large.maxEntryBytes ?? 16 * 1024 * 1024, this.largeMaxTotal);
    this.hotAfter = Math.max(1, Math.floor(large.hotAfter ?? 2));
  }

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

  /**
   * A large file's bytes when it is hot and in memory; else undefined (the caller streams it), and
   * this request counts towards making it hot: the `hotAfter`-th loads it in the background, for the
   * requests after. Never throws; a blob that cannot be read is simply not cached.
   */
  hotLarge(hash: string, size: number): Buffer | undefined {
    const hit = this.large.get(hash);
    if (hit) {
      this.hits++;
      this.large.delete(hash);
      this.large.set(hash, hit); // most recently used last
      return hit;
    }
    if (size > this.largeMaxEntry || this.largeLoading.has(hash)) return undefined;
    const n = (this.seen.get(hash) ?? 0) + 1;
    this.seen.delete(hash);
    if (n < this.hotAfter) {
      this.seen.set(hash, n);
      if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.keys().next().value as string);
      return undefined;
    }
    this.misses++;
    this.largeLoading.add(hash);
    readFile(this.blobs.path(hash)).then(
      (data) => {
        this.largeLoading.delete(hash);
        if (data.length === size) this.addLarge(hash, data);
      },
      () => this.largeLoading.delete(hash),
    );
    return undefined;
  }

  stats(): BlobCacheStats {
    return {
      hits: this.hits, misses: this.misses, entries: this.entries.size + this.large.size, bytes: this.bytes + this.largeBytes,
    };
  }

  private addLarge(hash: string, data: Buffer): void {
    if (this.large.has(hash)) return;
    this.large.set(hash, data);
    this.largeBytes += data.length;
    for (const [k, v] of this.large) {
      if (this.largeBytes <= this.largeMaxTotal) break;
      this.large.delete(k);
      this.largeBytes -= v.length;
    }
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
