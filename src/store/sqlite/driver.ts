// Which better-sqlite3 the store uses. better-sqlite3 12 is the last line for Node 20 (13 needs
// Node 22 and crashes on 20), and 12 must not run on Node 24: built against Node 24.19+ headers, its
// statements derive from Node's ObjectWrap, whose destructor now removes an environment cleanup
// hook, so a statement that V8 collects outside a JS context aborts the process
// (`Assertion failed: (env) != nullptr` in RemoveEnvironmentCleanupHook). better-sqlite3 13 is
// Node-API (prebuilt, nothing to compile) and does not. package.json lists both as optional
// dependencies, `better-sqlite3` (12.x) and `better-sqlite3-node22` (an npm alias of 13.x, which
// npm skips on Node 20 by its `engines`); this loads the line that fits the running Node first,
// then the other. The API the store uses is the same in both (types: @types/better-sqlite3).
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

export type Sqlite = typeof BetterSqlite3;

/** The packages to try on this Node, the fitting line first. */
export function sqliteCandidates(nodeVersion: string = process.versions.node): string[] {
  const major = Number(nodeVersion.split('.')[0]);
  return major >= 22 ? ['better-sqlite3-node22', 'better-sqlite3'] : ['better-sqlite3', 'better-sqlite3-node22'];
}

let loaded: { mod: Sqlite; from: string } | null = null;

/** better-sqlite3 for this Node (loaded once); throws naming each package tried and why it did not load. */
export function sqlite(): Sqlite {
  if (loaded) return loaded.mod;
  const require = createRequire(import.meta.url);
  const why: string[] = [];
  for (const name of sqliteCandidates()) {
    try {
      require.resolve(`${name}/package.json`);
    } catch {
      why.push(`${name}: not installed`);
      continue;
    }
    try {
      loaded = { mod: require(name) as Sqlite, from: name };
      return loaded.mod;
    } catch (e) {
      why.push(`${name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
  }
  throw new Error(`no better-sqlite3 loads on Node ${process.versions.node} (${why.join('; ')}); ` +
    'npm installs better-sqlite3 12 on Node 20 and 13 (better-sqlite3-node22) on Node 22 and 24: ' +
    'run `npm install` (or `npm rebuild`) again with the Node that runs zerverless');
}

/** Which package and version was loaded, or null before the first load. */
export function sqliteLoaded(): { name: string; version: string } | null {
  if (!loaded) return null;
  const require = createRequire(import.meta.url);
  try {
    return { name: loaded.from, version: (require(`${loaded.from}/package.json`) as { version: string }).version };
  } catch {
    return { name: loaded.from, version: 'unknown' };
  }
}
