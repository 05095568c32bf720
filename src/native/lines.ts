// Native modules that come in one line per Node version (isolated-vm 5/6, better-sqlite3 12/13):
// package.json lists both lines as optional dependencies (the newer as an npm alias); npm skips the
// one whose `engines` do not fit and drops one whose build fails. This loads the line that fits the
// running Node first, then the other, once, and says what it tried when none loads.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export interface NativeLines {
  /** What the module is, for messages (`isolated-vm`). */
  what: string;
  /** The package for Node 20 and the one for Node 22 and later. */
  node20: string;
  node22: string;
  /** How to require a package: by name, or by its folder (when a tsconfig `paths` entry shadows the name). */
  by?: 'name' | 'folder';
  /** The last sentence of the error when none loads. */
  hint: string;
}

export interface NativeLine<T> {
  load(): T;
  /** Which package and version was loaded, or null before the first load. */
  loaded(): { name: string; version: string } | null;
  /** The packages to try on `nodeVersion`, the fitting line first. */
  candidates(nodeVersion?: string): string[];
}

export function nativeLine<T>(spec: NativeLines): NativeLine<T> {
  const require = createRequire(import.meta.url);
  let loaded: { mod: T; from: string } | null = null;
  const candidates = (nodeVersion: string = process.versions.node): string[] =>
    Number(nodeVersion.split('.')[0]) >= 22 ? [spec.node22, spec.node20] : [spec.node20, spec.node22];
  return {
    candidates,
    load() {
      if (loaded) return loaded.mod;
      const why: string[] = [];
      for (const name of candidates()) {
        let dir: string;
        try {
          dir = dirname(require.resolve(`${name}/package.json`));
        } catch {
          why.push(`${name}: not installed`);
          continue;
        }
        try {
          loaded = { mod: require(spec.by === 'folder' ? dir : name) as T, from: name };
          return loaded.mod;
        } catch (e) {
          why.push(`${name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
        }
      }
      throw new Error(`no ${spec.what} loads on Node ${process.versions.node} (${why.join('; ')}); ${spec.hint}`);
    },
    loaded() {
      if (!loaded) return null;
      try {
        return { name: loaded.from, version: (require(`${loaded.from}/package.json`) as { version: string }).version };
      } catch {
        return { name: loaded.from, version: 'unknown' };
      }
    },
  };
}
