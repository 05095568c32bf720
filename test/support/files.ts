import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Every regular file under `dir`, recursively. A folder that goes away while this walks (the
 * server's garbage collection removing an old artifact) is skipped, not an error.
 */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
