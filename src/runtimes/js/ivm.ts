// Which isolated-vm the JS runtime uses. isolated-vm 5 is the last line that runs on Node 20 and
// isolated-vm 6 needs Node 22 or later, so package.json lists both as optional dependencies:
// `isolated-vm` (5.x) and `isolated-vm-node22` (an npm alias of 6.x, which ships prebuilt binaries
// for Node 22 and 24). npm skips the one whose `engines` do not fit the running Node, and drops one
// whose native build fails; this loads the line that fits the running Node first, then the other.
// Both lines have the same API (the same isolated-vm.d.ts); the types come from whichever is
// installed (tsconfig.json `paths` maps `isolated-vm` to both, for types only: tsx applies that
// mapping at run time too, so the module is required here by its folder, not by its name).
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type IsolatedVM from 'isolated-vm';

export type IsolatedVm = typeof IsolatedVM;

/** The packages to try on this Node, the fitting line first. */
export function isolatedVmCandidates(nodeVersion: string = process.versions.node): string[] {
  const major = Number(nodeVersion.split('.')[0]);
  return major >= 22 ? ['isolated-vm-node22', 'isolated-vm'] : ['isolated-vm', 'isolated-vm-node22'];
}

let loaded: { ivm: IsolatedVm; from: string } | null = null;

/**
 * The isolated-vm module for this Node (loaded once, on first use, so that a missing or broken
 * build makes the js runtime unavailable instead of stopping the server). Throws an Error naming
 * each package tried and why it did not load.
 */
export function isolatedVm(): IsolatedVm {
  if (loaded) return loaded.ivm;
  const require = createRequire(import.meta.url);
  const why: string[] = [];
  for (const name of isolatedVmCandidates()) {
    let dir: string;
    try {
      dir = dirname(require.resolve(`${name}/package.json`));
    } catch {
      why.push(`${name}: not installed`);
      continue;
    }
    try {
      loaded = { ivm: require(dir) as IsolatedVm, from: name };
      return loaded.ivm;
    } catch (e) {
      const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
      why.push(`${name}: ${msg}`);
    }
  }
  throw new Error(`no isolated-vm loads on Node ${process.versions.node} (${why.join('; ')}); ` +
    'npm installs isolated-vm 5 on Node 20 and isolated-vm 6 (isolated-vm-node22) on Node 22 and 24: ' +
    'run `npm install` (or `npm rebuild`) again with the Node that runs zerverless');
}

/** Which package and version was loaded (for logs), or null before the first load. */
export function isolatedVmLoaded(): { name: string; version: string } | null {
  if (!loaded) return null;
  const require = createRequire(import.meta.url);
  try {
    return { name: loaded.from, version: (require(`${loaded.from}/package.json`) as { version: string }).version };
  } catch {
    return { name: loaded.from, version: 'unknown' };
  }
}
