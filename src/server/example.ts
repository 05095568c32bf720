// The bundled example application (`npm start` / `serve --example`): examples/hello copied into a
// git repository under the data dir and committed, so it is served exactly as a user's repo would be.
import { cp, mkdir, readdir, stat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

export const EXAMPLE = {
  name: 'example',
  namespace: 'demo',
  tryPaths: ['/api/hello', '/api/python?name=you', '/api/js', '/api/ts/echo'],
};

/** The examples/hello folder of the package (the same relative place from src/ and dist/). */
export function exampleSource(): string {
  return fileURLToPath(new URL('../../examples/hello', import.meta.url));
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const env = { ...process.env, GIT_AUTHOR_NAME: 'zerverless', GIT_AUTHOR_EMAIL: 'example@zerverless.local', GIT_COMMITTER_NAME: 'zerverless', GIT_COMMITTER_EMAIL: 'example@zerverless.local' };
  const { stdout } = await run('git', args, { cwd, env });
  return stdout;
}

/** Creates (or refreshes) the example repository and returns its path. */
export async function prepareExample(dataDir: string): Promise<string> {
  const repo = resolve(dataDir, 'example-repo');
  await mkdir(repo, { recursive: true });
  const fresh = !(await stat(join(repo, '.git')).catch(() => null));
  if (fresh) await git(repo, 'init', '-q', '-b', 'main');
  if (fresh || (await readdir(repo)).length <= 1) {
    await cp(exampleSource(), repo, { recursive: true });
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', 'example application');
  }
  return repo;
}
