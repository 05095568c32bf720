// Tree reader tests against real temp directories with real symlinks: containment, missing files,
// static site walking and hashing, function hashes, findManifest/loadApp and validateTree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatDiagnostic } from '../../core/desired.js';
import type { Manifest } from '../../core/desired.js';
import { parseManifest } from '../../core/manifest/index.js';
import type { ManifestLocations } from '../../core/manifest/index.js';
import { isZvError } from '../../errors/registry.js';
import type { ZvError } from '../../errors/registry.js';
import { findManifest, loadApp, readDesiredState, validateTree } from './index.js';
import { FsSnapshot } from '../fs-snapshot.js';

const snap = (dir: string): FsSnapshot => new FsSnapshot(dir);

const sha = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');
const gitBlobId = (s: string): string => createHash('sha1').update(`blob ${Buffer.byteLength(s)}\0${s}`).digest('hex');

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'zv-tree-'));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function link(dir: string, rel: string, target: string): void {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  symlinkSync(target, join(dir, rel));
}

function parse(text: string): { manifest: Manifest; locations: ManifestLocations } {
  const r = parseManifest(text);
  if ('errors' in r) return assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  return r;
}

const M = (body: string): string => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
  namespace: myuser
spec:
${body}`;

const FULL = M(`  functions:
    - path: /api/hello
      runtime: lua
      code: |
        function handle(req) return "hi" end
    - path: /api/py
      runtime: python
      codeFile: handlers/hello.py
      env: { GREETING: hi }
    - path: /api/ts
      runtime: js
      codeFile: ./handlers/hello.ts
    - path: /api/docker
      runtime: docker
      dockerfile: services/api/Dockerfile
  static:
    dir: ./static
`);

const FILES = {
  'zerverless.yaml': FULL,
  'handlers/hello.py': 'def handle(req):\n    return "hi"\n',
  'handlers/hello.ts': 'export function handle(): string { return "hi"; }\n',
  'services/api/Dockerfile': 'FROM node:20\n',
  'services/api/server.js': 'listen()\n',
  'static/index.html': '<h1>hi</h1>',
  'static/css/site.css': 'body{}',
  'static/a/b/c/deep.txt': 'deep',
  'static/.env': 'SECRET=1',
  'static/.hidden/x.txt': 'x',
  'static/.well-known/security.txt': 'Contact: x',
  'shared/logo.svg': '<svg/>',
};

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<ZvError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isZvError(e), String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return e;
  }
  return assert.fail('expected a rejection');
}

test('reads code, hashes nested static files, skips dotfiles but .well-known, follows inner symlinks', async () => {
  const dir = tree(FILES);
  link(dir, 'static/logo.svg', '../shared/logo.svg');
  const { manifest, locations } = parse(FULL);
  const { state, staticFiles, docker } = await readDesiredState(snap(dir), '', manifest, { commit: 'c'.repeat(40), locations });
  assert.equal(state.commit, 'c'.repeat(40));
  assert.deepEqual(state.warnings, []);
  const [lua, py, ts, dk] = state.functions;
  assert.deepEqual([lua?.code, lua?.filename, lua?.lineOffset], ['function handle(req) return "hi" end\n', 'zerverless.yaml', 10]);
  assert.deepEqual([py?.code, py?.filename, py?.env], [FILES['handlers/hello.py'], 'handlers/hello.py', { GREETING: 'hi' }]);
  assert.deepEqual([ts?.language, ts?.filename], ['typescript', 'handlers/hello.ts']);
  assert.deepEqual([dk?.code, dk?.filename, dk?.port], ['FROM node:20\n', 'services/api/Dockerfile', undefined]);
  assert.equal(docker.length, 1);
  assert.equal(docker[0]?.context.endsWith(join('services', 'api')), true);
  for (const f of state.functions) assert.match(f.hash, /^[0-9a-f]{64}$/);
  assert.equal(new Set(state.functions.map((f) => f.hash)).size, 4);

  assert.equal(state.static?.dir, './static');
  assert.deepEqual(state.static?.files.map((f) => f.path), [
    '.well-known/security.txt', 'a/b/c/deep.txt', 'css/site.css', 'index.html', 'logo.svg',
  ]);
  const deep = state.static?.files.find((f) => f.path === 'a/b/c/deep.txt');
  assert.deepEqual(deep, { path: 'a/b/c/deep.txt', hash: sha('deep'), size: 4, oid: gitBlobId('deep') });
  const logo = staticFiles.find((f) => f.entry.path === 'logo.svg');
  assert.equal(logo?.entry.hash, sha('<svg/>'));
  assert.equal(logo?.source.path, 'shared/logo.svg');
});

test('function hash: stable across reads, changes with code, env, memory and docker context', async () => {
  const dir = tree(FILES);
  const read = async (text = FULL) => (await readDesiredState(snap(dir), '', parse(text).manifest, { commit: 'x' })).state.functions.map((f) => f.hash);
  const base = await read();
  assert.deepEqual(await read(), base);
  const changedEnv = await read(FULL.replace('GREETING: hi', 'GREETING: hello'));
  assert.notEqual(changedEnv[1], base[1]);
  assert.equal(changedEnv[0], base[0]);
  writeFileSync(join(dir, 'services/api/server.js'), 'listen(1)\n');
  const changedCtx = await read();
  assert.notEqual(changedCtx[3], base[3]);
  assert.equal(changedCtx[2], base[2]);
});

test('codeFile that is a symlink to /etc/passwd → PATH_ESCAPE with line:col', async () => {
  const text = M(`  functions:
    - path: /a
      runtime: python
      codeFile: handlers/evil.py
