// The tree reader over real git snapshots (GitSource.snapshot: objects read through cat-file): the
// same state, diagnostics and skip rules as over a snapshot of the same folder, and the same
// incremental reads between two commits (git's tree ids: unchanged folders are not listed).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDiagnostic } from '../../core/desired.js';
import type { Manifest } from '../../core/desired.js';
import { parseManifest } from '../../core/manifest/index.js';
import type { ManifestLocations } from '../../core/manifest/index.js';
import { isZvError } from '../../errors/registry.js';
import { TestRepo } from '../../../test/support/repo.js';
import { FsSnapshot } from '../fs-snapshot.js';
import { GitSource } from '../git/index.js';
import type { Snapshot } from '../snapshot.js';
import { collectDesiredState, findServiceSpecs, loadApp, readDesiredState } from './index.js';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function source(): Promise<GitSource> {
  const dataDir = await mkdtemp(join(tmpdir(), 'zv-git-tree-'));
  const src = new GitSource({ dataDir, allowFileRepos: true });
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }), () => src.close());
  return src;
}

function parse(text: string): { manifest: Manifest; locations: ManifestLocations } {
  const r = parseManifest(text);
  if ('errors' in r) return assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  return r;
}

/** A snapshot that counts the folders it is asked to list and the files it is asked to read. */
function counting(snap: Snapshot): Snapshot & { listed: string[]; reads: string[] } {
  const listed: string[] = [];
  const reads: string[] = [];
  return {
    commit: snap.commit, listed, reads,
    lstat: (p) => snap.lstat(p),
    readdir: (p) => (listed.push(p), snap.readdir(p)),
    read: (e, o) => (reads.push(e.path), snap.read(e, o)),
  };
}

/** A Python function at /py whose code is `codeFile`. */
const PY = (codeFile = 'handlers/hello.py'): string => `    - path: /py\n      runtime: python\n      codeFile: ${codeFile}\n`;
const DOCKER = '    - path: /dock\n      runtime: docker\n      dockerfile: svc/Dockerfile\n';
const STATIC = '  static:\n    dir: public\n';

