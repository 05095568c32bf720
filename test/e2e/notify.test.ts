// Notifications (PRODUCT.md §11) through the real server to a real HTTP receiver this test runs on
// loopback: a commit that syncs → `synced`; a broken commit → `error`; fixing it → `recovered`;
// an identical result again is no event; the signature verifies with the server's and the
// application's secret; Slack's format; a receiver that answers 500 twice gets it on the third
// try; a receiver that never answers does not hold up a sync; secrets are never shown.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { luaManifest } from './fixtures.js';
import { cliFromSource } from '../support/cli-src.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A webhook receiver: records every POST; /flaky answers 500 to its first two, /hang never answers. */
class Receiver {
  readonly got: Received[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly hung: ServerResponse[] = [];
  private flaky = 0;
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.got.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        for (const w of this.waiters) w();
        if (path === '/hang') {
          this.hung.push(res);
          return;
        }
        if (path === '/flaky' && ++this.flaky <= 2) {
          res.writeHead(500).end('not yet');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The requests to `path` so far. */
  at(path: string): Received[] {
    return this.got.filter((g) => g.path === path);
  }

  /** Waits (on arrivals, with a generous deadline) until `path` has received `n` requests. */
  async waitFor(path: string, n: number, timeoutMs = 60_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.at(path).length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${path}: ${this.at(path).length} of ${n} notifications arrived: ${JSON.stringify(this.at(path).map((g) => g.body))}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 1000));
        this.waiters.add(done);
      });
    }
    return this.at(path);
  }

  async stop(): Promise<void> {
    for (const r of this.hung) r.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}

