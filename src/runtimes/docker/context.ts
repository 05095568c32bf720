// The build context as a tar stream for the Engine API: exactly the entries src/sources/tree/context.ts
// lists and hashes (`.dockerignore` applied as the Docker CLI applies it, `.git`, sockets, FIFOs and
// devices never sent), so the image always matches its content tag.
// A Dockerfile outside the context folder is added under a generated name, as the CLI does.
import { randomBytes } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { isAbsolute, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-fs';
// eslint-disable-next-line no-restricted-imports -- removed by the context list handed through FunctionSource (issue 9, item 5: in progress)
import { listContext } from '../../sources/tree/context.js';

export interface PackedContext {
  stream: Readable;
  /** The Dockerfile's path inside the tar, for the build's `dockerfile` option. */
  dockerfile: string;
}

const toPosix = (p: string): string => (sep === '/' ? p : p.split(sep).join('/'));

export async function packContext(contextDir: string, dockerfilePath: string): Promise<PackedContext> {
  const ctx = await realpath(contextDir);
  const df = await realpath(dockerfilePath);
  const rel = relative(ctx, df);
  const inside = rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
  const dockerfile = inside ? toPosix(rel) : `.dockerfile.${randomBytes(10).toString('hex')}`;
  const outside = inside ? undefined : await readFile(df);
  // Exactly the entries the content tag was hashed from (src/sources/tree/context.ts), plus the
  // folders holding them; nothing outside the context is read, and special files are never sent.
  const allowed = new Set<string>();
  for (const e of await listContext(ctx, { dockerfile: df })) {
    allowed.add(e.path);
    for (let i = e.path.lastIndexOf('/'); i > 0; i = e.path.lastIndexOf('/', i - 1)) allowed.add(e.path.slice(0, i));
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
