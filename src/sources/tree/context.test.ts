// Docker functions in the tree reader, on real temp directories: `build` filled from the manifest,
// .dockerignore honoured by the context hash (ignored files change nothing; the Dockerfile and
// .dockerignore always count, a Dockerfile outside the context too), and the function hash moving
// with every input that changes the running container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatDiagnostic } from '../../core/desired.js';
import type { DesiredFunction } from '../../core/desired.js';
import { parseManifest } from '../../core/manifest/index.js';
import { hashContext, listContext, parseDockerignore, readDesiredState, sha256 } from './index.js';
import type { TreeReadResult } from './index.js';
import { FsSnapshot } from '../fs-snapshot.js';

const snap = (dir: string): FsSnapshot => new FsSnapshot(dir);

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'zv-ctx-'));
  for (const [rel, content] of Object.entries(files)) write(dir, rel, content);
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(dir: string, rel: string, content: string): void {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), content);
}

const manifest = (fn: string): string => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
spec:
  functions:
    - path: /api
      runtime: docker
${fn}`;

const DOCKER = `      dockerfile: ./svc/./Dockerfile
      context: svc/
      capabilities: [NET_BIND_SERVICE, CHOWN]
`;

async function read(dir: string, text: string): Promise<TreeReadResult> {
  const r = parseManifest(text);
  if ('errors' in r) return assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  return readDesiredState(snap(dir), '', r.manifest, { commit: 'c', locations: r.locations });
}

async function fn(dir: string, text: string): Promise<DesiredFunction> {
  return (await read(dir, text)).state.functions[0] ?? assert.fail('no function');
}

const SVC = {
  'svc/Dockerfile': 'FROM base\nCOPY . /app\n',
  'svc/server.sh': '#!/bin/sh\nserve\n',
  'svc/.dockerignore': '# build outputs\n*.log\nnode_modules\n!node_modules/keep.txt\ntmp/\nDockerfile\n.dockerignore\n',
  'svc/app.log': 'noise',
  'svc/node_modules/dep/index.js': 'x',
  'svc/node_modules/keep.txt': 'kept',
  'svc/tmp/scratch': 's',
};

test('a docker function carries build: normalised relative paths, context hash, sorted capabilities; docker[] has snapshot paths and writes the context out', async () => {
  const dir = tree({ ...SVC, 'zerverless.yaml': manifest(DOCKER) });
  const { state, docker } = await read(dir, manifest(DOCKER));
  const f = state.functions[0];
  assert.equal(f?.build?.dockerfile, 'svc/Dockerfile');
  assert.equal(f?.build?.context, 'svc');
  assert.deepEqual(f?.build?.capabilities, ['CHOWN', 'NET_BIND_SERVICE']);
  assert.match(f?.build?.contextHash ?? '', /^[0-9a-f]{64}$/);
  assert.deepEqual([f?.code, f?.filename, f?.port], [SVC['svc/Dockerfile'], 'svc/Dockerfile', undefined]);
  assert.equal(docker.length, 1);
  assert.equal(docker[0]?.path, '/api');
  assert.equal(docker[0]?.contextHash, f?.build?.contextHash);
  assert.equal(docker[0]?.context, 'svc');
  assert.equal(docker[0]?.dockerfile, 'svc/Dockerfile');
  // The entries the hash covers, handed to the runtime (which sends exactly these): .dockerignore
  // applied, the Dockerfile and .dockerignore kept (an ignored folder is not listed, an exception
  // inside it is: the runtime adds the folders holding what it sends).
  assert.deepEqual(docker[0]?.contextFiles, ['.dockerignore', 'Dockerfile', 'node_modules/keep.txt', 'server.sh']);
  // Written out of the snapshot for a build: exactly those entries, then removed.
  const out = await docker[0]!.materialise();
  assert.equal(out.dockerfilePath, join(out.contextDir, 'Dockerfile'));
  assert.equal(readFileSync(join(out.contextDir, 'node_modules/keep.txt'), 'utf8'), 'kept');
  assert.equal(existsSync(join(out.contextDir, 'app.log')), false);
  await out.dispose();
  assert.equal(existsSync(out.contextDir), false);

  // context defaults to the Dockerfile's folder; no capabilities → []
  const plain = await fn(dir, manifest('      dockerfile: svc/Dockerfile\n'));
  assert.deepEqual([plain.build?.context, plain.build?.capabilities], ['svc', []]);
  assert.equal(plain.build?.contextHash, f?.build?.contextHash);
});

test('listContext applies .dockerignore like Docker and keeps the Dockerfile and .dockerignore', async () => {
  const dir = tree(SVC);
  chmodSync(join(dir, 'svc/server.sh'), 0o755);
  symlinkSync('server.sh', join(dir, 'svc/link.sh'));
  mkdirSync(join(dir, 'svc/.git'));
  writeFileSync(join(dir, 'svc/.git/HEAD'), 'ref');
  const entries = await listContext(snap(dir), 'svc', { dockerfile: 'svc/Dockerfile' });
  assert.deepEqual(entries.map((e) => [e.path, e.kind]), [
    ['.dockerignore', 'file'], ['Dockerfile', 'file'], ['link.sh', 'link'], ['node_modules/keep.txt', 'file'], ['server.sh', 'exec'],
  ]);
  assert.deepEqual(parseDockerignore(' /a/./b/ \n#c\n\n! ./d\n../e\n'), [
    { text: 'a/b', exclusion: false }, { text: 'd', exclusion: true }, { text: '../e', exclusion: false },
  ]);
});

test('context hash: an ignored file changes nothing; a kept file, the .dockerignore or the Dockerfile changes it', async () => {
  const dir = tree({ ...SVC, 'zerverless.yaml': manifest(DOCKER) });
  const text = manifest(DOCKER);
  const base = await fn(dir, text);
  const same = async (rel: string, content: string): Promise<void> => {
    write(dir, rel, content);
    const now = await fn(dir, text);
    assert.equal(now.build?.contextHash, base.build?.contextHash, `${rel} is ignored`);
    assert.equal(now.hash, base.hash, `${rel} is ignored`);
  };
  await same('svc/app.log', 'other noise');
  await same('svc/new.log', 'new');
  await same('svc/node_modules/dep/index.js', 'y');
  await same('svc/tmp/more/deep', 'd');
  await same('outside.txt', 'not in the context');

  let prev = base;
  const differs = async (rel: string, content: string): Promise<void> => {
    write(dir, rel, content);
    const now = await fn(dir, text);
    assert.notEqual(now.build?.contextHash, prev.build?.contextHash, `${rel} counts`);
    assert.notEqual(now.hash, prev.hash, `${rel} counts`);
    prev = now;
  };
  await differs('svc/server.sh', '#!/bin/sh\nserve --fast\n');
  await differs('svc/node_modules/keep.txt', 'kept, changed');
  await differs('svc/new-dir/file', 'n');
  await differs('svc/Dockerfile', 'FROM base\nCOPY . /srv\n'); // listed in .dockerignore, still counts
  await differs('svc/.dockerignore', `${SVC['svc/.dockerignore']}# a comment\n`);
  await differs('svc/.dockerignore', 'tmp/\n'); // app.log and node_modules are back in
  chmodSync(join(dir, 'svc/server.sh'), 0o755);
  const exec = await fn(dir, text);
  assert.notEqual(exec.build?.contextHash, prev.build?.contextHash, 'the executable bit counts');
});

