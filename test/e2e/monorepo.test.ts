// Monorepos (PRODUCT.md §11) through the real server and its poll: two applications on one
// repository in folders a/ and b/; a commit touching only b/ syncs only b, and a records the commit
// as seen (status synced, `source.seenCommit`, no history entry, the same version serving); an
// explicit sync always runs. `paths` globs: an application syncs when a changed file matches one,
// or is its zerverless.yaml; other files of its folder do not count; bad globs are refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { cliFromSource as cli } from '../support/cli-src.js';

function manifest(name: string, path: string, body: string): string {
  return `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: ${name}
spec:
  functions:
    - path: ${path}
      runtime: lua
      code: |
        function handle(req) return "${body}" end
`;
}

const fileManifest = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: g
spec:
  functions:
    - path: /g
      runtime: lua
      codeFile: fn.lua
`;

const luaFile = (body: string): string => `function handle(req) return "${body}" end\n`;

type Syncs = { syncs: { trigger: string; commit: string | null }[] };

describe('monorepos', () => {
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    h = await startHarness({ pollIntervalMs: 300 });
    repo = await TestRepo.create({
      'a/zerverless.yaml': manifest('a', '/a', 'a1'),
      'b/zerverless.yaml': manifest('b', '/b', 'b1'),
      'g/zerverless.yaml': fileManifest,
      'g/fn.lua': luaFile('g1'),
      'lib/util.txt': 'u1',
    });
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('a commit touching only b/ syncs only b; a records it as seen', async () => {
    const a = await h.register('a', 'ma', repo.url, { path: 'a' });
    const b = await h.register('b', 'mb', repo.url, { path: 'b' });
    assert.equal(a.status, 'synced', JSON.stringify(a));
    assert.equal(b.status, 'synced', JSON.stringify(b));
    const c1 = a.source.commit as string;
    const aHistory = (await h.api<Syncs>('GET', '/a/syncs?namespace=ma')).body.syncs;

    const c2 = await repo.commit({ 'b/zerverless.yaml': manifest('b', '/b', 'b2') }, 'b only');
    await h.waitFor('b', (s) => s.source.commit === c2 && s.status === 'synced', 120_000, 'mb');
    assert.equal(await (await h.get('/mb/b')).text(), 'b2');
    const seen = await h.waitFor('a', (s) => s.source.seenCommit === c2, 120_000, 'ma');
    assert.equal(seen.source.commit, c1);
    assert.equal(seen.status, 'synced');
    assert.equal(await (await h.get('/ma/a')).text(), 'a1');
    const shown = await cli('apps', 'get', 'a', '--namespace', 'ma', '--server', h.url, '--token', h.token);
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(shown.stdout.includes(`seen:      ${c2} (changes nothing`), shown.stdout);
    assert.ok(shown.stdout.includes(`commit:    ${c1}`), shown.stdout);
    // Later polls keep it so, and write nothing in its history.
    await h.waitFor('b', (s) => s.status === 'synced', 120_000, 'mb');
    assert.deepEqual((await h.api<Syncs>('GET', '/a/syncs?namespace=ma')).body.syncs, aHistory);

    // A commit touching a/ syncs a (from the commit it served) and clears the seen commit.
    const c3 = await repo.commit({ 'a/zerverless.yaml': manifest('a', '/a', 'a3') }, 'a too');
    const a3 = await h.waitFor('a', (s) => s.source.commit === c3 && s.status === 'synced', 120_000, 'ma');
    assert.equal(a3.source.seenCommit, undefined);
    assert.equal(await (await h.get('/ma/a')).text(), 'a3');
    const syncs = (await h.api<Syncs>('GET', '/a/syncs?namespace=ma')).body.syncs;
    assert.deepEqual(syncs.slice(0, 1).map((s) => [s.trigger, s.commit]), [['poll', c3]]);
    assert.equal(syncs.length, aHistory.length + 1);

    // An explicit sync always runs, even when nothing of the application changed.
    const c4 = await repo.commit({ 'b/zerverless.yaml': manifest('b', '/b', 'b4') }, 'b again');
    await h.waitFor('a', (s) => s.source.seenCommit === c4, 120_000, 'ma');
    const explicit = await h.sync('a', 'ma');
    assert.equal(explicit.source.commit, c4);
    assert.equal(explicit.source.seenCommit, undefined);
    assert.equal((await h.api<Syncs>('GET', '/a/syncs?namespace=ma')).body.syncs[0]?.trigger, 'api');
  });

  it('paths globs: a matching change syncs, other files of the folder do not, zerverless.yaml always does', async () => {
    const g = await h.register('g', 'mg', repo.url, { path: 'g', paths: ['lib/**'] });
    assert.equal(g.status, 'synced', JSON.stringify(g));
    assert.deepEqual(g.source.paths, ['lib/**']);
    assert.equal(await (await h.get('/mg/g')).text(), 'g1');

    // Its own code file is outside the globs: seen, not synced.
    const c1 = await repo.commit({ 'g/fn.lua': luaFile('g2') }, 'g code');
    await h.waitFor('g', (s) => s.source.seenCommit === c1, 120_000, 'mg');
    assert.equal(await (await h.get('/mg/g')).text(), 'g1');

    // A file matching a glob syncs (and brings the code changed before).
    const c2 = await repo.commit({ 'lib/util.txt': 'u2' }, 'lib');
    await h.waitFor('g', (s) => s.source.commit === c2 && s.status === 'synced', 120_000, 'mg');
    assert.equal(await (await h.get('/mg/g')).text(), 'g2');

    // zerverless.yaml is always included.
    const c3 = await repo.commit({ 'g/zerverless.yaml': fileManifest.replace('path: /g', 'path: /g3') }, 'g manifest');
    await h.waitFor('g', (s) => s.source.commit === c3 && s.status === 'synced', 120_000, 'mg');
    assert.equal(await (await h.get('/mg/g3')).text(), 'g2');

    // PATCH replaces the list (here through the CLI); --no-paths removes it.
    const set = await cli('apps', 'set', 'g', '--namespace', 'mg', '--paths', 'lib/*.txt', '--paths', 'g/**', '--json', '--server', h.url, '--token', h.token);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual((JSON.parse(set.stdout) as { source: { paths?: string[] } }).source.paths, ['lib/*.txt', 'g/**']);
    const cleared = await cli('apps', 'set', 'g', '--namespace', 'mg', '--no-paths', '--json', '--server', h.url, '--token', h.token);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal((JSON.parse(cleared.stdout) as { source: { paths?: string[] } }).source.paths, undefined);
  });

  it('refuses bad globs', async () => {
    const tooMany = await h.api<{ error: { code: string; message: string } }>('POST', '/', { name: 'x', namespace: 'mx', source: { repoURL: repo.url, paths: Array.from({ length: 21 }, (_, i) => `d${i}/**`) } });
    assert.equal(tooMany.status, 400, JSON.stringify(tooMany.body));
    const escape = await h.api<{ error: { code: string; message: string } }>('POST', '/', { name: 'x', namespace: 'mx', source: { repoURL: repo.url, paths: ['../x/**'] } });
    assert.equal(escape.status, 400, JSON.stringify(escape.body));
    assert.match(escape.body.error.message, /paths\.0/);
  });
});

describe('monorepos through a webhook', () => {
  const SECRET = 'monorepo-webhook-secret-0123456789';
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    // No poll during the test (1 h): only the webhook starts syncs.
    h = await startHarness({ webhookSecret: SECRET });
    repo = await TestRepo.create({ 'a/zerverless.yaml': manifest('a', '/a', 'a1'), 'b/zerverless.yaml': manifest('b', '/b', 'b1') });
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('a push touching only b/ syncs b; a records the commit as seen', async () => {
    const a = await h.register('a', 'wa', repo.url, { path: 'a' });
    await h.register('b', 'wb', repo.url, { path: 'b' });
    const aHistory = (await h.api<Syncs>('GET', '/a/syncs?namespace=wa')).body.syncs;
    const c2 = await repo.commit({ 'b/zerverless.yaml': manifest('b', '/b', 'b2') }, 'b only');
    const res = await fetch(`${h.url}/hooks/generic`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` }, body: JSON.stringify({ repoURL: repo.url, branch: 'main' }),
    });
    assert.equal(res.status, 202, await res.text());
    await h.waitFor('b', (s) => s.source.commit === c2 && s.status === 'synced', 120_000, 'wb');
    const seen = await h.waitFor('a', (s) => s.source.seenCommit === c2, 120_000, 'wa');
    assert.equal(seen.source.commit, a.source.commit);
    assert.equal(await (await h.get('/wa/a')).text(), 'a1');
    assert.deepEqual((await h.api<Syncs>('GET', '/a/syncs?namespace=wa')).body.syncs, aHistory);
    const bHistory = (await h.api<Syncs>('GET', '/b/syncs?namespace=wb')).body.syncs;
    assert.equal(bHistory[0]?.trigger, 'webhook');
  });
});
