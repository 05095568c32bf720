// Revisions and rollback (PRODUCT.md §11, "History and rollback") and changing an application's
// source in place (PATCH), through the real server and real git repositories: each sync that
// changes what is deployed keeps a revision with its commit message; a rollback switches functions
// and static files back with the repository gone (no git), suspends automatic syncs (a poll does not
// sync a new commit; a witness on the same branch shows the poll saw it) until resume; services roll
// back through the upgrade; only the newest revisions are kept; a PATCH of the branch serves the
// other branch, and a branch that does not exist leaves the old deployment serving.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { access, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { serviceAppConfig as APP_CONFIG, serviceRepos } from '../support/node-service.js';
import { luaManifest } from './fixtures.js';
import { cliFromSource as cli } from '../support/cli-src.js';
import { sqlite } from '../../src/store/sqlite/driver.js';
import Dockerode from 'dockerode';
import { BASE_IMAGE, dockerAvailable, ensureBaseImage, removeNetworksOf } from '../support/docker.js';

interface RevisionView {
  revision: string; message: string | null; author: string | null; time: string | null; deployedAt: string; by: string;
  functions: number; staticFiles: number; services: number; current: boolean;
}

/** A Lua function at /hi answering `body`, and a static site. */
const site = (v: string): Record<string, string> => ({
  'zerverless.yaml': `${luaManifest(v)}  static:\n    dir: site\n`,
  'site/index.html': `<h1>${v}</h1>`,
  [`site/only-${v}.txt`]: v,
});

