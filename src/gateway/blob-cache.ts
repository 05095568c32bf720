// An in-memory LRU of small static files, keyed by content hash. Blobs are immutable, so an entry
// can never be stale; it only saves the open/read/close and the stream of every request.
import { readFile } from 'node:fs/promises';
import type { BlobStore } from '../store/types.js';

export class BlobCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(
    private readonly blobs: BlobStore,
    private readonly maxEntryBytes = 256 * 1024,
    private readonly maxTotalBytes = 64 * 1024 * 1024,
  ) {}

  /** The file's bytes when it is small enough to cache (reading it on a miss), else null. */
  async get(hash: string, size: number): Promise<Buffer | null> {
    if (size > this.maxEntryBytes) return null;
    const hit = this.entries.get(hash);
    if (hit) {
      this.entries.delete(hash);
      this.entries.set(hash, hit); // most recently used last
      return hit;
    }
    const data = await readFile(this.blobs.path(hash));
    this.entries.set(hash, data);
    this.bytes += data.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxTotalBytes) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
    return data;
  }
}