`);
  const dir = tree({ 'zerverless.yaml': text });
  link(dir, 'handlers/evil.py', '/etc/passwd');
  const { manifest, locations } = parse(text);
  await rejects(readDesiredState(snap(dir), '', manifest, { commit: 'x', locations }), 'PATH_ESCAPE',
    /^zerverless\.yaml:10:7: spec\.functions\[0\]\.codeFile: "handlers\/evil\.py" resolves outside the repository$/);
});

test('codeFile below a parent folder that is a symlink outside → PATH_ESCAPE', async () => {
  const outside = tree({ 'secret.py': 'x' });
  const text = M(`  functions:
    - { path: /a, runtime: python, codeFile: lib/secret.py }
`);
  const dir = tree({ 'zerverless.yaml': text });
  link(dir, 'lib', outside);
  const { manifest, locations } = parse(text);
  await rejects(readDesiredState(snap(dir), '', manifest, { commit: 'x', locations }), 'PATH_ESCAPE', /spec\.functions\[0\]\.codeFile: "lib\/secret\.py" resolves outside/);
});

test('static dir containing a symlink to /etc/passwd → PATH_ESCAPE naming the file', async () => {
  const text = M('  static:\n    dir: public\n');
  const dir = tree({ 'zerverless.yaml': text, 'public/index.html': 'x' });
  link(dir, 'public/sub/passwd', '/etc/passwd');
  const { manifest, locations } = parse(text);
  await rejects(readDesiredState(snap(dir), '', manifest, { commit: 'x', locations }), 'PATH_ESCAPE',
    /^zerverless\.yaml:8:5: spec\.static\.dir: static file "sub\/passwd" is a symlink that resolves outside the repository$/);
});

test('static dir that is itself a symlink outside → PATH_ESCAPE', async () => {
  const outside = tree({ 'index.html': 'x' });
  const text = M('  static:\n    dir: public\n');
  const dir = tree({ 'zerverless.yaml': text });
  link(dir, 'public', outside);
  const { manifest, locations } = parse(text);
  await rejects(readDesiredState(snap(dir), '', manifest, { commit: 'x', locations }), 'PATH_ESCAPE', /spec\.static\.dir: "public" resolves outside the repository/);
});

test('symlink loops and dangling links in the static dir are skipped with warnings', async () => {
  const text = M('  static:\n    dir: public\n');
  const dir = tree({ 'zerverless.yaml': text, 'public/index.html': 'x' });
  link(dir, 'public/loop', '.');
  link(dir, 'public/gone.txt', 'nowhere.txt');
  const { state } = await readDesiredState(snap(dir), '', parse(text).manifest, { commit: 'x' });
  assert.deepEqual(state.static?.files.map((f) => f.path), ['index.html']);
  assert.equal(state.warnings.length, 2);
  assert.match(state.warnings.join('\n'), /"gone\.txt" is a dangling symlink/);
  assert.match(state.warnings.join('\n'), /"loop" is a symlink loop/);
});

test('missing codeFile → CODE_FILE_MISSING; missing static dir → MANIFEST_INVALID; all problems listed', async () => {
  const text = M(`  functions:
    - path: /a
      runtime: python
      codeFile: handlers/missing.py
  static:
    dir: ./nope
