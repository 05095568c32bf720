// Which better-sqlite3 the store uses. better-sqlite3 12 is the last line for Node 20 (13 needs
// Node 22 and crashes on 20), and 12 must not run on Node 24: built against Node 24.19+ headers, its
// statements derive from Node's ObjectWrap, whose destructor now removes an environment cleanup
// hook, so a statement that V8 collects outside a JS context aborts the process
// (`Assertion failed: (env) != nullptr` in RemoveEnvironmentCleanupHook). better-sqlite3 13 is
// Node-API (prebuilt, nothing to compile) and does not. package.json lists both as optional
// dependencies, `better-sqlite3` (12.x) and `better-sqlite3-node22` (an npm alias of 13.x, which
// npm skips on Node 20 by its `engines`); this loads the line that fits the running Node first,
// then the other. The API the store uses is the same in both (types: @types/better-sqlite3).
import type BetterSqlite3 from 'better-sqlite3';
import { nativeLine } from '../../native/lines.js';

export type Sqlite = typeof BetterSqlite3;

const line = nativeLine<Sqlite>({
  what: 'better-sqlite3', node20: 'better-sqlite3', node22: 'better-sqlite3-node22',
  hint: 'npm installs better-sqlite3 12 on Node 20 and 13 (better-sqlite3-node22) on Node 22 and 24: ' +
    'run `npm install` (or `npm rebuild`) again with the Node that runs zerverless',
});

/** The packages to try on this Node, the fitting line first. */
export const sqliteCandidates = (nodeVersion?: string): string[] => line.candidates(nodeVersion);

/** better-sqlite3 for this Node (loaded once); throws naming each package tried and why it did not load. */
export const sqlite = (): Sqlite => line.load();

/** Which package and version was loaded, or null before the first load. */
export const sqliteLoaded = (): { name: string; version: string } | null => line.loaded();
