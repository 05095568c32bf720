// Webhooks end to end (PRODUCT.md §11): the providers' documented push payloads (test/fixtures/
// webhooks), signed as each provider signs them, posted to a real server over HTTP; the
// application follows a real git repository and a long poll interval, so only the hook can make
// it sync the new commit. Wrong or missing signatures, replays, tag pushes, deleted branches and
// pings trigger nothing; URL spellings of one repository match.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, type Harness } from '../support/server.js';
import { TestRepo } from '../support/repo.js';
import { luaManifest } from './fixtures.js';

const SECRET = 'hook-secret-for-tests';
type Json = Record<string, unknown>;
const fixture = (name: string): Json => JSON.parse(readFileSync(new URL(`../fixtures/webhooks/${name}`, import.meta.url), 'utf8')) as Json;
const hmac = (secret: string, body: string): string => createHmac('sha256', secret).update(body).digest('hex');

interface HookAnswer {
  triggered?: { namespace: string; name: string }[];
  skipped?: { namespace: string; name: string; reason: string }[];
  duplicate?: boolean;
  ping?: boolean;
  reason?: string;
  error?: { code: string; message: string };
}

/** The documented payload, pointed at `repoURL` (in the provider's URL fields) and `branch`. */
function payloadFor(provider: string, repoURL: string, branch: string, after: string): Json {
  const ref = `refs/heads/${branch}`;
  switch (provider) {
    case 'github': {
      const p = fixture('github-push.json');
      p.ref = ref;
      p.after = after;
      p.repository = { ...(p.repository as Json), clone_url: `${repoURL}.git`, html_url: `${repoURL}/`, url: repoURL };
      return p;
    }
    case 'gitea': {
      const p = fixture('gitea-push.json');
      p.ref = ref;
      p.after = after;
      p.repository = { ...(p.repository as Json), clone_url: `${repoURL}.git`, html_url: repoURL };
      return p;
    }
    case 'gitlab': {
      const p = fixture('gitlab-push.json');
      p.ref = ref;
      p.after = after;
      p.project = { ...(p.project as Json), git_http_url: `${repoURL}.git`, web_url: repoURL };
      return p;
    }
    case 'bitbucket': {
      const p = fixture('bitbucket-push.json');
      const repo = p.repository as Json;
      // A bitbucket.org repository in the fixture; here the link points at the local one.
      p.repository = { ...repo, full_name: 'zv-tests/not-this-one', links: { html: { href: repoURL } } };
      const change = ((p.push as Json).changes as Json[])[0] as Json;
      change.new = { ...(change.new as Json), name: branch, target: { ...((change.new as Json).target as Json), hash: after } };
      return p;
    }
    default:
      return { repoURL, branch };
  }
}

