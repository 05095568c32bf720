// Walks a static site folder: every file with its POSIX path, size and sha256, ready to be stored
// as blobs. Symlinks are followed but must resolve inside the repository (else PATH_ESCAPE naming
// the file); dangling links and link loops are skipped with a warning.
//
// Decision: `.git` and every other dotfile or dot-folder are skipped, except `.well-known` (served
// for ACME, security.txt, …), so `.env`, `.htpasswd` and editor folders never get published.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StaticFileEntry } from '../../core/desired.js';
import { isInside } from './resolve.js';

export type HashFn = (data: string | Uint8Array) => string;

export interface StaticFileSource {
  entry: StaticFileEntry;
  /** Real path of the file on disk (inside the tree), to copy into the blob store. */
  absPath: string;
}

export interface StaticWalkResult {
  files: StaticFileSource[];
  /** Files whose symlink leaves the repository: relative paths inside the static dir. */
  escapes: { path: string; target: string }[];
  warnings: string[];
}

export function isPublished(name: string): boolean {
  return name === '.well-known' || !name.startsWith('.');
}

export async function walkStatic(root: string, staticReal: string, hash: HashFn): Promise<StaticWalkResult> {
  const out: StaticWalkResult = { files: [], escapes: [], warnings: [] };

  async function addFile(real: string, rel: string): Promise<void> {
    const data = await readFile(real);
    out.files.push({ entry: { path: rel, hash: hash(data), size: data.byteLength }, absPath: real });
  }

  async function walk(dirReal: string, prefix: string, ancestors: Set<string>): Promise<void> {
    const entries = await readdir(dirReal, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (!isPublished(e.name)) continue;
      const abs = join(dirReal, e.name);
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isSymbolicLink()) {
        let target: string;
        try {
          target = await realpath(abs);
        } catch {
          out.warnings.push(`static file "${rel}" is a dangling symlink; skipped`);
          continue;
        }
        if (!isInside(root, target)) {
          out.escapes.push({ path: rel, target });
          continue;
        }
        const st = await stat(target);
        if (st.isDirectory()) {
          if (ancestors.has(target)) {
            out.warnings.push(`static folder "${rel}" is a symlink loop; skipped`);
            continue;
          }
          await walk(target, rel, new Set([...ancestors, target]));
        } else if (st.isFile()) {
          await addFile(target, rel);
        }
      } else if (e.isDirectory()) {
        await walk(abs, rel, new Set([...ancestors, abs]));
      } else if (e.isFile()) {
        await addFile(abs, rel);
      }
      // Sockets, FIFOs and devices are never published.
    }
  }

  await walk(staticReal, '', new Set([staticReal]));
  out.files.sort((a, b) => (a.entry.path < b.entry.path ? -1 : a.entry.path > b.entry.path ? 1 : 0));
  return out;
}

