// The on-disk layout of the Node service runtime, under `<dataDir>/services[/<namespace>]/<name>/`:
//   <version>-<hash>/        the fetched, installed and built app (never changed once ready)
//   <version>-<hash>.json    written when that folder is ready: its presence means "reuse me"
//   .tmp-*                   a fetch under way (or left by a crash; removed on the next prepare)
//   pids.json                process groups this runtime started there (to stop leftovers after a restart)
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { renameSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import type { ServiceSpec } from '../../core/services/types.js';
import { traced } from '../../telemetry/events.js';
import { groupMembers, processCwd, stopGroup } from './exec.js';
import { fetchSource, versionFolder } from './fetch.js';
import type { FetchOptions } from './fetch.js';
import { installAndBuild } from './install.js';
import type { InstallOptions } from './install.js';

export interface PrepareOptions {
  namespace: string | undefined;
  /** The application of the service, added to the build events. */
  application?: string | undefined;
  fetch: FetchOptions;
  install: InstallOptions;
}

const readyMarker = (folder: string): string => `${folder}.json`;

/**
 * The ready version folder of `spec` in `serviceDir`: reused when an earlier prepare finished it,
 * otherwise fetched, installed and built (between `zerverless:build:start` and `:stop`).
 */
export async function prepareVersion(serviceDir: string, spec: ServiceSpec, o: PrepareOptions): Promise<{ dir: string; reused: boolean }> {
  const name = versionFolder(spec);
  const dir = join(serviceDir, name);
  const marker = await readFile(readyMarker(dir), 'utf8').catch(() => null);
  if (marker !== null) {
    o.fetch.log.add('system', `${spec.version}: reusing the prepared folder ${name}`);
    return { dir, reused: true };
  }
  await mkdir(serviceDir, { recursive: true });
  for (const e of await readdir(serviceDir)) if (e.startsWith('.tmp-')) await rm(join(serviceDir, e), { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
  const work = join(serviceDir, `.tmp-${name}-${randomBytes(4).toString('hex')}`);
  await mkdir(work);
  const meta = { app: spec.name, namespace: o.namespace, ...(o.application ? { application: o.application } : {}), version: spec.version, source: spec.source.type };
  try {
    await traced('build', meta, async () => {
      const root = await fetchSource(spec, work, o.fetch);
      // Installed in its final place: some packages record absolute paths.
      await rename(root, dir);
      await installAndBuild(dir, o.install);
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await writeFile(readyMarker(dir), JSON.stringify({ version: spec.version, source: spec.source, preparedAt: new Date().toISOString() }) + '\n');
  o.fetch.log.add('system', `${spec.version}: prepared ${name}`);
  return { dir, reused: false };
}

/** Removes every version folder (and marker, and leftover fetch) of `serviceDir` but those in `keep`. */
export async function pruneVersions(serviceDir: string, keep: string[]): Promise<void> {
  const kept = new Set(keep.flatMap((d) => [d, readyMarker(d)]));
  const entries = await readdir(serviceDir).catch(() => [] as string[]);
  for (const e of entries) {
    const p = join(serviceDir, e);
    if (e === 'pids.json' || kept.has(p)) continue;
    await rm(p, { recursive: true, force: true });
  }
}

export interface PidRecord {
  pgid: number;
  version: string;
  port: number;
}

/** Records the live process groups of a service (synchronously, so records never race each other). */
export function writePids(serviceDir: string, pids: PidRecord[]): void {
  try {
    const file = join(serviceDir, 'pids.json');
    writeFileSync(`${file}.tmp`, JSON.stringify({ pids }) + '\n');
    renameSync(`${file}.tmp`, file);
  } catch { /* the folder is gone (removed) */ }
}

/**
 * Stops process groups recorded in `pids.json` by an earlier runtime (a server that died without
 * stopping its services: they run in their own groups and outlive it). A group is stopped only if a
 * member still works inside `serviceDir`, so a recycled pid is never signalled.
 */
export async function stopLeftovers(serviceDir: string, graceMs: number): Promise<PidRecord[]> {
  let recs: PidRecord[] = [];
  try {
    recs = (JSON.parse(await readFile(join(serviceDir, 'pids.json'), 'utf8')) as { pids?: PidRecord[] }).pids ?? [];
  } catch {
    return [];
  }
  const stopped: PidRecord[] = [];
  for (const r of recs) {
    if (!Number.isInteger(r.pgid) || r.pgid <= 1) continue;
    const members = await groupMembers(r.pgid);
    const cwds = await Promise.all(members.map((pid) => processCwd(pid)));
    if (!cwds.some((c) => c !== null && (c + sep).startsWith(serviceDir + sep))) continue;
    await stopGroup(r.pgid, graceMs);
    stopped.push(r);
  }
  writePids(serviceDir, []);
  return stopped;
}

/** Names of the service folders under `root`. */
export async function serviceNames(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
}