`);
  const dir = tree({ 'zerverless.yaml': text });
  const { manifest, locations } = parse(text);
  const e = await rejects(readDesiredState(snap(dir), '', manifest, { commit: 'x', locations }), 'CODE_FILE_MISSING',
    /^zerverless\.yaml:10:7: spec\.functions\[0\]\.codeFile: "handlers\/missing\.py" does not exist in the repository$/m);
  assert.match(e.message, /^zerverless\.yaml:12:5: spec\.static\.dir: "\.\/nope" does not exist in the repository$/m);
  assert.equal((e.details?.diagnostics as unknown[]).length, 2);

  const onlyStatic = M('  static:\n    dir: ./nope\n');
  await rejects(readDesiredState(snap(dir), '', parse(onlyStatic).manifest, { commit: 'x', locations: parse(onlyStatic).locations }),
    'MANIFEST_INVALID', /^zerverless\.yaml:8:5: spec\.static\.dir: "\.\/nope" does not exist/);
});

test('findManifest: root, .yml, subpath, absent, escaping subpath and manifest', async () => {
  const outside = tree({ 'zerverless.yaml': FULL });
  const dir = tree({ 'zerverless.yaml': 'a', 'apps/web/zerverless.yml': 'b', 'empty/x': '' });
  const root = await findManifest(snap(dir));
  assert.equal(root?.relFile, 'zerverless.yaml');
  const sub = await findManifest(snap(dir), 'apps/web/');
  assert.equal(sub?.relFile, 'apps/web/zerverless.yml');
  assert.equal(sub?.appDir.endsWith(join('apps', 'web')), true);
  assert.equal(await findManifest(snap(dir), 'empty'), null);
  assert.equal(await findManifest(snap(dir), 'missing'), null);
  await rejects(findManifest(snap(dir), '../x'), 'PATH_ESCAPE', /leaves the repository/);
  link(dir, 'linked', outside);
  await rejects(findManifest(snap(dir), 'linked'), 'PATH_ESCAPE', /outside the repository/);
  link(dir, 'evil/zerverless.yaml', join(outside, 'zerverless.yaml'));
  await rejects(findManifest(snap(dir), 'evil'), 'PATH_ESCAPE', /evil\/zerverless\.yaml resolves outside/);
});

test('loadApp: subpath app, namespace check, parse errors as MANIFEST_INVALID', async () => {
  const dir = tree(Object.fromEntries(Object.entries(FILES).map(([k, v]) => [`app/${k}`, v])));
  const app = await loadApp(snap(dir), { commit: 'abc', path: 'app', namespace: 'myuser' });
  assert.equal(app?.manifestFile, 'app/zerverless.yaml');
  assert.equal(app?.state.functions[1]?.filename, 'app/handlers/hello.py');
  assert.equal(app?.state.functions[0]?.filename, 'app/zerverless.yaml');
  assert.equal(app?.state.static?.files.length, 4);
  assert.equal(await loadApp(snap(dir), { commit: 'abc' }), null);
  await rejects(loadApp(snap(dir), { commit: 'abc', path: 'app', namespace: 'other' }), 'NAMESPACE_MISMATCH',
    /^app\/zerverless\.yaml:5:3: metadata\.namespace: is "myuser" but the application is registered in namespace "other"$/);
  writeFileSync(join(dir, 'app/zerverless.yaml'), FULL.replace('runtime: lua', 'runtime: cobol'));
  await rejects(loadApp(snap(dir), { commit: 'abc', path: 'app' }), 'MANIFEST_INVALID', /^app\/zerverless\.yaml:9:7: spec\.functions\[0\]\.runtime: must be one of/);
});

test('validateTree: valid, invalid YAML, tree problems, nothing to deploy, apps folder only', async () => {
  assert.deepEqual(await validateTree(tree(FILES)), []);
  assert.deepEqual((await validateTree(tree({ 'zerverless.yaml': 'kind: [' }))).map(formatDiagnostic).length, 1);
  const text = M(`  functions:
    - { path: /a, runtime: python, codeFile: a.py }
    - { path: /b, runtime: lua, codeFile: evil.lua }
