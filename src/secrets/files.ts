// Files that hold secrets on the server's disk (master.key, age.key, admin-token): never readable by
// others, written whole or not at all.
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { ZvError } from '../errors/registry.js';

/** Reads a secret file, first taking away any access of group and others (0600). */
export async function readPrivateFile(file: string): Promise<string> {
  try {
    if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new ZvError('CONFIG_INVALID', `cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Writes a secret file with mode 0600 through a temp file and a rename: never half-written, never world-readable. */
export async function writePrivateFile(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}
