// Plan preview (PRODUCT.md §11) through the real server: GET …/{name}/plan and `zerverless apps diff`
// list what a sync of a commit would do (functions created, changed with what, removed; static
// files counted with a sample; errors with file:line) and change nothing: the function answers the
// old version, the history and the kept blobs are the same after as before. A reader may preview;
// an unknown branch or commit is the source's error.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { cliFromSource as cli } from '../support/cli-src.js';

function manifest(fns: Record<string, string>, staticDir: string | null = 'public'): string {
  const list = Object.entries(fns).map(([path, body]) => `    - path: ${path}\n      runtime: lua\n      code: |\n        function handle(req) return "${body}" end\n`).join('');
  return `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: prev
spec:
  functions:
${list}${staticDir ? `  static:\n    dir: ${staticDir}\n` : ''}`;
}

/** Every file under `dir` (recursively), counted. */
async function countFiles(dir: string): Promise<number> {
  let n = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) n += e.isDirectory() ? await countFiles(join(dir, e.name)) : 1;
  return n;
}

interface Preview {
  revision: string;
  commit: { sha: string; message: string; author: string; time: string | null };
  fromCommit: string | null;
  functions: { create: string[]; update: { path: string; changes: string[] }[]; delete: string[] };
  static: { added: number; changed: number; removed: number; unchanged: number; sample: { added: string[]; changed: string[]; removed: string[] } };
  services: { create: string[]; update: unknown[]; delete: string[] };
  warnings: string[];
  errors: { file: string | null; line: number | null; code: string; message: string }[];
}

