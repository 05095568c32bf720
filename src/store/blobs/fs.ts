// Content-addressed blob store on local disk: a blob's key is the sha256 hex of its bytes and it
// lives at `<dir>/<first 2 hex>/<other 62 hex>`. Writes go to a temp file that is fsynced and then
// renamed into place, so a reader never sees a partial blob and concurrent puts of one content agree.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError } from '../../errors/registry.js';
import type { BlobStore } from '../types.js';

const HASH = /^[0-9a-f]{64}$/;
const SHARD = /^[0-9a-f]{2}$/;
const REST = /^[0-9a-f]{62}$/;
const TMP_PREFIX = '.tmp-';
/** Temp files older than this are leftovers of a crash; gc removes them. */
const STALE_TMP_MS = 60 * 60 * 1000;

export interface FsBlobStoreOptions {
  /**
   * gc keeps blobs written (or re-put) less than this many ms ago even when they are not in `keep`,
   * so a sync that has put its files but not yet committed does not lose them. Default 0.
   */
  gcGraceMs?: number;
}

export function isBlobHash(s: string): boolean {
  return HASH.test(s);
}

function checkHash(hash: string): void {
  if (typeof hash !== 'string' || !HASH.test(hash)) {
    const shown = typeof hash === 'string' ? JSON.stringify(hash.length > 80 ? `${hash.slice(0, 80)}…` : hash) : typeof hash;
    throw new ZvError('INTERNAL', `invalid blob hash ${shown}: expected 64 lowercase hex digits`);
  }
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

export class FsBlobStore implements BlobStore {
  readonly dir: string;
  private readonly gcGraceMs: number;

  constructor(dir: string, opts: FsBlobStoreOptions = {}) {
    this.dir = dir;
    this.gcGraceMs = Math.max(0, opts.gcGraceMs ?? 0);
  }

  static hash(data: Uint8Array): string {
    return createHash('sha256').update(data).digest('hex');
  }

  path(hash: string): string {
    checkHash(hash);
    return join(this.dir, hash.slice(0, 2), hash.slice(2));
  }

  async put(data: Uint8Array, opts: { replace?: boolean } = {}): Promise<string> {
    const hash = FsBlobStore.hash(data);
    const target = this.path(hash);
    if (!opts.replace && (await this.has(hash))) {
      // mark it as recently used so a gc with a grace period does not take it from a running sync
      const now = new Date();
      await utimes(target, now, now).catch(() => {});
      return hash;
    }
    const shard = join(this.dir, hash.slice(0, 2));
    await mkdir(shard, { recursive: true });
    const tmp = join(shard, `${TMP_PREFIX}${hash.slice(2, 10)}-${process.pid}-${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw e;
    }
    await fh.close();
    try {
      // atomic replace: a concurrent put of the same content renames identical bytes over it
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    return hash;
  }

  async has(hash: string): Promise<boolean> {
    const p = this.path(hash);
    try {
      return (await stat(p)).isFile();
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return false;
      throw e;
    }
  }

  async get(hash: string): Promise<Buffer> {
    const p = this.path(hash);
    try {
      return await readFile(p);
    } catch (e) {
      if (errno(e) === 'ENOENT') throw new ZvError('NOT_FOUND', `blob ${hash} not found`, { hash }, { cause: e });
      throw e;
    }
  }

  async gc(keep: Set<string>): Promise<number> {
    let shards: string[];
    try {
      shards = await readdir(this.dir);
    } catch (e) {
      if (errno(e) === 'ENOENT') return 0;
      throw e;
    }
    const now = Date.now();
    let removed = 0;
    for (const shard of shards) {
      if (!SHARD.test(shard)) continue;
      const shardDir = join(this.dir, shard);
      let names: string[];
      try {
        names = await readdir(shardDir);
      } catch (e) {
        if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') continue;
        throw e;
      }
      for (const name of names) {
        const p = join(shardDir, name);
        if (name.startsWith(TMP_PREFIX)) {
          const st = await stat(p).catch(() => null);
          if (st && now - st.mtimeMs > STALE_TMP_MS) await unlink(p).catch(() => {});
          continue;
        }
        if (!REST.test(name) || keep.has(shard + name)) continue;
        if (this.gcGraceMs > 0) {
          const st = await stat(p).catch(() => null);
          if (!st || now - st.mtimeMs < this.gcGraceMs) continue;
        }
        try {
          await unlink(p);
          removed++;
        } catch (e) {
          if (errno(e) !== 'ENOENT') throw e;
        }
      }
    }
    return removed;
  }
}
