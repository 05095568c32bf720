// The build context as a tar stream for the Engine API: exactly the entries the source reader listed
// and hashed (DockerSource.contextFiles: `.dockerignore` applied as the Docker CLI applies it,
// `.git`, sockets, FIFOs and devices left out), so the image always matches its content tag. The
// runtime does not list contexts itself: it sends what it is handed, and nothing else.
// A Dockerfile outside the context folder is added under a generated name, as the CLI does.
import { randomBytes } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { isAbsolute, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-fs';
import { ZvError } from '../../errors/registry.js';

export interface PackedContext {
  stream: Readable;
  /** The Dockerfile's path inside the tar, for the build's `dockerfile` option. */
  dockerfile: string;
}

const toPosix = (p: string): string => (sep === '/' ? p : p.split(sep).join('/'));

/**
 * Packs `files` (POSIX paths relative to `contextDir`: files, folders and links, as listed when the
 * context was hashed) and the Dockerfile. A path that is absolute or climbs out is refused.
 */
export async function packContext(contextDir: string, dockerfilePath: string, files: readonly string[]): Promise<PackedContext> {
  const ctx = await realpath(contextDir);
  const df = await realpath(dockerfilePath);
  const rel = relative(ctx, df);
  const inside = rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
  const dockerfile = inside ? toPosix(rel) : `.dockerfile.${randomBytes(10).toString('hex')}`;
  const outside = inside ? undefined : await readFile(df);
  // Exactly the entries the content tag was hashed from, plus the folders holding them; nothing
  // outside the context is read. tar-fs walks only into allowed folders.
  const allowed = new Set<string>();
  for (const path of files) {
    if (path === '' || path.startsWith('/') || path.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      throw new ZvError('INTERNAL', `docker build context: "${path}" is not a path inside the context`);
    }
    allowed.add(path);
    for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) allowed.add(path.slice(0, i));
  }
  const stream = tar.pack(ctx, {
    ignore: (name) => !allowed.has(toPosix(relative(ctx, name))),
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
