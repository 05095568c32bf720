// The old home of the last applied service specs: one small JSON file per application
// (`<data-dir>/services/<appId>/applied.json`). Since schema v5 they live in the Store; this module
// reads such a file so that a data dir made by an older zerverless is imported once (then the file
// is deleted). The server (at start) and the createGitOps facade (for its own data dir) call it.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceSpec } from '../../core/services/types.js';
import type { AppliedServices, Store } from '../../store/types.js';
import type { ServiceLogger } from './applier.js';

/** The file's content (the same shape as the Store's AppliedServices). */
export type AppliedState = AppliedServices;

const FORMAT = 1;

const byName = (a: ServiceSpec, b: ServiceSpec): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

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
  if (data === null || typeof data !== 'object' || data.format !== FORMAT || !Array.isArray(data.specs)) {
    throw new Error(`${path}: not a service state file (format ${String(data?.format)})`);
  }
  const specs = data.specs as ServiceSpec[];
  if (!specs.every((s) => s !== null && typeof s === 'object' && typeof s.name === 'string')) throw new Error(`${path}: a spec has no name`);
  return { commit: typeof data.commit === 'string' ? data.commit : null, specs: [...specs].sort(byName) };
}

/**
 * Moves an old `applied.json` into the Store. When the file exists and the Store has nothing for
 * its application (`has()` false), its content is saved, then the file is deleted; when the Store
 * already has something, the file is only deleted (the Store is newer). A file that cannot be read
 * as state is left in place and logged (the application then restores without services; the next
 * sync deploys them again). Returns whether something was imported. Errors of `save`, `has` or the
 * deletion are thrown.
 */
export async function importAppliedFile(
  path: string, save: (applied: AppliedServices) => Promise<void>, has: () => Promise<boolean>, log?: Pick<ServiceLogger, 'warn'>,
): Promise<boolean> {
  let state: AppliedState | null;
  try {
    state = await readAppliedState(path);
  } catch (e) {
    log?.warn({ path, err: e instanceof Error ? e.message : String(e) }, 'an old applied.json cannot be read; it is left in place and its services are not restored');
    return false;
  }
  if (state === null) return false;
  let imported = false;
  if (!(await has())) {
    await save(state);
    imported = true;
  }
  await rm(path, { force: true });
  return imported;
}

/** Where an older server kept an application's applied specs. */
export const appliedFilePath = (dataDir: string, appId: number): string => join(dataDir, 'services', String(appId), 'applied.json');

/**
 * At server start, before restore: imports every application's old `<data-dir>/services/<id>/applied.json`
 * (see importAppliedFile). A failure for one application is logged and does not stop the others.
 * Returns how many were imported.
 */
export async function importAppliedFiles(
  store: Pick<Store, 'listApps' | 'getAppliedServices' | 'saveAppliedServices'>, dataDir: string, log: Pick<ServiceLogger, 'warn' | 'info'>,
): Promise<number> {
  const { apps } = await store.listApps({ limit: Number.MAX_SAFE_INTEGER });
  let imported = 0;
  for (const app of apps) {
    const path = appliedFilePath(dataDir, app.id);
    try {
      const done = await importAppliedFile(path, (a) => store.saveAppliedServices(app.id, a), async () => (await store.getAppliedServices(app.id)) !== null, log);
      if (done) {
        imported++;
        log.info({ namespace: app.namespace, app: app.name, path }, 'imported the applied service specs of an older data dir into the store');
      }
    } catch (e) {
      log.warn({ namespace: app.namespace, app: app.name, path, err: e instanceof Error ? e.message : String(e) }, 'cannot import an old applied.json');
    }
  }
  return imported;
}
