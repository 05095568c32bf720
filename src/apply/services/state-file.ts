// The last applied service specs on disk: a small JSON file, written atomically (temp + rename) so a
// crash leaves either the old or the new content, never half of one. The next plan diffs against it.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ServiceSpec } from '../../core/services/types.js';

export interface AppliedState {
  /** The commit the specs were last reconciled from (null: never, or only manual operations). */
  commit: string | null;
  specs: ServiceSpec[];
}

const FORMAT = 1;

/** The saved state; null when there is no file. A file that cannot be read as state throws. */
export async function readAppliedState(path: string): Promise<AppliedState | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const data = JSON.parse(text) as { format?: unknown; commit?: unknown; specs?: unknown };
  if (data.format !== FORMAT || !Array.isArray(data.specs)) throw new Error(`${path}: not a service state file (format ${String(data.format)})`);
  return { commit: typeof data.commit === 'string' ? data.commit : null, specs: data.specs as ServiceSpec[] };
}

export async function writeAppliedState(path: string, state: AppliedState): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const specs = [...state.specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  try {
    await writeFile(tmp, JSON.stringify({ format: FORMAT, commit: state.commit, specs }, null, 2) + '\n');
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
