// The desired-state reader on a real git repository (GitSource artifact → TreeDesiredReader): a
// spec.source that differs from the registered repository or branch is a warning in the state
// (PRODUCT.md §3: the registration wins), never an error; spellings of the same repository are not.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRepo } from '../../test/support/repo.js';
import { GitSource } from './git/index.js';
import { TreeDesiredReader } from './desired-reader.js';
import { repoIdentity } from './tree/find.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup) await c();
});

const manifest = (source: string): string => [
  'apiVersion: zerverless.io/v1',
  'kind: Application',
  'metadata:',
  '  name: my-app',
  '  namespace: myuser',
  'spec:',
  source,
  '  functions:',
  '    - path: /hello',
  '      runtime: lua',
  '      code: |',
  '        function handle(req) return "hi" end',
  '',
].join('\n');

/** Commits a manifest with `source(repo.url)` as its spec.source lines and reads it as registered. */
async function readWith(source: (url: string) => string, registered: (repo: TestRepo) => { repoURL: string; branch: string }): Promise<string[]> {
  const repo = await TestRepo.create();
  await repo.commit({ 'zerverless.yaml': manifest(source(repo.url)) });
  const dataDir = await mkdtemp(join(tmpdir(), 'zv-reader-'));
  cleanup.push(() => repo.remove(), () => rm(dataDir, { recursive: true, force: true }));
  const reg = registered(repo);
  const src = new GitSource({ dataDir, allowFileRepos: true });
  const snap = await src.snapshot({ repoURL: repo.url, branch: 'main' });
  const read = await new TreeDesiredReader().read(snap, { path: '', namespace: 'myuser', commit: snap.revision, ...reg });
  await src.close();
  assert.deepEqual(read.state.functions.map((f) => f.path), ['/hello'], 'the sync goes on: the registered source is read');
  return read.state.warnings;
}

test('a spec.source repoURL or branch that differs from the registration is a warning naming both, at its line', async () => {
  const warnings = await readWith(
    () => '  source:\n    repoURL: https://github.com/user/other\n    branch: release',
    (repo) => ({ repoURL: repo.url, branch: 'main' }),
  );
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0] ?? '', /^zerverless\.yaml:8:5: spec\.source\.repoURL: is "https:\/\/github\.com\/user\/other" but the application is registered with "file:\/\/\/.+": the registered source is used$/);
  assert.equal(warnings[1], 'zerverless.yaml:9:5: spec.source.branch: is "release" but the application is registered with branch "main": the registered branch is used');
});

test('a spec.source naming the registered repository and branch (however spelled) warns nothing', async () => {
  const registered = (repo: TestRepo) => ({ repoURL: repo.url, branch: 'main' });
  assert.deepEqual(await readWith((url) => `  source:\n    repoURL: ${url}.git/\n    branch: refs/heads/main`, registered), []);
  assert.deepEqual(await readWith((url) => `  source:\n    repoURL: ${url}`, registered), []);
  assert.deepEqual(await readWith(() => '', registered), []);
});

test('repoIdentity: the same repository in its usual spellings; credentials are not part of it', () => {
  const same = ['https://github.com/User/Repo', 'https://github.com/User/Repo.git', 'https://GitHub.com/User/Repo/', 'ssh://git@github.com/User/Repo.git',
    'git@github.com:User/Repo.git', 'https://x-token:secret@github.com/User/Repo'];
  for (const u of same) assert.equal(repoIdentity(u), 'github.com/User/Repo', u);
  assert.notEqual(repoIdentity('https://github.com/User/Other'), repoIdentity('https://github.com/User/Repo'));
  assert.notEqual(repoIdentity('https://gitlab.com/User/Repo'), repoIdentity('https://github.com/User/Repo'));
  assert.equal(repoIdentity('file:///tmp/r/.git'), repoIdentity('/tmp/r'));
});
