// Suspend / resume (PRODUCT.md §11) through the real server: the poll leaves a suspended
// application alone (a second application on the same branch, not suspended, shows the poll saw the
// new head), an explicit sync still runs and does not resume it, the status and the CLI show who
// suspended it and why, resume lets the poll sync again, and only a deployer of the namespace (or
// an admin) may suspend.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { luaManifest } from './fixtures.js';
import { cliFromSource as cli } from '../support/cli-src.js';

describe('suspend and resume', () => {
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    h = await startHarness({ pollIntervalMs: 300 });
    repo = await TestRepo.create({ 'zerverless.yaml': luaManifest('one') });
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('pauses polls until resume; an explicit sync still runs and keeps it suspended', async () => {
    const first = await h.register('held', 'held', repo.url);
    assert.equal(first.status, 'synced');
    // The witness follows the same branch and is not suspended.
    await h.register('witness', 'witness', repo.url);

    const s = await h.api('POST', '/held/suspend?namespace=held', { reason: 'incident 42' });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal(s.body.suspended?.reason, 'incident 42');
    assert.equal(s.body.suspended?.by, 'admin');
    assert.ok(Date.parse(s.body.suspended?.at ?? '') > 0);

    const c2 = await repo.commit({ 'zerverless.yaml': luaManifest('two') });
    await h.waitFor('witness', (st) => st.source.commit === c2, 120_000, 'witness');
    // The poll that moved the witness saw the new head; the suspended application stays where it was.
    await h.waitFor('witness', (st) => st.status === 'synced', 120_000, 'witness');
    const held = (await h.api('GET', '/held?namespace=held')).body;
    assert.equal(held.source.commit, first.source.commit);
    assert.equal(await (await h.get('/held/hi')).text(), 'one');
    assert.equal(held.suspended?.reason, 'incident 42');

    // The CLI shows it.
    const got = await cli('apps', 'get', 'held', '--namespace', 'held', '--server', h.url, '--token', h.token);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /suspended: since \S+ by admin: incident 42/);
    const list = await cli('apps', 'list', '--server', h.url, '--token', h.token);
    assert.match(list.stdout, /held\s+held\s+synced \(suspended\)/);

    // An explicit sync runs, and the application stays suspended.
    const synced = await h.sync('held', 'held');
    assert.equal(synced.source.commit, c2);
    assert.equal(synced.suspended?.reason, 'incident 42');
    assert.equal(await (await h.get('/held/hi')).text(), 'two');

    // Resume (through the CLI): the poll syncs the next commit.
    const resumed = await cli('apps', 'resume', 'held', '--namespace', 'held', '--server', h.url, '--token', h.token, '--json');
    assert.equal(resumed.code, 0);
    assert.equal((JSON.parse(resumed.stdout) as { suspended?: unknown }).suspended, undefined);
    const c3 = await repo.commit({ 'zerverless.yaml': luaManifest('three') }, 'Say three\n\nThe body of the message.');
    await h.waitFor('held', (st) => st.source.commit === c3 && st.status === 'synced', 120_000, 'held');
    const history = (await h.api<{ syncs: { trigger: string; actor: string | null; commit: string | null; commitInfo?: { message: string; author: string; time: string | null } }[] }>('GET', '/held/syncs?namespace=held')).body.syncs;
    assert.deepEqual(history.slice(0, 2).map((x) => [x.trigger, x.actor, x.commit]), [['poll', null, c3], ['api', 'admin', c2]]);
    assert.ok(!history.some((x) => x.trigger === 'poll' && x.commit === c2), 'no poll synced the commit pushed while suspended');
    // The history says what the commit said: its first line, author and time.
    assert.equal(history[0]?.commitInfo?.message, 'Say three');
    assert.match(history[0]?.commitInfo?.author ?? '', /<.+@.+>/);
    assert.ok(Date.parse(history[0]?.commitInfo?.time ?? '') > 0);
    const hist = await cli('apps', 'history', 'held', '--namespace', 'held', '--server', h.url, '--token', h.token);
    assert.equal(hist.code, 0, hist.stderr);
    assert.match(hist.stdout, /success\s+[0-9a-f]{12}\s+\+0 ~1 -0 =0\s+poll\n {4}functions: ~\/hi \(code\)\n {4}commit: Say three \(/);
    assert.match(hist.stdout, /\s+token admin\n/);
  });

  it('suspends through the CLI with a reason; a bad body is refused', async () => {
    const r = await cli('apps', 'suspend', 'held', '--namespace', 'held', '--reason', 'freeze', '--server', h.url, '--token', h.token);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /suspended: since .* freeze/);
    const long = await h.api<{ error: { code: string } }>('POST', '/held/suspend?namespace=held', { reason: 'x'.repeat(501) });
    assert.equal(long.status, 400);
    assert.equal(long.body.error.code, 'VALIDATION_FAILED');
    const unknown = await h.api<{ error: { code: string } }>('POST', '/held/suspend?namespace=held', { why: 'x' });
    assert.equal(unknown.status, 400);
    const none = await h.call('POST', '/gitops/applications/held/suspend?namespace=held');
    assert.equal(none.status, 200, 'the body is optional');
    assert.equal((await h.api('POST', '/held/resume?namespace=held')).body.suspended, undefined);
  });

  it('a reader may not suspend or resume (403); a deployer of the namespace may', async () => {
    const token = async (body: Record<string, unknown>) => (await h.call<{ token: string }>('POST', '/tokens', { body })).body.token;
    const reader = await token({ name: 'r', role: 'reader' });
    const deployer = await token({ name: 'd', role: 'deployer', namespaces: ['held'] });
    const other = await token({ name: 'o', role: 'deployer', namespaces: ['witness'] });
    assert.equal((await h.call('POST', '/gitops/applications/held/suspend?namespace=held', { token: reader, body: {} })).status, 403);
    assert.equal((await h.call('POST', '/gitops/applications/held/resume?namespace=held', { token: reader })).status, 403);
    assert.equal((await h.call('POST', '/gitops/applications/held/suspend?namespace=held', { token: other, body: {} })).status, 403);
    const ok = await h.call<{ suspended?: { by: string } }>('POST', '/gitops/applications/held/suspend?namespace=held', { token: deployer, body: {} });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.suspended?.by, 'd');
    assert.equal((await h.call('POST', '/gitops/applications/held/resume?namespace=held', { token: deployer })).status, 200);
  });
});