test('a Dockerfile outside the context counts by its content', async () => {
  const body = '      dockerfile: docker/api.Dockerfile\n      context: svc\n';
  const dir = tree({ 'docker/api.Dockerfile': 'FROM base\n', 'svc/index.js': 'x', 'docker/unrelated': 'u' });
  const a = await fn(dir, manifest(body));
  assert.deepEqual([a.build?.dockerfile, a.build?.context], ['docker/api.Dockerfile', 'svc']);
  write(dir, 'docker/unrelated', 'v');
  assert.equal((await fn(dir, manifest(body))).hash, a.hash);
  write(dir, 'docker/api.Dockerfile', 'FROM base\nEXPOSE 80\n');
  const b = await fn(dir, manifest(body));
  assert.notEqual(b.build?.contextHash, a.build?.contextHash);
  assert.notEqual(b.hash, a.hash);
  // hashContext without the Dockerfile is the context alone
  assert.equal(await hashContext(snap(dir), 'svc', sha256), await hashContext(snap(dir), 'svc', sha256));
  assert.notEqual(await hashContext(snap(dir), 'svc', sha256), b.build?.contextHash);
});

test('function hash moves with env, port, memory, timeout and capabilities, not with capability order', async () => {
  const dir = tree(SVC);
  const base = await fn(dir, manifest(DOCKER));
  const variants = [
    `${DOCKER}      env: { A: "1" }\n`,
    `${DOCKER}      port: 9000\n`,
    `${DOCKER}      memory: 256\n`,
    `${DOCKER}      timeout: 5s\n`,
    DOCKER.replace('[NET_BIND_SERVICE, CHOWN]', '[NET_BIND_SERVICE]'),
    DOCKER.replace('[NET_BIND_SERVICE, CHOWN]', '[NET_BIND_SERVICE, CHOWN, NET_RAW]'),
  ];
  const hashes = new Set([base.hash]);
  for (const v of variants) hashes.add((await fn(dir, manifest(v))).hash);
  assert.equal(hashes.size, variants.length + 1);
  const reordered = await fn(dir, manifest(DOCKER.replace('[NET_BIND_SERVICE, CHOWN]', '[CHOWN, NET_BIND_SERVICE]')));
  assert.equal(reordered.hash, base.hash);
});

test('a symlinked .dockerignore is read only when it resolves inside the repository', async () => {
  const outside = tree({ rules: '*.log\n' });
  const dir = tree({ 'svc/Dockerfile': 'FROM base\n', 'svc/a.log': 'x', 'rules': '*.log\n' });
  symlinkSync(join(outside, 'rules'), join(dir, 'svc/.dockerignore'));
  const escaped = await listContext(snap(dir), 'svc', { root: '' });
  assert.deepEqual(escaped.map((e) => e.path), ['.dockerignore', 'Dockerfile', 'a.log']);
  rmSync(join(dir, 'svc/.dockerignore'));
  symlinkSync('../rules', join(dir, 'svc/.dockerignore'));
  const inside = await listContext(snap(dir), 'svc', { root: '' });
  assert.deepEqual(inside.map((e) => e.path), ['.dockerignore', 'Dockerfile']);
});