describe('plan preview', () => {
  let h: Harness;
  let repo: TestRepo;
  let first: string;

  before(async () => {
    h = await startHarness();
    repo = await TestRepo.create({
      'zerverless.yaml': manifest({ '/keep': 'keep', '/change': 'old', '/gone': 'gone' }),
      'public/index.html': '<h1>one</h1>',
      'public/same.css': 'body{}',
      'public/old.txt': 'old',
    });
    const st = await h.register('prev', 'prev', repo.url);
    assert.equal(st.status, 'synced', JSON.stringify(st));
    first = st.source.commit as string;
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('lists what a commit adds, changes and removes, and changes nothing', async () => {
    const extra: Record<string, string> = {};
    for (let i = 0; i < 25; i++) extra[`public/new/${String(i).padStart(2, '0')}.txt`] = `n${i}`;
    const next = await repo.commit({
      'zerverless.yaml': manifest({ '/keep': 'keep', '/change': 'new', '/added': 'added' }),
      'public/index.html': '<h1>two</h1>',
      'public/old.txt': null,
      ...extra,
    }, 'Preview me\n\nwith a body');
    const blobsBefore = await countFiles(join(h.dataDir, 'blobs'));
    const historyBefore = (await h.api<{ syncs: unknown[] }>('GET', '/prev/syncs?namespace=prev')).body.syncs;

    // The branch head by default.
    const r = await h.api<Preview>('GET', '/prev/plan?namespace=prev');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = r.body;
    assert.equal(p.revision, 'main');
    assert.equal(p.commit.sha, next);
    assert.equal(p.fromCommit, first);
    assert.match(p.commit.message, /^Preview me/);
    assert.match(p.commit.author, /<.+@.+>/);
    assert.deepEqual(p.errors, []);
    assert.deepEqual(p.functions.create, ['/added']);
    assert.deepEqual(p.functions.update, [{ path: '/change', changes: ['code'] }]);
    assert.deepEqual(p.functions.delete, ['/gone']);
    assert.equal(p.static.added, 25);
    assert.equal(p.static.changed, 1);
    assert.equal(p.static.removed, 1);
    assert.equal(p.static.unchanged, 1);
    assert.equal(p.static.sample.added.length, 20, 'the sample is bounded');
    assert.deepEqual(p.static.sample.changed, ['index.html']);
    assert.deepEqual(p.static.sample.removed, ['old.txt']);
    assert.deepEqual(p.services, { create: [], update: [], delete: [] });

    // The same commit asked by its SHA.
    const bySha = await h.api<Preview>('GET', `/prev/plan?namespace=prev&revision=${next}`);
    assert.equal(bySha.status, 200, JSON.stringify(bySha.body));
    assert.deepEqual(bySha.body.functions, p.functions);

    // Nothing changed: the old version serves, no sync was recorded, no blob was written.
    assert.equal(await (await h.get('/prev/change')).text(), 'old');
    assert.equal((await h.get('/prev/added')).status, 404);
    assert.equal(await (await h.get('/prev/gone')).text(), 'gone');
    const st = (await h.api('GET', '/prev?namespace=prev')).body;
    assert.equal(st.source.commit, first);
    assert.equal(st.status, 'synced');
    assert.deepEqual((await h.api<{ syncs: unknown[] }>('GET', '/prev/syncs?namespace=prev')).body.syncs, historyBefore);
    assert.equal(await countFiles(join(h.dataDir, 'blobs')), blobsBefore);

    // The CLI says the same.
    const d = await cli('apps', 'diff', 'prev', '--namespace', 'prev', '--server', h.url, '--token', h.token);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /\+ function \/added/);
    assert.match(d.stdout, /~ function \/change \(code\)/);
    assert.match(d.stdout, /- function \/gone/);
    assert.match(d.stdout, /static: \+25 ~1 -1 =1/);
    assert.match(d.stdout, /… and 5 more/);
    const dj = await cli('apps', 'diff', 'prev', '--namespace', 'prev', '--revision', next, '--json', '--server', h.url, '--token', h.token);
    assert.equal(dj.code, 0, dj.stderr);
    assert.equal((JSON.parse(dj.stdout) as Preview).commit.sha, next);

    // A sync then does what the preview said.
    const synced = await h.sync('prev', 'prev');
    assert.equal(synced.source.commit, next);
    assert.equal(await (await h.get('/prev/change')).text(), 'new');
    const after = await h.api<Preview>('GET', '/prev/plan?namespace=prev');
    assert.deepEqual(after.body.functions, { create: [], update: [], delete: [] });
    assert.equal(after.body.static.added + after.body.static.changed + after.body.static.removed, 0);
  });

  it('a broken manifest is an answer with errors at file:line, and changes nothing', async () => {
    const served = (await h.api('GET', '/prev?namespace=prev')).body.source.commit;
    const historyBefore = (await h.api<{ syncs: unknown[] }>('GET', '/prev/syncs?namespace=prev')).body.syncs;
    const bad = await repo.commit({ 'zerverless.yaml': `apiVersion: zerverless.io/v1\nkind: Application\nmetadata:\n  name: prev\nspec:\n  functions:\n    - path: /x\n      runtime: cobol\n      code: "x"\n` });
    const r = await h.api<Preview>('GET', `/prev/plan?namespace=prev&revision=${bad}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.errors.length >= 1, JSON.stringify(r.body));
    const e = r.body.errors[0];
    assert.equal(e?.file, 'zerverless.yaml');
    assert.equal(e?.line, 8, JSON.stringify(e));
    assert.equal(e?.code, 'MANIFEST_INVALID');
    const d = await cli('apps', 'diff', 'prev', '--namespace', 'prev', '--server', h.url, '--token', h.token);
    assert.equal(d.code, 1);
    assert.match(d.stdout, /error: zerverless\.yaml:8(:\d+)?: MANIFEST_INVALID: /);
    const st = (await h.api('GET', '/prev?namespace=prev')).body;
    assert.equal(st.source.commit, served);
    assert.equal(st.status, 'synced');
    assert.deepEqual((await h.api<{ syncs: unknown[] }>('GET', '/prev/syncs?namespace=prev')).body.syncs, historyBefore);
  });

  it('previews another branch; an unknown branch or commit is an error; a reader may preview', async () => {
    const unknownBranch = await h.api<{ error: { code: string } }>('GET', '/prev/plan?namespace=prev&revision=nope');
    assert.equal(unknownBranch.status, 422, JSON.stringify(unknownBranch.body));
    assert.equal(unknownBranch.body.error.code, 'GIT_REF_NOT_FOUND');
    const unknownCommit = await h.api<{ error: { code: string } }>('GET', `/prev/plan?namespace=prev&revision=${'0'.repeat(40)}`);
    assert.equal(unknownCommit.status, 404, JSON.stringify(unknownCommit.body));
    assert.equal(unknownCommit.body.error.code, 'REVISION_NOT_FOUND');
    const badName = await h.api<{ error: { code: string } }>('GET', '/prev/plan?namespace=prev&revision=a..b');
    assert.equal(badName.status, 400);

    repo.git('checkout', '-q', '-b', 'feature');
    await repo.commit({ 'zerverless.yaml': manifest({ '/feature': 'f' }, null) }, 'on a branch');
    repo.git('checkout', '-q', 'main');
    const f = await h.api<Preview>('GET', '/prev/plan?namespace=prev&revision=feature');
    assert.equal(f.status, 200, JSON.stringify(f.body));
    assert.equal(f.body.revision, 'feature');
    assert.deepEqual(f.body.functions.create, ['/feature']);

    const reader = await h.call<{ token: string }>('POST', '/tokens', { body: { name: 'peek', role: 'reader', namespaces: ['prev'] } });
    assert.equal(reader.status, 201, JSON.stringify(reader.body));
    const asReader = await h.call<Preview>('GET', '/gitops/applications/prev/plan?namespace=prev', { token: reader.body.token });
    assert.equal(asReader.status, 200, JSON.stringify(asReader.body));
    const anon = await h.call('GET', '/gitops/applications/prev/plan?namespace=prev', { token: null });
    assert.equal(anon.status, 401);
  });

  it('a commit the repository does not have is 404 naming the commit and the branch; every other bad revision is a 4xx', async () => {
    type Err = { error: { code: string; message: string } };
    const plan = (revision: string) => h.api<Err & Preview>('GET', `/prev/plan?namespace=prev&revision=${encodeURIComponent(revision)}`);
    const head = repo.git('rev-parse', 'main');

    // A full SHA that no branch of the repository has and that it does not serve: the branch was
    // fetched, the commit asked for itself, and neither brought it.
    const unknown = 'deadbeef'.repeat(5);
    const u = await plan(unknown);
    assert.equal(u.status, 404, JSON.stringify(u.body));
    assert.equal(u.body.error.code, 'REVISION_NOT_FOUND');
    assert.ok(u.body.error.message.includes(unknown), u.body.error.message);
    assert.match(u.body.error.message, /branch 'main'/);
    assert.ok(u.body.error.message.includes(head), `names the branch tip: ${u.body.error.message}`);
    // The same in capitals is the same commit.
    const upper = await plan(unknown.toUpperCase());
    assert.equal(upper.status, 404, JSON.stringify(upper.body));
    assert.equal(upper.body.error.code, 'REVISION_NOT_FOUND');

    // An abbreviated SHA (or one digit too many) is not resolved: a 422 that says to give all 40 digits.
    for (const short of [head.slice(0, 7), head.slice(0, 39), `${head}0`]) {
      const r = await plan(short);
      assert.equal(r.status, 422, `${short}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'GIT_REF_NOT_FOUND');
      assert.ok(r.body.error.message.includes(short), r.body.error.message);
      assert.match(r.body.error.message, /40 hex digits/);
    }

    // Malformed: neither a SHA nor a possible branch name.
    for (const bad of ['not a commit', 'abc~1', 'HEAD^', `-${head.slice(1)}`, 'x'.repeat(300)]) {
      const r = await plan(bad);
      assert.equal(r.status, 400, `${bad}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'BAD_REQUEST');
    }
    // A well-formed name that is no branch: 422 naming it.
    const g = await plan('g'.repeat(40));
    assert.equal(g.status, 422, JSON.stringify(g.body));
    assert.equal(g.body.error.code, 'GIT_REF_NOT_FOUND');

    // A commit of another branch (and one no branch has any more) is fetchable from this
    // repository: its plan is shown, as the docs promise ("on the branch or fetchable").
    repo.git('checkout', '-q', '-b', 'side');
    const side = await repo.commit({ 'zerverless.yaml': manifest({ '/side': 's' }, null) }, 'on side');
    repo.git('checkout', '-q', 'main');
    const s = await plan(side);
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal(s.body.commit.sha, side);
    assert.deepEqual(s.body.functions.create, ['/side']);

    // None of it changed what is served.
    const st = (await h.api('GET', '/prev?namespace=prev')).body;
    assert.equal(st.status, 'synced');
  });
});