const events = (rs: Received[]): string[] => rs.map((r) => (JSON.parse(r.body) as { event: string }).event);
const sign = (secret: string, body: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('notifications', () => {
  let h: Harness;
  let repo: TestRepo;
  let rx: Receiver;

  before(async () => {
    rx = new Receiver();
    await rx.start();
    h = await startHarness({ notifyUrls: [`${rx.url}/server`], notifySecret: 'server-secret' });
    repo = await TestRepo.create({ 'zerverless.yaml': luaManifest('one') });
  });
  after(async () => {
    await h.close();
    await rx.stop();
    await repo.remove();
  });

  it('posts synced, error and recovered on transitions, signed, to the server URL and the application targets', async () => {
    const reg = await h.api('POST', '/', {
      name: 'web', namespace: 'note', source: { repoURL: repo.url },
      notify: [
        { url: `${rx.url}/app`, secret: 'app-secret-value', events: ['synced', 'error', 'recovered'] },
        { url: `${rx.url}/slack`, format: 'slack' },
        { url: `${rx.url}/errors-only`, events: ['error'] },
      ],
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.ok(!JSON.stringify(reg.body).includes('app-secret-value'), 'the secret is not in the answer');
    const first = await h.waitFor('web', (s) => s.status === 'synced', 120_000, 'note');

    const [s1] = await rx.waitFor('/server', 1);
    const body = JSON.parse(s1?.body ?? '{}') as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['application', 'at', 'commit', 'event', 'message', 'status']);
    assert.equal(body.event, 'synced');
    assert.deepEqual(body.application, { namespace: 'note', name: 'web' });
    assert.equal(body.commit, first.source.commit);
    assert.equal(body.status, 'synced');
    assert.equal(s1?.headers['x-zerverless-signature'], sign('server-secret', s1?.body ?? ''), 'signed with --notify-secret');
    const [a1] = await rx.waitFor('/app', 1);
    assert.equal(a1?.headers['x-zerverless-signature'], sign('app-secret-value', a1?.body ?? ''), "signed with the application's secret");
    const [slack] = await rx.waitFor('/slack', 1);
    const text = (JSON.parse(slack?.body ?? '{}') as { text?: string }).text ?? '';
    assert.match(text, /note\/web synced at [0-9a-f]{12}/);

    // The same commit again: no event. Then a broken commit: error (and only error).
    assert.equal((await h.sync('web', 'note')).status, 'synced');
    await repo.commit({ 'zerverless.yaml': 'kind: [' });
    assert.equal((await h.sync('web', 'note')).status, 'error');
    await rx.waitFor('/server', 2);
    const [err] = await rx.waitFor('/errors-only', 1);
    assert.match((JSON.parse(err?.body ?? '{}') as { message: string }).message, /^MANIFEST_INVALID/);

    // Fixed: recovered.
    await repo.commit({ 'zerverless.yaml': luaManifest('two') });
    const fixed = await h.sync('web', 'note');
    assert.equal(fixed.status, 'synced');
    await rx.waitFor('/server', 3);
    assert.deepEqual(events(rx.at('/server')), ['synced', 'error', 'recovered']);
    assert.deepEqual(events(await rx.waitFor('/app', 3)), ['synced', 'error', 'recovered']);
    assert.equal((JSON.parse(rx.at('/server')[2]?.body ?? '{}') as { commit: string }).commit, fixed.source.commit);

    // Targets are shown without their secrets.
    const targets = await h.api<{ notify: { url: string; secret?: boolean }[] }>('GET', '/web/notify?namespace=note');
    assert.equal(targets.status, 200);
    assert.deepEqual(targets.body.notify.map((t) => [t.url.slice(rx.url.length), t.secret ?? false]), [['/app', true], ['/slack', false], ['/errors-only', false]]);
    assert.ok(!JSON.stringify(targets.body).includes('app-secret-value'));
    const metrics = await (await h.get('/metrics', { headers: { authorization: `Bearer ${h.token}` } })).text();
    assert.match(metrics, /zerverless_notifications_total\{result="sent"\} \d+/);
  });

  it('retries a receiver that answers 500: delivered on the third try', async () => {
    const r = await h.api('POST', '/', { name: 'flaky', namespace: 'flaky', source: { repoURL: repo.url }, notify: [{ url: `${rx.url}/flaky`, events: ['synced'] }] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const got = await rx.waitFor('/flaky', 3);
    assert.equal(got.length, 3, 'two refusals, then accepted: no fourth try');
    assert.deepEqual(new Set(got.map((g) => g.body)).size, 1, 'the same notification each time');
    assert.equal((JSON.parse(got[2]?.body ?? '{}') as { event: string }).event, 'synced');
  });

  it('a receiver that never answers does not hold up syncs', async () => {
    const r = await h.api('POST', '/', { name: 'slow', namespace: 'slow', source: { repoURL: repo.url }, notify: [{ url: `${rx.url}/hang` }] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await h.waitFor('slow', (s) => s.status === 'synced', 120_000, 'slow');
    await rx.waitFor('/hang', 1);
    // The notification is still waiting for its answer; syncs go on and answer.
    await repo.commit({ 'zerverless.yaml': 'kind: [' });
    assert.equal((await h.sync('slow', 'slow')).status, 'error');
    await repo.commit({ 'zerverless.yaml': luaManifest('three') });
    assert.equal((await h.sync('slow', 'slow')).status, 'synced');
  });

  it('apps add --notify registers notification targets', async () => {
    const r = await cliFromSource('apps', 'add', 'viacli', repo.url, '--namespace', 'viacli', '--notify', `${rx.url}/cli-a`, '--notify', `${rx.url}/cli-b`, '--server', h.url, '--token', h.token);
    assert.equal(r.code, 0, r.stderr);
    const targets = await h.api<{ notify: { url: string; format: string }[] }>('GET', '/viacli/notify?namespace=viacli');
    assert.deepEqual(targets.body.notify, [{ url: `${rx.url}/cli-a`, format: 'json' }, { url: `${rx.url}/cli-b`, format: 'json' }]);
    await rx.waitFor('/cli-b', 1);
  });

  it("shows a reader a target's scheme and host only: a Slack webhook URL is a credential", async () => {
    const slackUrl = `${rx.url}/services/T000/B000/XXXXsecretpath`;
    const reg = await h.api('POST', '/', { name: 'shh', namespace: 'shh', source: { repoURL: repo.url }, notify: [{ url: slackUrl, format: 'slack' }] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const reader = (await h.call<{ token: string }>('POST', '/tokens', { body: { name: 'notify-reader', role: 'reader', namespaces: ['shh'] } })).body.token;
    const seen = await h.call<{ notify: { url: string; format: string }[] }>('GET', '/gitops/applications/shh/notify?namespace=shh', { token: reader });
    assert.equal(seen.status, 200);
    assert.ok(!JSON.stringify(seen.body).includes('XXXXsecretpath'), JSON.stringify(seen.body));
    assert.equal(seen.body.notify[0]?.url, `${new URL(rx.url).protocol}//${new URL(rx.url).host}/…`);
    assert.equal(seen.body.notify[0]?.format, 'slack');
    const admin = await h.api<{ notify: { url: string }[] }>('GET', '/shh/notify?namespace=shh');
    assert.equal(admin.body.notify[0]?.url, slackUrl, 'who may change the targets sees them whole');
  });

  it('refuses targets that are not http(s) URLs, too many, or carry a password', async () => {
    const bad = async (notify: unknown) => {
      const res = await h.api<{ error: { code: string; message: string } }>('POST', '/', { name: 'bad', namespace: 'bad', source: { repoURL: repo.url }, notify });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      return res.body.error.message;
    };
    assert.match(await bad([{ url: 'ftp://example.com/x' }]), /notify\.0\.url: must be an http or https URL/);
    assert.match(await bad([{ url: 'https://u:p@example.com/x' }]), /notify\.0\.url: must not carry/);
    assert.match(await bad([{ url: 'https://example.com/x', format: 'xml' }]), /notify/);
    assert.match(await bad([{ url: 'https://example.com/x', events: ['nope'] }]), /notify/);
    assert.match(await bad(Array.from({ length: 11 }, (_, i) => ({ url: `https://example.com/${i}` }))), /notify/);
    assert.equal((await h.api('GET', '/bad?namespace=bad')).status, 404, 'nothing was registered');
  });
});