/** The manifest of application `app` with these functions (list items) and, if given, its static section. */
const manifestOf = (functions: string[], staticSection = ''): string => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
spec:
${functions.length ? `  functions:\n${functions.join('')}` : ''}${staticSection}`;

const MANIFEST = manifestOf([PY(), DOCKER], STATIC);

test('a git snapshot reads as the folder it was committed from: state, links, skips, context', async () => {
  const repo = await TestRepo.create();
  cleanup.push(() => repo.remove());
  await repo.commit({
    'zerverless.yaml': MANIFEST, 'handlers/hello.py': 'def handle(req):\n    return "hi"\n',
    'svc/Dockerfile': 'FROM base\n', 'svc/.dockerignore': '*.log\n', 'svc/a.log': 'x', 'svc/run.sh': 'run\n',
    'public/index.html': '<h1>hi</h1>', 'public/css/site.css': 'body{}', 'public/.env': 'SECRET=1',
    'public/.well-known/security.txt': 'Contact: x', 'shared/logo.svg': '<svg/>', 'apps/web/app.yaml': 'name: web\nversion: "1"\nsource: {type: npm}\n',
  });
  await repo.link('public/logo.svg', '../shared/logo.svg');
  await repo.link('public/gone.txt', 'nowhere.txt');
  await repo.link('public/loop', '.');
  await repo.commit({});
  const src = await source();
  const git = await src.snapshot({ repoURL: repo.url, branch: 'main' });
  const fs = new FsSnapshot(repo.dir, git.commit);
  const { manifest, locations } = parse(MANIFEST);
  const a = await readDesiredState(git, '', manifest, { commit: git.commit, locations });
  const b = await readDesiredState(fs, '', manifest, { commit: git.commit, locations });
  assert.deepEqual(a.state.functions, b.state.functions);
  assert.deepEqual(a.state.warnings, b.state.warnings);
  assert.equal(a.state.warnings.length, 2); // the dangling link and the loop
  assert.deepEqual(a.state.static?.files, b.state.static?.files); // file ids are git's blob ids in both
  assert.deepEqual(a.state.static?.files.map((f) => f.path), ['.well-known/security.txt', 'css/site.css', 'index.html', 'logo.svg']);
  assert.deepEqual(a.docker.map((d) => d.contextFiles), [['.dockerignore', 'Dockerfile', 'run.sh']]);
  assert.deepEqual((await findServiceSpecs(git)).specs.map((s) => s.name), ['web']);
  assert.equal((await loadApp(git, { commit: git.commit }))?.manifestFile, 'zerverless.yaml');
});

test('a git snapshot: escapes by absolute link, by .. and through a linked folder are PATH_ESCAPE', async () => {
  const text = manifestOf([PY('lib/evil.py')], STATIC);
  const repo = await TestRepo.create();
  cleanup.push(() => repo.remove());
  await repo.commit({ 'zerverless.yaml': text, 'public/index.html': 'x' });
  await repo.link('lib', '../outside');
  await repo.link('public/passwd', '/etc/passwd');
  await repo.commit({});
  const git = await (await source()).snapshot({ repoURL: repo.url, branch: 'main' });
  const { manifest, locations } = parse(text);
  const { problems } = await collectDesiredState(git, '', manifest, { commit: git.commit, locations });
  assert.deepEqual(problems.map((p) => [p.code, p.diagnostic.message]), [
    ['PATH_ESCAPE', '"lib/evil.py" resolves outside the repository'],
    ['PATH_ESCAPE', 'static file "passwd" is a symlink that resolves outside the repository'],
  ]);
  await assert.rejects(readDesiredState(git, '', manifest, { commit: git.commit, locations }), (e: unknown) => isZvError(e, 'PATH_ESCAPE'));
});

test('two commits: only the changed file is read, only the changed folders listed; an unmoved head reads no static byte', async () => {
  const files: Record<string, string> = { 'zerverless.yaml': manifestOf([], STATIC) };
  for (let d = 0; d < 5; d++) for (let f = 0; f < 20; f++) files[`public/d${d}/f${f}.html`] = `page ${d}/${f}\n`;
  const repo = await TestRepo.create(files);
  cleanup.push(() => repo.remove());
  const src = await source();
  const ref = { repoURL: repo.url, branch: 'main' };
  const { manifest } = parse(files['zerverless.yaml'] as string);
  const first = await readDesiredState(await src.snapshot(ref), '', manifest, { commit: 'c1' });
  const site = first.state.static!;
  assert.equal(first.staticFiles.length, 100);

  const same = counting(await src.snapshot(ref));
  const unmoved = await readDesiredState(same, '', manifest, { commit: 'c1', previousStatic: site });
  assert.equal(unmoved.state.static?.files, site.files);
  assert.deepEqual([same.listed, same.reads.filter((p) => p.startsWith('public'))], [[], []]);

  await repo.commit({ 'public/d3/f7.html': 'changed\n', 'public/d4/new.html': 'page 0/0\n' });
  const next = counting(await src.snapshot(ref));
  const changed = await readDesiredState(next, '', manifest, { commit: 'c2', previousStatic: site });
  assert.deepEqual(changed.staticFiles.map((f) => f.entry.path), ['d3/f7.html']);
  assert.deepEqual(next.reads.filter((p) => p.startsWith('public')), ['public/d3/f7.html']);
  assert.deepEqual(next.listed, ['public', 'public/d3', 'public/d4']);
  assert.equal(changed.state.static?.files.length, 101);
  const full = await readDesiredState(await src.snapshot(ref), '', manifest, { commit: 'c2' });
  assert.deepEqual(changed.state.static?.files, full.state.static?.files);
  assert.deepEqual(changed.state.static?.dirs, full.state.static?.dirs);
});

test('a docker context whose folder and Dockerfile are unchanged is not read again', async () => {
  const text = manifestOf([DOCKER]);
  const repo = await TestRepo.create({ 'zerverless.yaml': text, 'svc/Dockerfile': 'FROM base\n', 'svc/run.sh': 'run\n', 'svc/lib/x.js': 'x' });
  cleanup.push(() => repo.remove());
  const src = await source();
  const ref = { repoURL: repo.url, branch: 'main' };
  const { manifest } = parse(text);
  const first = await readDesiredState(await src.snapshot(ref), '', manifest, { commit: 'c1' });
  await repo.commit({ 'README.md': 'elsewhere' });
  const again = counting(await src.snapshot(ref));
  const second = await readDesiredState(again, '', manifest, { commit: 'c2' });
  assert.deepEqual(second.state.functions, first.state.functions);
  assert.deepEqual(second.docker.map((d) => d.contextFiles), [['Dockerfile', 'lib', 'lib/x.js', 'run.sh']]);
  assert.deepEqual(again.reads, ['svc/Dockerfile']); // its text is the function's code; the context is not read
  await repo.commit({ 'svc/lib/x.js': 'y' });
  const changed = counting(await src.snapshot(ref));
  const third = await readDesiredState(changed, '', manifest, { commit: 'c3' });
  assert.notEqual(third.state.functions[0]?.build?.contextHash, first.state.functions[0]?.build?.contextHash);
  assert.ok(changed.reads.includes('svc/lib/x.js'));
});
