// The webhook pieces on their own: URL forms, each provider's documented payload read into an
// event, each signature scheme (and its near misses), the bounded delivery memory.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { normalizeRepoUrl } from './urls.js';
import { deliveryId, parseEvent, PayloadError, verifies } from './providers.js';
import { DeliveryMemory } from './replay.js';

const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`../../test/fixtures/webhooks/${name}`, import.meta.url), 'utf8'));
const hex = (secret: string, body: Buffer): string => createHmac('sha256', secret).update(body).digest('hex');

describe('normalizeRepoUrl', () => {
  it('gives one form for the https, ssh, scp, git and .git spellings of a repository', () => {
    const forms = [
      'https://github.com/Codertocat/Hello-World', 'https://github.com/Codertocat/Hello-World.git', 'https://GitHub.com/codertocat/hello-world/',
      'git@github.com:Codertocat/Hello-World.git', 'ssh://git@github.com/Codertocat/Hello-World.git', 'ssh://git@github.com:22/Codertocat/Hello-World',
      'git://github.com/Codertocat/Hello-World.git', 'https://user:pw@github.com/Codertocat/Hello-World.git', 'http://www.github.com/Codertocat/Hello-World',
    ];
    for (const f of forms) assert.equal(normalizeRepoUrl(f), 'github.com/codertocat/hello-world', f);
  });
  it('keeps the path case on self-hosted servers, drops ports, and tells repositories apart', () => {
    assert.equal(normalizeRepoUrl('http://localhost:3000/gitea/webhooks.git'), 'localhost/gitea/webhooks');
    assert.equal(normalizeRepoUrl('ssh://gitea@LOCALHOST:2222/gitea/webhooks.git'), 'localhost/gitea/webhooks');
    assert.equal(normalizeRepoUrl('git@git.example.com:Team/Site.git'), 'git.example.com/Team/Site');
    assert.notEqual(normalizeRepoUrl('https://git.example.com/team/site'), normalizeRepoUrl('https://git.example.com/team/site2'));
    assert.notEqual(normalizeRepoUrl('https://git.example.com/team/site'), normalizeRepoUrl('https://git.example.org/team/site'));
    assert.equal(normalizeRepoUrl('file:///tmp/repo.git/'), 'file:/tmp/repo');
    assert.equal(normalizeRepoUrl('/tmp/repo'), 'file:/tmp/repo');
    assert.equal(normalizeRepoUrl('not a url'), null);
    assert.equal(normalizeRepoUrl('https://github.com/'), null);
    assert.equal(normalizeRepoUrl('ftp://example.com/x'), null);
  });
});

