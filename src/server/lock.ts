// One server per data dir: a lock file holding the owner's pid, made with O_EXCL. A lock whose
// process is gone (a crash, a SIGKILL) is taken over; a live one stops the second server with a
// clear error instead of two servers writing one state.db and one set of clones.
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ZvError } from '../errors/registry.js';

export const LOCK_FILE = 'server.lock';

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(path: string): Promise<LockInfo | null> {
  try {
    const info = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
    return typeof info.pid === 'number' ? info : null;
  } catch {
    return null;
  }
}

export interface DataDirLock {
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${JSON.stringify(mine)}\n`, { flag: 'wx', mode: 0o600 });
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          const now = await readLock(path);
          if (now?.pid === mine.pid && now.startedAt === mine.startedAt) await unlink(path).catch(() => undefined);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ZvError('CONFIG_INVALID', `cannot write ${path}: ${(e as Error).message}`);
      }
    }
    const owner = await readLock(path);
    // Another host's lock (a data dir on a shared disk) cannot be checked: it is respected.
    if (owner && (owner.host !== mine.host || (owner.pid !== process.pid && alive(owner.pid)))) {
      throw new ZvError('DATA_DIR_LOCKED',
        `the data dir ${dataDir} is in use by another zerverless server (pid ${owner.pid} on ${owner.host}, since ${owner.startedAt}); ` +
        `stop it, or give this one another --data-dir (remove ${path} only if that server is really gone)`);
    }
    // Stale (its process is gone) or unreadable: take it over.
    await unlink(path).catch(() => undefined);
  }
  throw new ZvError('DATA_DIR_LOCKED', `cannot take the lock ${path}: another server keeps taking it`);
}
