// The first admin token (PRODUCT.md §9): given by the operator (ZV_ADMIN_TOKEN or
// --admin-token-file), or made on the first start without one and written to
// <data-dir>/admin-token (0600) so that the CLI on the same host finds it.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError } from '../errors/registry.js';
import { newTokenSecret, type TokenService } from './tokens.js';
import { writePrivateFile } from '../secrets/files.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

export interface AdminTokenSource {
  /** ZV_ADMIN_TOKEN (never a flag: a flag would show the token in `ps`). */
  token: string | null;
  /** --admin-token-file */
  file: string | null;
}

export interface AdminTokenOutcome {
  /** Where the admin token can be read, or null when it came from the environment. */
  file: string | null;
  /** The token when it was made by this start (to print once), else null. */
  created: string | null;
  /** Where it came from, for the banner. */
  from: 'environment' | 'file' | 'data-dir' | 'store';
}

async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ZvError('CONFIG_INVALID', `admin-token-file: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return text.trim();
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function ensureAdminToken(tokens: TokenService, dataDir: string, src: AdminTokenSource): Promise<AdminTokenOutcome> {
  if (src.token !== null) {
    await tokens.putBootstrap(src.token);
    return { file: null, created: null, from: 'environment' };
  }
  if (src.file !== null) {
    await tokens.putBootstrap(await readTokenFile(src.file));
    return { file: src.file, created: null, from: 'file' };
  }
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  if (await tokens.hasAdmin()) return { file: (await exists(file)) ? file : null, created: null, from: 'store' };
  // No admin token yet (a new data dir, or one from before access control): make one.
  const token = newTokenSecret();
  await tokens.putBootstrap(token);
  await writePrivateFile(file, `${token}\n`);
  return { file, created: token, from: 'data-dir' };
}