/** Headers as the provider sends them, signed with `secret`. */
function headersFor(provider: string, body: string, secret: string, delivery: string, event?: string): Record<string, string> {
  const base = { 'content-type': 'application/json' };
  switch (provider) {
    case 'github':
      return { ...base, 'x-github-event': event ?? 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': `sha256=${hmac(secret, body)}` };
    case 'gitea':
      return { ...base, 'x-gitea-event': event ?? 'push', 'x-gitea-delivery': delivery, 'x-gitea-signature': hmac(secret, body) };
    case 'gitlab':
      return { ...base, 'x-gitlab-event': event ?? 'Push Hook', 'x-gitlab-event-uuid': delivery, 'x-gitlab-token': secret };
    case 'bitbucket':
      return { ...base, 'x-event-key': event ?? 'repo:push', 'x-request-uuid': delivery, 'x-hub-signature': `sha256=${hmac(secret, body)}` };
    default:
      return { ...base, 'x-delivery-id': delivery, authorization: `Bearer ${secret}` };
  }
}

async function post(h: Harness, provider: string, payload: unknown, headers: Record<string, string>): Promise<{ status: number; body: HookAnswer }> {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const res = await fetch(`${h.url}/hooks/${provider}`, { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as HookAnswer };
}

async function hook(h: Harness, provider: string, payload: Json, opts: { secret?: string; delivery?: string; event?: string } = {}) {
  const body = JSON.stringify(payload);
  return post(h, provider, body, headersFor(provider, body, opts.secret ?? SECRET, opts.delivery ?? randomUUID(), opts.event));
}

describe('webhooks', () => {
  let h: Harness;
  let repo: TestRepo;
  let appId: number;

  before(async () => {
    h = await startHarness({ webhookSecret: SECRET });
    repo = await TestRepo.create({ 'zerverless.yaml': luaManifest('v1') });
    const s = await h.register('web', 'team', repo.url);
    assert.equal(s.status, 'synced', JSON.stringify(s));
    appId = (await h.server.store.getApp('team', 'web'))!.id;
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  const body = async (path: string): Promise<string> => (await h.get(path)).text();

  for (const provider of ['github', 'gitlab', 'gitea', 'bitbucket', 'generic']) {
    it(`${provider}: a signed push syncs the new commit at once (no poll), recorded as a webhook sync`, async () => {
      const head = await repo.commit({ 'zerverless.yaml': luaManifest(`from-${provider}`) }, `push via ${provider}`);
      const delivery = randomUUID();
      const r = await hook(h, provider, payloadFor(provider, repo.url, 'main', head), { delivery });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      assert.deepEqual(r.body.triggered, [{ namespace: 'team', name: 'web' }]);
      await h.waitFor('web', (s) => s.source.commit === head && s.status === 'synced', 120_000, 'team');
      assert.equal(await body('/team/hi'), `from-${provider}`);
      const syncs = await h.call<{ syncs: { trigger: string; actor: string | null; commit: string | null }[] }>('GET', '/gitops/applications/web/syncs?namespace=team&limit=1');
      assert.equal(syncs.body.syncs[0]?.trigger, 'webhook');
      assert.equal(syncs.body.syncs[0]?.actor, `${provider}:${delivery}`);
      assert.equal(syncs.body.syncs[0]?.commit, head);
    });
  }

  it('a wrong or missing signature answers 401 WEBHOOK_UNAUTHORIZED and starts nothing', async () => {
    const head = await repo.commit({ 'zerverless.yaml': luaManifest('unsigned') });
    for (const provider of ['github', 'gitlab', 'gitea', 'bitbucket', 'generic']) {
      const payload = payloadFor(provider, repo.url, 'main', head);
      const wrong = await hook(h, provider, payload, { secret: 'not-the-secret' });
      assert.equal(wrong.status, 401, provider);
      assert.equal(wrong.body.error?.code, 'WEBHOOK_UNAUTHORIZED', provider);
      assert.ok(!JSON.stringify(wrong.body).includes(SECRET), 'the answer never carries the secret');
      // The hook calls sync() before it answers: had it triggered one, the application would be busy now.
      assert.equal(h.server.reconciler.isSyncing(appId), false, provider);
      const none = await post(h, provider, JSON.stringify(payload), { 'content-type': 'application/json', 'x-github-event': 'push', 'x-gitea-event': 'push', 'x-gitlab-event': 'Push Hook', 'x-event-key': 'repo:push' });
      assert.equal(none.status, 401, provider);
      assert.match(none.body.error?.message ?? '', /no signature/);
    }
    // A signature over other bytes than those sent does not verify either.
    const payload = payloadFor('github', repo.url, 'main', head);
    const signed = JSON.stringify(payload);
    const r = await post(h, 'github', JSON.stringify(payload, null, 2), headersFor('github', signed, SECRET, randomUUID()));
    assert.equal(r.status, 401);
    assert.equal(h.server.reconciler.isSyncing(appId), false);
    const s = await h.api('GET', '/web?namespace=team');
    assert.notEqual(s.body.source.commit, head);
  });

  it('a replayed delivery id is ignored', async () => {
    const head = await repo.commit({ 'zerverless.yaml': luaManifest('replayed') });
    const delivery = randomUUID();
    const payload = payloadFor('github', repo.url, 'main', head);
    const first = await hook(h, 'github', payload, { delivery });
    assert.equal(first.status, 202);
    await h.waitFor('web', (s) => s.source.commit === head && s.status === 'synced', 120_000, 'team');
    const again = await hook(h, 'github', payload, { delivery });
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.deepEqual(again.body.triggered, []);
    assert.equal(h.server.reconciler.isSyncing(appId), false);
  });

  it('tag pushes, deleted branches, other branches, pings and other events trigger nothing', async () => {
    const tag = fixture('gitlab-tag-push.json');
    tag.project = { ...(tag.project as Json), git_http_url: `${repo.url}.git` };
    const t = await hook(h, 'gitlab', tag, { event: 'Tag Push Hook' });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.deepEqual(t.body.triggered, []);
    assert.match(t.body.reason ?? '', /tag/);

    const del = { ...payloadFor('github', repo.url, 'main', '0'.repeat(40)), deleted: true };
    const d = await hook(h, 'github', del);
    assert.equal(d.status, 202);
    assert.deepEqual(d.body.triggered, []);
    assert.match(d.body.reason ?? '', /deleted/);

    const other = await hook(h, 'github', payloadFor('github', repo.url, 'feature', 'a'.repeat(40)));
    assert.equal(other.status, 202);
    assert.deepEqual(other.body.triggered, []);

    const ping = fixture('github-ping.json');
    const p = await hook(h, 'github', ping, { event: 'ping' });
    assert.equal(p.status, 200);
    assert.equal(p.body.ping, true);
    const issues = await hook(h, 'github', { action: 'opened' }, { event: 'issues' });
    assert.equal(issues.status, 200);
    assert.deepEqual(issues.body.triggered, []);
    assert.equal(h.server.reconciler.isSyncing(appId), false);
    assert.equal((await h.api('GET', '/web?namespace=team')).body.status, 'synced', 'still serving what it had');
  });

  it('matches the https, ssh and .git spellings of one repository', async () => {
    // Nothing listens on port 1: the sync fails at once, but the hook's answer shows the match.
    const r = await h.api('POST', '/', { name: 'remote', namespace: 'other', source: { repoURL: 'https://127.0.0.1:1/Team/Site.git', branch: 'main' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    for (const form of ['git@127.0.0.1:Team/Site', 'ssh://git@127.0.0.1:2222/Team/Site.git', 'https://127.0.0.1/Team/Site/', 'http://127.0.0.1:8080/Team/Site']) {
      const p = fixture('github-push.json');
      p.repository = { ...(p.repository as Json), clone_url: form, ssh_url: form, html_url: form, git_url: form, url: form };
      const a = await hook(h, 'github', p);
      assert.equal(a.status, 202, form);
      assert.deepEqual(a.body.triggered, [{ namespace: 'other', name: 'remote' }], form);
    }
    const p = fixture('github-push.json');
    p.repository = { ...(p.repository as Json), clone_url: 'https://127.0.0.1/Team/Site2.git', ssh_url: 'git@127.0.0.2:Team/Site.git', html_url: 'https://127.0.0.1/team/site' };
    const a = await hook(h, 'github', p);
    assert.deepEqual(a.body.triggered, [], 'another repository, host, or path case on a self-hosted server');
  });

  it('malformed bodies answer 400 naming what is wrong; too large 413; counted in /metrics', async () => {
    const bad = await post(h, 'github', '{"ref": ', headersFor('github', '{"ref": ', SECRET, randomUUID()));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error?.code, 'BAD_REQUEST');
    assert.match(bad.body.error?.message ?? '', /not JSON/);
    const noRepo = JSON.stringify({ ref: 'refs/heads/main' });
    const nr = await post(h, 'github', noRepo, headersFor('github', noRepo, SECRET, randomUUID()));
    assert.equal(nr.status, 400);
    assert.match(nr.body.error?.message ?? '', /repository/);
    const big = JSON.stringify({ ref: 'refs/heads/main', pad: 'x'.repeat(1024 * 1024) });
    const tl = await post(h, 'generic', big, headersFor('generic', big, SECRET, randomUUID()));
    assert.equal(tl.status, 413);
    // GitHub's form encoding; and JSON sent as curl -d sends it (a form content type, no payload field).
    const form = `payload=${encodeURIComponent(JSON.stringify(payloadFor('github', repo.url, 'feature', 'c'.repeat(40))))}`;
    const f = await post(h, 'github', form, { ...headersFor('github', form, SECRET, randomUUID()), 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(f.status, 202, JSON.stringify(f.body));
    const curlish = JSON.stringify({ repoURL: repo.url, branch: 'feature' });
    const g = await post(h, 'generic', curlish, { ...headersFor('generic', curlish, SECRET, randomUUID()), 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(g.status, 202, JSON.stringify(g.body));
    const nf = await fetch(`${h.url}/hooks/unknown`, { method: 'POST', body: '{}' });
    assert.equal(nf.status, 404);
    const m = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${h.token}` } });
    const text = await m.text();
    assert.match(text, /zerverless_webhooks_total\{provider="github",result="triggered"\} \d+/);
    assert.match(text, /zerverless_webhooks_total\{provider="github",result="unauthorized"\} \d+/);
    assert.match(text, /zerverless_webhooks_total\{provider="generic",result="too_large"\} 1/);
  });
});

describe('webhooks without any secret', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('are closed: every delivery answers 401', async () => {
    const payload = payloadFor('github', 'https://git.example.com/team/site', 'main', 'a'.repeat(40));
    for (const secret of ['', 'anything']) {
      const r = await hook(h, 'github', payload, { secret });
      assert.equal(r.status, 401);
      assert.equal(r.body.error?.code, 'WEBHOOK_UNAUTHORIZED');
      assert.match(r.body.error?.message ?? '', /no webhook secret is configured/);
    }
    const g = await hook(h, 'generic', { repoURL: 'https://git.example.com/team/site', branch: 'main' }, { secret: '' });
    assert.equal(g.status, 401);
  });

  it('take the secret from --webhook-secret-file (its first line)', async () => {
    const file = join(h.dataDir, '..', `hook-secret-${randomUUID()}`);
    await writeFile(file, 'from-a-file\nignored\n', { mode: 0o600 });
    const withFile = await startHarness({ webhookSecretFile: file });
    try {
      const payload = { repoURL: 'https://git.example.com/team/site', branch: 'main' };
      assert.equal((await hook(withFile, 'generic', payload, { secret: 'from-a-file' })).status, 202);
      assert.equal((await hook(withFile, 'generic', payload, { secret: 'ignored' })).status, 401);
    } finally {
      await withFile.close();
      await rm(file, { force: true });
    }
  });
});

describe('webhooks with per-application secrets', () => {
  const OWN = 'own-secret-of-application-a';
  let h: Harness;
  let repo: TestRepo;
  before(async () => {
    h = await startHarness({ webhookSecret: SECRET });
    repo = await TestRepo.create({ 'zerverless.yaml': luaManifest('v1') });
    const a = await h.api('POST', '/', { name: 'own', namespace: 'a', source: { repoURL: repo.url }, webhookSecret: OWN });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    const b = await h.api('POST', '/', { name: 'shared', namespace: 'b', source: { repoURL: repo.url } });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    for (const [name, ns] of [['own', 'a'], ['shared', 'b']] as const) await h.waitFor(name, (s) => s.status === 'synced', 120_000, ns);
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('never shows the secret, and refuses one too short', async () => {
    const sealed = (await h.server.store.getApp('a', 'own'))?.webhookSecret ?? '';
    assert.ok(sealed.length > 0 && !sealed.includes(OWN), 'stored sealed');
    for (const path of ['/own?namespace=a', '/', '/own/syncs?namespace=a']) {
      const r = await h.api('GET', path);
      const text = JSON.stringify(r.body);
      assert.ok(!text.includes(OWN) && !text.includes(sealed) && !text.includes('webhookSecret'), path);
    }
    const short = await h.api('POST', '/', { name: 'short', namespace: 'c', source: { repoURL: repo.url }, webhookSecret: 'short' });
    assert.equal(short.status, 400);
  });

  it('a delivery triggers only the applications whose secret it proves (the server secret covers those without their own)', async () => {
    const head = await repo.commit({ 'zerverless.yaml': luaManifest('v2') });
    const payload = payloadFor('github', repo.url, 'main', head);
    const byServer = await hook(h, 'github', payload);
    assert.equal(byServer.status, 202);
    assert.deepEqual(byServer.body.triggered, [{ namespace: 'b', name: 'shared' }]);
    const byOwn = await hook(h, 'github', payload, { secret: OWN });
    assert.equal(byOwn.status, 202);
    assert.deepEqual(byOwn.body.triggered, [{ namespace: 'a', name: 'own' }]);
    const gitlab = await hook(h, 'gitlab', payloadFor('gitlab', repo.url, 'main', head), { secret: OWN });
    assert.deepEqual(gitlab.body.triggered, [{ namespace: 'a', name: 'own' }]);
    const wrong = await hook(h, 'github', payload, { secret: `${OWN}x` });
    assert.equal(wrong.status, 401);
    await h.waitFor('own', (s) => s.source.commit === head && s.status === 'synced', 120_000, 'a');
    await h.waitFor('shared', (s) => s.source.commit === head && s.status === 'synced', 120_000, 'b');
  });

  it('skips suspended applications, and says so', async () => {
    const s = await h.api('POST', '/shared/suspend?namespace=b', { reason: 'incident' });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    try {
      const r = await hook(h, 'github', payloadFor('github', repo.url, 'main', 'b'.repeat(40)));
      assert.equal(r.status, 202);
      assert.deepEqual(r.body.triggered, []);
      assert.deepEqual(r.body.skipped, [{ namespace: 'b', name: 'shared', reason: 'suspended' }]);
      assert.equal(h.server.reconciler.isSyncing((await h.server.store.getApp('b', 'shared'))!.id), false);
    } finally {
      await h.api('POST', '/shared/resume?namespace=b');
    }
  });

  it('an application secret opens webhooks for its repository even without a server secret', async () => {
    const solo = await startHarness();
    try {
      const r = await solo.api('POST', '/', { name: 'own', namespace: 'a', source: { repoURL: repo.url }, webhookSecret: OWN });
      assert.equal(r.status, 201);
      await solo.waitFor('own', (s) => s.status === 'synced', 120_000, 'a');
      const head = await repo.commit({ 'zerverless.yaml': luaManifest('v3') });
      const payload = payloadFor('gitea', repo.url, 'main', head);
      const ok = await hook(solo, 'gitea', payload, { secret: OWN });
      assert.equal(ok.status, 202);
      assert.deepEqual(ok.body.triggered, [{ namespace: 'a', name: 'own' }]);
      await solo.waitFor('own', (s) => s.source.commit === head && s.status === 'synced', 120_000, 'a');
      const other = await hook(solo, 'gitea', payloadFor('gitea', 'https://git.example.com/x/y', 'main', head), { secret: OWN });
      assert.equal(other.status, 401, 'another repository has no secret at all');
    } finally {
      await solo.close();
    }
  });
});