describe('revisions and rollback', () => {
  let h: Harness;
  let repo: TestRepo;
  const commits: string[] = [];

  before(async () => {
    h = await startHarness({ pollIntervalMs: 300 });
    repo = await TestRepo.create();
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  const revisions = async (name: string, ns: string): Promise<RevisionView[]> => {
    const r = await h.api<{ revisions: RevisionView[] }>('GET', `/${name}/revisions?namespace=${ns}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.revisions;
  };

  it('keeps a revision per deployed commit and rolls back without git, suspending automatic syncs until resume', async () => {
    commits.push(await repo.commit(site('one'), 'First version'));
    const first = await h.register('web', 'rb', repo.url);
    assert.equal(first.status, 'synced', first.message);
    commits.push(await repo.commit({ ...site('two'), 'site/only-one.txt': null }, 'Second version'));
    assert.equal((await h.sync('web', 'rb')).source.commit, commits[1]);
    commits.push(await repo.commit({ ...site('three'), 'site/only-two.txt': null }, 'Third version\n\nwith a body'));
    assert.equal((await h.sync('web', 'rb')).source.commit, commits[2]);
    // A sync that changes nothing keeps no new revision.
    await h.sync('web', 'rb');

    const revs = await revisions('web', 'rb');
    assert.deepEqual(revs.map((r) => [r.revision, r.message, r.current]), [
      [commits[2], 'Third version', true], [commits[1], 'Second version', false], [commits[0], 'First version', false],
    ]);
    assert.deepEqual(revs.map((r) => [r.functions, r.staticFiles, r.services]), [[1, 2, 0], [1, 2, 0], [1, 2, 0]]);
    assert.match(revs[0]?.author ?? '', /test <test@example.com>/);
    assert.deepEqual(revs.map((r) => r.by), ['admin', 'admin', 'admin']);
    const table = await cli('apps', 'revisions', 'web', '--namespace', 'rb', '--server', h.url, '--token', h.token);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`\\*\\s+${commits[2]?.slice(0, 12)}\\s+\\S+\\s+admin\\s+1\\s+2\\s+0\\s+Third version \\(test\\)`));

    // The repository goes away: a rollback needs no git.
    const away = `${repo.dir}-away`;
    await rename(repo.dir, away);
    try {
      const unknown = await h.api<{ error: { code: string } }>('POST', '/web/rollback?namespace=rb', { revision: 'abcdef12' });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error.code, 'REVISION_NOT_FOUND');
      const rb = await cli('apps', 'rollback', 'web', (commits[0] as string).slice(0, 8), '--namespace', 'rb', '--server', h.url, '--token', h.token, '--json');
      assert.equal(rb.code, 0, rb.stderr + rb.stdout);
      const st = JSON.parse(rb.stdout) as { status: string; source: { commit: string }; suspended?: { reason: string; by: string } };
      assert.equal(st.status, 'synced');
      assert.equal(st.source.commit, commits[0]);
      assert.match(st.suspended?.reason ?? '', new RegExp(`rolled back to ${commits[0]?.slice(0, 12)} \\(First version\\)`));
      assert.equal(st.suspended?.by, 'admin');
      assert.equal(await (await h.get('/rb/hi')).text(), 'one');
      assert.equal(await (await h.get('/static/rb/index.html')).text(), '<h1>one</h1>');
      assert.equal(await (await h.get('/static/rb/only-one.txt')).text(), 'one');
      assert.equal((await h.get('/static/rb/only-three.txt')).status, 404);
      const hist = (await h.api<{ syncs: { trigger: string; actor: string | null; commit: string | null; result: string }[] }>('GET', '/web/syncs?namespace=rb')).body.syncs;
      assert.deepEqual([hist[0]?.trigger, hist[0]?.actor, hist[0]?.commit, hist[0]?.result], ['rollback', 'admin', commits[0], 'success']);
      assert.deepEqual((await revisions('web', 'rb')).map((r) => r.current), [false, false, true]);
    } finally {
      await rename(away, repo.dir);
    }

    // A new commit: the poll sees it (the witness syncs it), the rolled-back application stays.
    await h.register('witness', 'witness', repo.url);
    commits.push(await repo.commit({ ...site('four'), 'site/only-three.txt': null }, 'Fourth version'));
    await h.waitFor('witness', (st) => st.source.commit === commits[3] && st.status === 'synced', 120_000, 'witness');
    const held = (await h.api('GET', '/web?namespace=rb')).body;
    assert.equal(held.source.commit, commits[0]);
    assert.ok(held.suspended);
    assert.equal(await (await h.get('/rb/hi')).text(), 'one');

    // Resume: the poll syncs the head.
    const resumed = await h.api('POST', '/web/resume?namespace=rb');
    assert.equal(resumed.body.suspended, undefined);
    await h.waitFor('web', (st) => st.source.commit === commits[3] && st.status === 'synced', 120_000, 'rb');
    assert.equal(await (await h.get('/rb/hi')).text(), 'four');
    assert.equal(await (await h.get('/static/rb/index.html')).text(), '<h1>four</h1>');
    const after = await revisions('web', 'rb');
    assert.deepEqual(after.map((r) => [r.revision, r.current]), [[commits[3], true], [commits[2], false], [commits[1], false], [commits[0], false]]);
    assert.equal(after[0]?.by, 'poll');
  });

  it('an explicit sync also ends a rollback\'s suspension', async () => {
    const rb = await h.api('POST', '/web/rollback?namespace=rb', { revision: commits[1] });
    assert.equal(rb.status, 200, JSON.stringify(rb.body));
    assert.equal(await (await h.get('/rb/hi')).text(), 'two');
    assert.ok(rb.body.suspended);
    const synced = await h.sync('web', 'rb');
    assert.equal(synced.source.commit, commits[3]);
    assert.equal(synced.suspended, undefined);
    assert.equal(await (await h.get('/rb/hi')).text(), 'four');
  });

  it('a reader may list revisions but not roll back (403); a deployer of the namespace may', async () => {
    const token = async (body: Record<string, unknown>) => (await h.call<{ token: string }>('POST', '/tokens', { body })).body.token;
    const reader = await token({ name: 'r', role: 'reader' });
    const other = await token({ name: 'o', role: 'deployer', namespaces: ['witness'] });
    const deployer = await token({ name: 'd', role: 'deployer', namespaces: ['rb'] });
    assert.equal((await h.call('GET', '/gitops/applications/web/revisions?namespace=rb', { token: reader })).status, 200);
    assert.equal((await h.call('POST', '/gitops/applications/web/rollback?namespace=rb', { token: reader, body: { revision: commits[2] } })).status, 403);
    assert.equal((await h.call('POST', '/gitops/applications/web/rollback?namespace=rb', { token: other, body: { revision: commits[2] } })).status, 403);
    assert.equal((await h.call('PATCH', '/gitops/applications/web?namespace=rb', { token: reader, body: { source: { branch: 'x' } } })).status, 403);
    const ok = await h.call<{ suspended?: { by: string } }>('POST', '/gitops/applications/web/rollback?namespace=rb', { token: deployer, body: { revision: commits[2] } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.suspended?.by, 'd');
    assert.equal(await (await h.get('/rb/hi')).text(), 'three');
    assert.equal((await h.api('POST', '/web/resume?namespace=rb')).status, 200);
    await h.waitFor('web', (st) => st.source.commit === commits[3] && st.status === 'synced', 120_000, 'rb');
  });

  it('keeps only the newest revisions: the 21st drops the first', async () => {
    const many = await TestRepo.create();
    try {
      const shas: string[] = [];
      shas.push(await many.commit({ 'zerverless.yaml': luaManifest('v0') }, 'v0'));
      await h.register('many', 'many', many.url);
      for (let i = 1; i <= 20; i++) {
        shas.push(await many.commit({ 'zerverless.yaml': luaManifest(`v${i}`) }, `v${i}`));
        assert.equal((await h.sync('many', 'many')).source.commit, shas[i]);
      }
      const kept = await revisions('many', 'many');
      assert.equal(kept.length, 20);
      assert.deepEqual(kept.map((r) => r.message), shas.slice(1).map((_, i) => `v${20 - i}`));
      const gone = await h.api<{ error: { code: string } }>('POST', '/many/rollback?namespace=many', { revision: shas[0] });
      assert.equal(gone.status, 404);
      assert.equal(gone.body.error.code, 'REVISION_NOT_FOUND');

      // A rollback asked while a sync is queued or running waits for it in the application's queue.
      const queued = await h.api('POST', '/many/sync?namespace=many&async=true');
      assert.equal(queued.status, 202);
      const rb = await h.api('POST', '/many/rollback?namespace=many', { revision: shas[10] });
      assert.equal(rb.status, 200, JSON.stringify(rb.body));
      assert.equal(await (await h.get('/many/hi')).text(), 'v10');
      const [rollback, sync] = (await h.api<{ syncs: { trigger: string; startedAt: string; finishedAt: string | null }[] }>('GET', '/many/syncs?namespace=many&limit=2')).body.syncs;
      assert.deepEqual([rollback?.trigger, sync?.trigger], ['rollback', 'api']);
      assert.ok(sync?.finishedAt && Date.parse(sync.finishedAt) <= Date.parse(rollback?.startedAt ?? ''), 'the sync finished before the rollback started');
    } finally {
      await many.remove();
    }
  });

  it('PATCH of the branch serves the other branch; a branch that does not exist keeps the old one serving', async () => {
    const r = await TestRepo.create({ 'zerverless.yaml': luaManifest('main') });
    try {
      r.git('checkout', '-q', '-b', 'other');
      await r.commit({ 'zerverless.yaml': luaManifest('other') }, 'other branch');
      r.git('checkout', '-q', 'main');
      assert.equal((await h.register('moving', 'moving', r.url)).status, 'synced');
      assert.equal(await (await h.get('/moving/hi')).text(), 'main');

      const bad = await h.api<{ error: { code: string } }>('PATCH', '/moving?namespace=moving', { source: { branch: 'a..b' } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'VALIDATION_FAILED');
      const badUrl = await h.api<{ error: { code: string } }>('PATCH', '/moving?namespace=moving', { source: { repoURL: 'ftp://example.com/x.git' } });
      assert.equal(badUrl.status, 400);

      const set = await cli('apps', 'set', 'moving', '--branch', 'other', '--namespace', 'moving', '--server', h.url, '--token', h.token);
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /now follows .*#other/);
      await h.waitFor('moving', (st) => st.source.branch === 'other' && st.status === 'synced' && st.source.commit === r.git('rev-parse', 'other'), 120_000, 'moving');
      assert.equal(await (await h.get('/moving/hi')).text(), 'other');

      const missing = await h.api('PATCH', '/moving?namespace=moving', { source: { branch: 'nope' } });
      assert.equal(missing.status, 200, JSON.stringify(missing.body));
      assert.equal(missing.body.source.branch, 'nope');
      const failed = await h.waitFor('moving', (st) => st.status === 'error', 120_000, 'moving');
      assert.equal(failed.source.commit, r.git('rev-parse', 'other'));
      assert.equal(await (await h.get('/moving/hi')).text(), 'other');
    } finally {
      await r.remove();
    }
  });

  it('a restart keeps the deployed state as the first revision of an application that has none', async () => {
    const db = new (sqlite())(join(h.dataDir, 'state.db'));
    try {
      db.prepare("DELETE FROM revisions WHERE app_id = (SELECT id FROM applications WHERE namespace = 'rb' AND name = 'web')").run();
    } finally {
      db.close();
    }
    assert.deepEqual(await revisions('web', 'rb'), []);
    await h.restart();
    const revs = await revisions('web', 'rb');
    assert.deepEqual(revs.map((r) => [r.revision, r.current, r.message, r.by]), [[commits[3], true, 'Fourth version', 'poll']]);
    assert.equal(await (await h.get('/rb/hi')).text(), 'four');
  });
});

/** Removes the server's clones of every repository (they would give a commit without the remote). */
async function dropClones(dataDir: string): Promise<void> {
  await rm(join(dataDir, 'git', 'repos'), { recursive: true, force: true });
}

/** Deletes the blob of `content` from the data dir's blob store (as a person or a disk fault would). */
async function deleteBlob(dataDir: string, content: string): Promise<string> {
  const hash = createHash('sha256').update(content).digest('hex');
  const path = join(dataDir, 'blobs', hash.slice(0, 2), hash.slice(2));
  await access(path);
  await rm(path);
  return path;
}

describe('rollback to a revision whose static blob is missing', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  type Err = { error: { code: string; message: string } };

  /** What the application serves and says, to compare before and after a refused rollback. */
  const served = async (name: string, ns: string) => {
    const st = (await h.api('GET', `/${name}?namespace=${ns}`)).body;
    return {
      commit: st.source.commit, status: st.status, suspended: st.suspended ?? null,
      hi: await (await h.get(`/${ns}/hi`)).text(), index: await (await h.get(`/static/${ns}/index.html`)).text(),
    };
  };

  /**
   * An application `name` (namespace `name`) registered on `first` at a commit of site(from), then
   * PATCHed to `second` at a commit of site(to) and synced there: the two commits.
   */
  const moved = async (name: string, first: TestRepo, from: string, second: TestRepo, to: string): Promise<[string, string]> => {
    const a = await first.commit(site(from), from[0]!.toUpperCase() + from.slice(1));
    assert.equal((await h.register(name, name, first.url)).status, 'synced');
    const b = await second.commit(site(to), to[0]!.toUpperCase() + to.slice(1));
    const patched = await h.api('PATCH', `/${name}?namespace=${name}`, { source: { repoURL: second.url } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    await h.waitFor(name, (st) => st.source.commit === b && st.status === 'synced', 120_000, name);
    return [a, b];
  };

  it('reads the missing file again from the revision\'s commit; with the repository gone it is a 409 naming the revision and the file, and nothing changes', async () => {
    const repo = await TestRepo.create();
    try {
      const one = await repo.commit(site('one'), 'First version');
      assert.equal((await h.register('lost', 'lost', repo.url)).status, 'synced');
      const two = await repo.commit({ ...site('two'), 'site/only-one.txt': null }, 'Second version');
      assert.equal((await h.sync('lost', 'lost')).source.commit, two);
      const blob = await deleteBlob(h.dataDir, 'one');
      const before = await served('lost', 'lost');
      assert.deepEqual([before.commit, before.hi, before.index], [two, 'two', '<h1>two</h1>']);

      // Git cannot give the file either (the repository is gone, and so is the server's clone of
      // it): refused before anything switches.
      const away = `${repo.dir}-away`;
      await rename(repo.dir, away);
      await dropClones(h.dataDir);
      try {
        const r = await h.api<Err>('POST', '/lost/rollback?namespace=lost', { revision: one.slice(0, 8) });
        assert.equal(r.status, 409, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'REVISION_INCOMPLETE');
        const m = r.body.error.message;
        assert.ok(m.includes(one.slice(0, 12)), m);
        assert.match(m, /First version/);
        assert.match(m, /static file only-one\.txt/);
        assert.match(m, /missing from the blob store/);
        assert.ok(m.includes(repo.url), `names the repository it tried: ${m}`);
        assert.match(m, /Nothing was changed\. Roll back again once .* is reachable, or roll back to another revision/);
        assert.deepEqual(await served('lost', 'lost'), before, 'nothing that serves changed');
        const rb = await cli('apps', 'rollback', 'lost', one, '--namespace', 'lost', '--server', h.url, '--token', h.token);
        assert.equal(rb.code, 1, rb.stdout);
        assert.match(rb.stderr + rb.stdout, /REVISION_INCOMPLETE/);
      } finally {
        await rename(away, repo.dir);
      }

      // With the repository back, the rollback reads the file from the commit and switches.
      const ok = await h.api('POST', '/lost/rollback?namespace=lost', { revision: one });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.source.commit, one);
      await access(blob);
      assert.equal(await (await h.get('/static/lost/only-one.txt')).text(), 'one');
      assert.equal(await (await h.get('/static/lost/index.html')).text(), '<h1>one</h1>');
      assert.equal(await (await h.get('/lost/hi')).text(), 'one');
    } finally {
      await repo.remove();
    }
  });

  it('a revision from before a PATCH to another repository is restored from the repository it came from; when that one is gone the message says so', async () => {
    const first = await TestRepo.create();
    const second = await TestRepo.create();
    try {
      const [alpha, beta] = await moved('moved', first, 'alpha', second, 'beta');
      await deleteBlob(h.dataDir, 'alpha');

      // The application's repository does not have the commit; the one it was deployed from does.
      const ok = await h.api('POST', '/moved/rollback?namespace=moved', { revision: alpha });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(await (await h.get('/static/moved/only-alpha.txt')).text(), 'alpha');
      assert.equal(await (await h.get('/moved/hi')).text(), 'alpha');
      assert.equal(ok.body.source.repoURL, second.url, 'a rollback does not change the source');

      // Back to the second repository's head; then the first repository goes away.
      assert.equal((await h.sync('moved', 'moved')).source.commit, beta);
      await deleteBlob(h.dataDir, 'alpha');
      const before = await served('moved', 'moved');
      await first.remove();
      await dropClones(h.dataDir);
      const r = await h.api<Err>('POST', '/moved/rollback?namespace=moved', { revision: alpha });
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'REVISION_INCOMPLETE');
      const m = r.body.error.message;
      assert.ok(m.includes(alpha.slice(0, 12)), m);
      assert.match(m, /static file only-alpha\.txt/);
      assert.ok(m.includes(first.url), `names the repository the revision came from: ${m}`);
      assert.ok(m.includes(second.url), `and the one the application syncs from now: ${m}`);
      assert.deepEqual(await served('moved', 'moved'), before, 'nothing that serves changed');
      assert.equal(before.hi, 'beta');
    } finally {
      await first.remove();
      await second.remove();
    }
  });

  it('a revision kept before sources were recorded, from a repository the application left: the message says to PATCH the source back', async () => {
    const first = await TestRepo.create();
    const second = await TestRepo.create();
    try {
      const [gamma] = await moved('old', first, 'gamma', second, 'delta');
      // As an older server kept it: no source in the revision.
      const db = new (sqlite())(join(h.dataDir, 'state.db'));
      try {
        const row = db.prepare("SELECT id, state FROM revisions WHERE commit_sha = ?").get(gamma) as { id: number; state: Buffer };
        const packed = JSON.parse(inflateRawSync(row.state).toString('utf8')) as Record<string, unknown>;
        assert.ok(packed['source'], 'a revision records its source');
        delete packed['source'];
        db.prepare('UPDATE revisions SET state = ? WHERE id = ?').run(deflateRawSync(Buffer.from(JSON.stringify(packed))), row.id);
      } finally {
        db.close();
      }
      await deleteBlob(h.dataDir, 'gamma');
      const before = await served('old', 'old');
      const r = await h.api<Err>('POST', '/old/rollback?namespace=old', { revision: gamma });
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'REVISION_INCOMPLETE');
      const m = r.body.error.message;
      assert.ok(m.includes(gamma.slice(0, 12)), m);
      assert.match(m, /static file only-gamma\.txt/);
      assert.ok(m.includes(second.url), m);
      assert.match(m, /PATCH the source back to that repository and roll back again/);
      assert.deepEqual(await served('old', 'old'), before, 'nothing that serves changed');

      // Following the hint works: PATCH back (its sync serves the first repository's head, which
      // has moved on and lacks the file), then roll back.
      const epsilon = await first.commit({ ...site('epsilon'), 'site/only-gamma.txt': null }, 'Epsilon');
      assert.equal((await h.api('PATCH', '/old?namespace=old', { source: { repoURL: first.url } })).status, 200);
      await h.waitFor('old', (st) => st.source.repoURL === first.url && st.source.commit === epsilon && st.status === 'synced', 120_000, 'old');
      assert.equal((await h.get('/static/old/only-gamma.txt')).status, 404);
      const ok = await h.api('POST', '/old/rollback?namespace=old', { revision: gamma });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(await (await h.get('/static/old/only-gamma.txt')).text(), 'gamma');
    } finally {
      await first.remove();
      await second.remove();
    }
  });
});

describe('rollback of services', () => {
  let h: Harness;
  let svc: TestRepo;
  let app: TestRepo;

  before(async () => {
    h = await startHarness();
    ({ svc, app } = await serviceRepos());
  });
  after(async () => {
    await h.close();
    await svc.remove();
    await app.remove();
  });

  it('rolls a service back through the health-gated upgrade', async () => {
    const first = app.head();
    assert.equal((await h.register('svc', 'svc', app.url)).status, 'synced');
    await h.waitFor('svc', (s) => s.services[0]?.health === 'healthy', 120_000, 'svc');
    await app.commit({ 'apps/web/app.config': APP_CONFIG(svc.url, 'v2', '2.0.0') }, 'web 2');
    assert.equal((await h.sync('svc', 'svc')).status, 'synced');
    assert.equal((await h.get('/svc/web/')).headers.get('x-version'), '2.0.0');
    const revs = (await h.api<{ revisions: RevisionView[] }>('GET', '/svc/revisions?namespace=svc')).body.revisions;
    assert.deepEqual(revs.map((r) => [r.services, r.current]), [[1, true], [1, false]]);

    const rb = await h.api('POST', '/svc/rollback?namespace=svc', { revision: first });
    assert.equal(rb.status, 200, JSON.stringify(rb.body));
    assert.equal(rb.body.status, 'synced', rb.body.message);
    assert.equal(rb.body.services[0]?.version, '1.0.0');
    const res = await h.get('/svc/web/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-version'), '1.0.0');
    const hist = (await h.api<{ syncs: { trigger: string; plan: { services?: { name: string; action: string }[] } | null }[] }>('GET', '/svc/syncs?namespace=svc')).body.syncs;
    assert.equal(hist[0]?.trigger, 'rollback');
    assert.deepEqual(hist[0]?.plan?.services?.map((s) => [s.name, s.action]), [['web', 'upgrade']]);
  });
});

const hasDocker = await dockerAvailable();

const CGI = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'version=%s' "$VERSION"
`;
const dockerFiles = (v: string): Record<string, string> => ({
  'zerverless.yaml': `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: dk
spec:
  functions:
    - path: /cgi-bin/echo
      runtime: docker
      dockerfile: ./svc/Dockerfile
      context: ./svc
      timeout: 10s
      env:
        VERSION: ${v}
`,
  // Each version is another image (its label differs).
  'svc/Dockerfile': `FROM ${BASE_IMAGE}\nCOPY www /www\nRUN chmod +x /www/cgi-bin/echo\nLABEL zv.test.version=${v}\nCMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]\n`,
  'svc/www/cgi-bin/echo': CGI,
});

describe('rollback of docker functions', { skip: !hasDocker && 'no Docker engine' }, () => {
  let h: Harness;
  let repo: TestRepo;
  const docker = new Dockerode();
  const images = new Set<string>();

  before(async () => {
    await ensureBaseImage(docker);
    h = await startHarness();
    repo = await TestRepo.create(dockerFiles('one'), 'main');
  });
  after(async () => {
    await h.close();
    await repo.remove();
    for (const tag of images) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
    await removeNetworksOf(['dk']).catch(() => undefined);
  });

  const answer = async (): Promise<string> => (await h.get('/dk/cgi-bin/echo')).text();
  const image = (st: { functions: { image?: string }[] }): string => {
    const tag = st.functions[0]?.image ?? '';
    images.add(tag);
    return tag;
  };

  it('uses the image kept for the revision, and builds one the engine lost from the revision\'s commit', async () => {
    const c1 = repo.head();
    const first = await h.register('dk', 'dk', repo.url);
    assert.equal(first.status, 'synced', first.message);
    const one = image(first);
    assert.equal(await answer(), 'version=one');
    const c2 = await repo.commit(dockerFiles('two'), 'two');
    const second = await h.sync('dk', 'dk');
    assert.equal(second.status, 'synced', second.message);
    const two = image(second);
    assert.notEqual(one, two);
    assert.equal(await answer(), 'version=two');

    // The image of revision one is still in the engine: no git needed.
    const back = await h.api('POST', '/dk/rollback?namespace=dk', { revision: c1 });
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.equal(await answer(), 'version=one');

    // The image of revision two is gone: it is built again from the commit.
    await docker.getImage(two).remove({ force: true });
    const forward = await h.api('POST', '/dk/rollback?namespace=dk', { revision: c2 });
    assert.equal(forward.status, 200, JSON.stringify(forward.body));
    assert.equal(await answer(), 'version=two');
    assert.equal(image(forward.body), two);
    // built again (not only a container of it adopted)
    assert.ok(await docker.getImage(two).inspect().then(() => true, () => false), `image ${two} is in the engine again`);
  });
});
