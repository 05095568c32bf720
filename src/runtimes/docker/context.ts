// The build context as a tar stream for the Engine API, filtered the way the Docker CLI filters it:
// `.dockerignore` at the context root (matched by @balena/dockerignore, a port of Docker's matcher),
// an ignored folder walked only when an exception pattern starts with it, `.dockerignore` and the
// Dockerfile always sent. These are the rules src/sources/tree/context.ts hashes by (`.git` folders
// are never sent, nor sockets, FIFOs or devices), so the image matches its content tag.
// A Dockerfile outside the context folder is added under a generated name, as the CLI does.
import dockerignore from '@balena/dockerignore';
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-fs';

export interface PackedContext {
  stream: Readable;
  /** The Dockerfile's path inside the tar, for the build's `dockerfile` option. */
  dockerfile: string;
}

const toPosix = (p: string): string => (sep === '/' ? p : p.split(sep).join('/'));

/** Patterns of a .dockerignore (comments and blank lines dropped; the matcher cleans paths). */
function patternsOf(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

async function readIgnore(contextDir: string): Promise<string[]> {
  try {
    return patternsOf(await readFile(resolve(contextDir, '.dockerignore'), 'utf8'));
  } catch {
    return [];
  }
}

/** Which paths (POSIX, relative to the context) a build leaves out. */
export async function contextFilter(contextDir: string, keep: string[] = []): Promise<(rel: string, isDir: boolean) => boolean> {
  const lines = await readIgnore(contextDir);
  for (const k of ['.dockerignore', ...keep]) lines.push(`!${k}`);
  const ig = dockerignore.default({ ignorecase: false }).add(lines);
  const exceptions = lines.filter((l) => l.startsWith('!')).map((l) => `${l.slice(1).trim().replace(/^\/+/, '')}/`);
  const mayHoldExceptions = (rel: string): boolean => exceptions.some((e) => e.startsWith(`${rel}/`));
  return (rel, isDir) => {
    if (rel === '') return false;
    if (rel === '.git' || rel.endsWith('/.git')) return true;
    if (!ig.ignores(rel)) return false;
    return !(isDir && mayHoldExceptions(rel));
  };
}

export async function packContext(contextDir: string, dockerfilePath: string): Promise<PackedContext> {
  const ctx = resolve(contextDir);
  const df = resolve(dockerfilePath);
  const rel = relative(ctx, df);
  const inside = rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
  const dockerfile = inside ? toPosix(rel) : `.dockerfile.${randomBytes(10).toString('hex')}`;
  const outside = inside ? undefined : await readFile(df);
  const ignored = await contextFilter(ctx, inside ? [dockerfile] : []);
  const stream = tar.pack(ctx, {
    ignore: (name) => {
      let st;
      try {
        st = lstatSync(name);
      } catch {
        return true;
      }
      if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) return true;
      return ignored(toPosix(relative(ctx, name)), st.isDirectory());
    },
    ...(outside === undefined
      ? {}
      : {
          finalize: false,
          finish: (pack) => {
            pack.entry({ name: dockerfile, mode: 0o644 }, outside);
            pack.finalize();
          },
        }),
  });
  return { stream: stream as unknown as Readable, dockerfile };
}
