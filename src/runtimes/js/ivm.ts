// Which isolated-vm the JS runtime uses. isolated-vm 5 is the last line that runs on Node 20 and
// isolated-vm 6 needs Node 22 or later, so package.json lists both as optional dependencies:
// `isolated-vm` (5.x) and `isolated-vm-node22` (an npm alias of 6.x, which ships prebuilt binaries
// for Node 22 and 24). npm skips the one whose `engines` do not fit the running Node, and drops one
// whose native build fails; this loads the line that fits the running Node first, then the other.
// Both lines have the same API (the same isolated-vm.d.ts); the types come from whichever is
// installed (tsconfig.json `paths` maps `isolated-vm` to both, for types only: tsx applies that
// mapping at run time too, so the module is required here by its folder, not by its name).
import type IsolatedVM from 'isolated-vm';
import { nativeLine } from '../../native/lines.js';

export type IsolatedVm = typeof IsolatedVM;

const line = nativeLine<IsolatedVm>({
  what: 'isolated-vm', node20: 'isolated-vm', node22: 'isolated-vm-node22', by: 'folder',
  hint: 'npm installs isolated-vm 5 on Node 20 and isolated-vm 6 (isolated-vm-node22) on Node 22 and 24: ' +
    'run `npm install` (or `npm rebuild`) again with the Node that runs zerverless',
});

/** The packages to try on this Node, the fitting line first. */
export const isolatedVmCandidates = (nodeVersion?: string): string[] => line.candidates(nodeVersion);

/**
 * The isolated-vm module for this Node (loaded once, on first use, so that a missing or broken
 * build makes the js runtime unavailable instead of stopping the server). Throws an Error naming
 * each package tried and why it did not load.
 */
export const isolatedVm = (): IsolatedVm => line.load();

/** Which package and version was loaded (for logs), or null before the first load. */
export const isolatedVmLoaded = (): { name: string; version: string } | null => line.loaded();