`);
  const dir = tree({ 'zerverless.yaml': text });
  link(dir, 'evil.lua', '/etc/passwd');
  assert.deepEqual((await validateTree(dir)).map(formatDiagnostic), [
    'zerverless.yaml:8:36: spec.functions[0].codeFile: "a.py" does not exist in the repository',
    'zerverless.yaml:9:33: spec.functions[1].codeFile: "evil.lua" resolves outside the repository',
  ]);
  assert.deepEqual((await validateTree(tree({ 'README.md': '' }))).map(formatDiagnostic), [
    'zerverless.yaml:1:1: not found, and there is no apps/ folder: nothing to deploy',
  ]);
  assert.deepEqual(await validateTree(tree({ 'apps/web/app.yaml': 'name: web\nversion: "1"\nsource: {type: npm}\n' })), []);
  assert.match(formatDiagnostic((await validateTree('/nonexistent/zv'))[0] ?? assert.fail()), /is not a folder/);
});

// ---- only changed paths cost anything --------------------------------------------------------

/** An FsSnapshot with git's folder ids that counts the folders listed and the files read. */
function counting(dir: string): FsSnapshot & { listed: string[]; reads: string[] } {
  const s = new FsSnapshot(dir, undefined, { gitIds: true }) as FsSnapshot & { listed: string[]; reads: string[] };
  s.listed = [];
  s.reads = [];
  const readdir = s.readdir.bind(s);
  const read = s.read.bind(s);
  s.readdir = (p) => (s.listed.push(p), readdir(p));
  s.read = (e, o) => (s.reads.push(e.path), read(e, o));
  return s;
}

test('static: unchanged files are not read, unchanged folders not listed, an unchanged site is the same list', async () => {
  const text = M('  static:\n    dir: public\n');
  const dir = tree({ 'zerverless.yaml': text, 'public/index.html': 'i', 'public/a/one.txt': '1', 'public/a/two.txt': '2', 'public/b/deep/x.txt': 'x' });
  const { manifest } = parse(text);
  const first = await readDesiredState(counting(dir), '', manifest, { commit: 'c1' });
  const site = first.state.static!;
  assert.deepEqual(first.staticFiles.map((f) => f.entry.path), ['a/one.txt', 'a/two.txt', 'b/deep/x.txt', 'index.html']);
  assert.ok(site.dirs && site.dirs[''] && site.dirs.a && site.dirs['b/deep']);
  assert.ok(site.files.every((f) => f.oid));
  assert.equal(new TextDecoder().decode(await first.staticFiles[0]!.read()), '1');

  // Nothing changed (a change outside the static dir): the deployed list itself, nothing read.
  writeFileSync(join(dir, 'README.md'), 'elsewhere');
  const same = counting(dir);
  const again = await readDesiredState(same, '', manifest, { commit: 'c2', previousStatic: site });
  assert.equal(again.state.static?.files, site.files);
  assert.deepEqual([again.staticFiles, same.reads.filter((p) => p.startsWith('public'))], [[], []]);

  // One file changed, one copied from an unchanged one: only the changed one is read; b/ is not listed.
  writeFileSync(join(dir, 'public/a/two.txt'), 'two');
  writeFileSync(join(dir, 'public/a/copy.txt'), '1');
  const one = counting(dir);
  const next = await readDesiredState(one, '', manifest, { commit: 'c3', previousStatic: site });
  assert.deepEqual(next.staticFiles.map((f) => f.entry.path), ['a/two.txt']);
  assert.deepEqual(one.reads.filter((p) => p.startsWith('public')), ['public/a/two.txt']);
  assert.equal(one.listed.some((p) => p.startsWith('public/b')), false);
  assert.deepEqual(next.state.static?.files.map((f) => [f.path, f.hash, f.size]), [
    ['a/copy.txt', sha('1'), 1], ['a/one.txt', sha('1'), 1], ['a/two.txt', sha('two'), 3], ['b/deep/x.txt', sha('x'), 1], ['index.html', sha('i'), 1],
  ]);
  // The same result as a full read.
  const full = await readDesiredState(snap(dir), '', manifest, { commit: 'c3' });
  assert.deepEqual(next.state.static?.files, full.state.static?.files);
});

test('static: a site with symlinks is walked in full each time (a link may point at what changed elsewhere)', async () => {
  const text = M('  static:\n    dir: public\n');
  const dir = tree({ 'zerverless.yaml': text, 'public/index.html': 'i', 'public/a/one.txt': '1', 'shared/logo.svg': '<svg/>' });
  link(dir, 'public/a/logo.svg', '../../shared/logo.svg');
  const { manifest } = parse(text);
  const first = await readDesiredState(counting(dir), '', manifest, { commit: 'c1' });
  assert.equal(first.state.static?.dirs, undefined);
  // public/ is unchanged (the link's text is the same), what it points at is not.
  writeFileSync(join(dir, 'shared/logo.svg'), '<svg v2/>');
  const s = counting(dir);
  const next = await readDesiredState(s, '', manifest, { commit: 'c2', previousStatic: first.state.static });
  assert.deepEqual(next.staticFiles.map((f) => f.entry.path), ['a/logo.svg']);
  assert.equal(next.state.static?.files.find((f) => f.path === 'a/logo.svg')?.hash, sha('<svg v2/>'));
  assert.deepEqual(s.reads.filter((p) => !p.startsWith('public/a/logo') && p !== 'zerverless.yaml'), ['shared/logo.svg']);
});