describe('providers', () => {
  it('read the documented push payloads: repository URLs and the branch', () => {
    const gh = parseEvent('github', new Headers({ 'x-github-event': 'push' }), fixture('github-push.json'));
    assert.equal(gh.kind, 'push');
    if (gh.kind !== 'push') return;
    assert.deepEqual(gh.changes, [{ kind: 'branch', name: 'main', deleted: false, after: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c' }]);
    assert.deepEqual(new Set(gh.repoUrls.map(normalizeRepoUrl)), new Set(['github.com/codertocat/hello-world']));

    const gl = parseEvent('gitlab', new Headers({ 'x-gitlab-event': 'Push Hook' }), fixture('gitlab-push.json'));
    assert.ok(gl.kind === 'push' && gl.changes[0]?.name === 'master' && gl.changes[0].kind === 'branch');
    assert.deepEqual(new Set(gl.kind === 'push' ? gl.repoUrls.map(normalizeRepoUrl) : []), new Set(['example.com/mike/diaspora']));

    const gt = parseEvent('gitea', new Headers({ 'x-gitea-event': 'push' }), fixture('gitea-push.json'));
    assert.ok(gt.kind === 'push' && gt.changes[0]?.name === 'develop');
    assert.deepEqual(new Set(gt.kind === 'push' ? gt.repoUrls.map(normalizeRepoUrl) : []), new Set(['localhost/gitea/webhooks']));

    const bb = parseEvent('bitbucket', new Headers({ 'x-event-key': 'repo:push' }), fixture('bitbucket-push.json'));
    assert.ok(bb.kind === 'push');
    if (bb.kind !== 'push') return;
    assert.deepEqual(bb.changes, [{ kind: 'branch', name: 'main', deleted: false, after: '709d658dc5b6d6afcd46049c2f332ee3f515a67d' }]);
    assert.deepEqual(new Set(bb.repoUrls.map(normalizeRepoUrl)), new Set(['bitbucket.org/team_name/demo']));
  });

  it('tell pings, tags, deletions and other events apart', () => {
    assert.deepEqual(parseEvent('github', new Headers({ 'x-github-event': 'ping' }), fixture('github-ping.json')), { kind: 'ping' });
    assert.deepEqual(parseEvent('github', new Headers({ 'x-github-event': 'issues' }), {}), { kind: 'other', event: 'issues' });
    const tag = parseEvent('gitlab', new Headers({ 'x-gitlab-event': 'Tag Push Hook' }), fixture('gitlab-tag-push.json'));
    assert.ok(tag.kind === 'push' && tag.changes[0]?.kind === 'tag' && tag.changes[0].name === 'v1.0.0');
    const del = parseEvent('github', new Headers({ 'x-github-event': 'push' }), { ...(fixture('github-push.json') as object), deleted: true, after: '0'.repeat(40) });
    assert.ok(del.kind === 'push' && del.changes[0]?.deleted === true);
    const zero = parseEvent('gitlab', new Headers({ 'x-gitlab-event': 'Push Hook' }), { ...(fixture('gitlab-push.json') as object), after: '0'.repeat(40) });
    assert.ok(zero.kind === 'push' && zero.changes[0]?.deleted === true, 'GitLab marks a deleted branch by an all-zero after');
    const bbDel = fixture('bitbucket-push.json') as { push: { changes: { new: unknown }[] } };
    (bbDel.push.changes[0] as { new: unknown }).new = null;
    const bd = parseEvent('bitbucket', new Headers({ 'x-event-key': 'repo:push' }), bbDel);
    assert.ok(bd.kind === 'push' && bd.changes[0]?.deleted === true && bd.changes[0].name === 'main');
  });

  it('name what is wrong with a malformed payload', () => {
    assert.throws(() => parseEvent('github', new Headers({ 'x-github-event': 'push' }), []), PayloadError);
    assert.throws(() => parseEvent('github', new Headers({ 'x-github-event': 'push' }), { ref: 'refs/heads/main' }), /repository/);
    assert.throws(() => parseEvent('generic', new Headers(), { repoURL: 'https://x/y' }), /branch/);
    assert.throws(() => parseEvent('bitbucket', new Headers({ 'x-event-key': 'repo:push' }), { repository: {} }), /push/);
  });

  it('check each signature scheme over the exact bytes, and refuse near misses', () => {
    const body = Buffer.from(JSON.stringify(fixture('github-push.json')));
    const s = 'It\'s a Secret to Everybody';
    const sig = hex(s, body);
    assert.ok(verifies('github', new Headers({ 'x-hub-signature-256': `sha256=${sig}` }), body, s));
    assert.ok(!verifies('github', new Headers({ 'x-hub-signature-256': sig }), body, s), 'the sha256= prefix is required');
    assert.ok(!verifies('github', new Headers({ 'x-hub-signature-256': `sha256=${sig}` }), Buffer.concat([body, Buffer.from(' ')]), s), 'one more byte');
    assert.ok(!verifies('github', new Headers({ 'x-hub-signature-256': `sha256=${sig}` }), body, `${s}!`));
    assert.ok(!verifies('github', new Headers(), body, s));
    assert.ok(verifies('gitea', new Headers({ 'x-gitea-signature': sig }), body, s));
    assert.ok(!verifies('gitea', new Headers({ 'x-gitea-signature': sig.slice(1) }), body, s));
    assert.ok(verifies('gitlab', new Headers({ 'x-gitlab-token': s }), body, s));
    assert.ok(!verifies('gitlab', new Headers({ 'x-gitlab-token': s.slice(0, -1) }), body, s));
    assert.ok(verifies('bitbucket', new Headers({ 'x-hub-signature': `sha256=${sig}` }), body, s));
    assert.ok(!verifies('bitbucket', new Headers({ 'x-hub-signature': `sha1=${sig}` }), body, s));
    assert.ok(verifies('generic', new Headers({ authorization: `Bearer ${s}` }), body, s));
    assert.ok(verifies('generic', new Headers({ 'x-hub-signature-256': `sha256=${sig}` }), body, s));
    assert.ok(!verifies('generic', new Headers({ authorization: `Basic ${s}` }), body, s));
  });

  it('read delivery ids, refusing unprintable or oversized ones', () => {
    assert.equal(deliveryId('github', new Headers({ 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' })), '72d3162e-cc78-11e3-81ab-4c9367dc0958');
    assert.equal(deliveryId('gitlab', new Headers({ 'x-gitlab-event-uuid': 'u-1' })), 'u-1');
    assert.equal(deliveryId('bitbucket', new Headers({ 'x-request-uuid': 'b-1' })), 'b-1');
    assert.equal(deliveryId('generic', new Headers({ 'x-delivery-id': 'x'.repeat(200) })), null);
    assert.equal(deliveryId('generic', new Headers()), null);
  });
});

describe('DeliveryMemory', () => {
  it('remembers ids for a while, and at most so many', () => {
    let now = 0;
    const m = new DeliveryMemory(3, 1000, () => now);
    assert.equal(m.check('a'), false);
    assert.equal(m.check('a'), true);
    m.check('b');
    m.check('c');
    m.check('d');
    assert.equal(m.size, 3);
    assert.equal(m.check('a'), false, 'the oldest was forgotten past the bound');
    now = 5000;
    assert.equal(m.check('d'), false, 'forgotten after the time limit');
    assert.equal(m.size, 1);
  });
});
