// GET /api/events through the real server (PRODUCT.md §12): a push's sync steps and the status
// change arrive in order; a reader of namespace a never sees namespace b (not even its names); a
// reconnect with Last-Event-ID gets exactly the missed events; a ticket of POST /api/events/ticket
// opens the stream once (EventSource); `zerverless apps sync` shows the steps as they happen.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { get, type ClientRequest } from 'node:http';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { luaManifest } from './fixtures.js';
import { cliFromSource as cli } from '../support/cli-src.js';
import { SseParser, type SseEvent } from '../../src/cli/progress.js';
import { serviceRepos } from '../support/node-service.js';

interface Stream {
  status: number;
  events: SseEvent[];
  raw: string[];
  /** Resolves with the events so far once `pred` holds for them. */
  until(pred: (events: SseEvent[]) => boolean, what: string): Promise<SseEvent[]>;
  close(): void;
}

function open(url: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    let req: ClientRequest | undefined = undefined;
    req = get(url, { headers }, (res) => {
      const parser = new SseParser();
      const events: SseEvent[] = [];
      const raw: string[] = [];
      const waiters: (() => void)[] = [];
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw.push(chunk);
        events.push(...parser.push(chunk));
        for (const w of [...waiters]) w();
      });
      resolve({
        status: res.statusCode ?? 0,
        events,
        raw,
        until: (pred, what) => new Promise((ok, fail) => {
          const timer = setTimeout(() => fail(new Error(`timed out waiting for ${what}; got ${events.map((e) => e.event).join(',')}`)), 120_000);
          const check = (): void => {
            if (!pred(events)) return;
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            ok(events);
          };
          waiters.push(check);
          check();
        }),
        close: () => req?.destroy(),
      });
    });
    req.on('error', reject);
  });
}

const data = (e: SseEvent): Record<string, unknown> => JSON.parse(e.data) as Record<string, unknown>;
const stepsOf = (events: SseEvent[]): string[] => events.filter((e) => e.event === 'step').map((e) => `${String(data(e).step)}:${String(data(e).phase)}`);
const finished = (app: string) => (events: SseEvent[]): boolean =>
  events.some((e) => e.event === 'status' && data(e).app === app && (data(e).status as { status?: string } | undefined)?.status === 'synced'
    && events.indexOf(e) > events.findIndex((f) => f.event === 'step' && data(f).app === app && data(f).step === 'finish' && data(f).phase === 'end'));

describe('GET /api/events', () => {
  let h: Harness;
  let repoA: TestRepo;
  let repoB: TestRepo;
  let readerA: string;

  before(async () => {
    h = await startHarness();
    repoA = await TestRepo.create({ 'zerverless.yaml': luaManifest('one') });
    repoB = await TestRepo.create({ 'zerverless.yaml': luaManifest('bee') });
    await h.register('alpha', 'a', repoA.url);
    await h.register('bravo-hidden', 'b', repoB.url);
    const t = await h.call<{ token: string }>('POST', '/tokens', { body: { name: 'reader-a', role: 'reader', namespaces: ['a'] } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    readerA = t.body.token;
  });
  after(async () => {
    await h.close();
    await repoA.remove();
    await repoB.remove();
  });

  it('shows a push\'s sync steps, then the status change, in order', async () => {
    const s = await open(`${h.url}/api/events?app=alpha`, { authorization: `Bearer ${h.token}` });
    assert.equal(s.status, 200);
    const commit = await repoA.commit({ 'zerverless.yaml': luaManifest('two') });
    const synced = await h.sync('alpha', 'a');
    assert.equal(synced.status, 'synced');
    const events = await s.until(finished('alpha'), 'the sync steps and the status');
    s.close();
    const steps = stepsOf(events);
    const names = ['head', 'snapshot', 'read', 'ownership', 'plan', 'prepare', 'commit', 'services', 'finish'];
    assert.deepEqual(steps, names.flatMap((n) => [`${n}:start`, `${n}:end`]));
    const ids = events.filter((e) => e.id !== undefined).map((e) => Number(e.id));
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y), 'ids grow');
    const commitEnd = events.find((e) => e.event === 'step' && data(e).step === 'commit' && data(e).phase === 'end');
    assert.equal(data(commitEnd as SseEvent).commit, commit);
    assert.equal(data(commitEnd as SseEvent).namespace, 'a');
    assert.equal(typeof data(commitEnd as SseEvent).duration, 'number');
    const status = events.filter((e) => e.event === 'status').at(-1) as SseEvent;
    assert.equal((data(status).status as { source: { commit: string } }).source.commit, commit);
    assert.ok(events.every((e) => data(e).app === 'alpha'), '?app= keeps only that application');
  });

  it('never shows a reader of namespace a anything of namespace b', async () => {
    const s = await open(`${h.url}/api/events`, { authorization: `Bearer ${readerA}` });
    assert.equal(s.status, 200);
    await repoB.commit({ 'zerverless.yaml': luaManifest('bee two') });
    await repoA.commit({ 'zerverless.yaml': luaManifest('three') });
    // b first: by the time a's sync has finished, b's events were long published.
    await h.sync('bravo-hidden', 'b');
    await h.sync('alpha', 'a');
    await s.until(finished('alpha'), "a's sync");
    s.close();
    assert.ok(s.events.every((e) => e.event === 'reset' || data(e).namespace === 'a'), 'only namespace a');
    assert.ok(!s.raw.join('').includes('bravo-hidden'), "never b's application name");
    const refused = await h.call('GET', '/events?namespace=b', { token: readerA });
    assert.equal(refused.status, 403);
  });

  it('replays exactly the missed events after Last-Event-ID', async () => {
    // A witness stays connected all along; the other client goes away and comes back.
    const witness = await open(`${h.url}/api/events?namespace=a`, { authorization: `Bearer ${h.token}` });
    const gone = await open(`${h.url}/api/events?namespace=a`, { authorization: `Bearer ${h.token}` });
    await repoA.commit({ 'zerverless.yaml': luaManifest('four') });
    await h.sync('alpha', 'a');
    const seen = await gone.until(finished('alpha'), 'the first sync');
    gone.close();
    const lastId = seen.filter((e) => e.id !== undefined).at(-1)?.id as string;
    await repoA.commit({ 'zerverless.yaml': luaManifest('five') });
    await h.sync('alpha', 'a');
    const all = await witness.until((ev) => ev.filter((e) => e.event === 'status').length >= 2 && finished('alpha')(ev.slice(ev.findIndex((e) => e.id === lastId) + 1)), 'the second sync');
    const missed = all.slice(all.findIndex((e) => e.id === lastId) + 1);
    const back = await open(`${h.url}/api/events?namespace=a`, { authorization: `Bearer ${h.token}`, 'last-event-id': lastId });
    const replayed = await back.until((ev) => ev.filter((e) => e.id !== undefined).length >= missed.length, 'the replay');
    back.close();
    witness.close();
    assert.deepEqual(replayed.filter((e) => e.id !== undefined).slice(0, missed.length).map((e) => `${e.id} ${e.event}`), missed.map((e) => `${e.id} ${e.event}`));
    // An id no longer kept (or of another run of the server) asks the client to read the list again.
    const old = await open(`${h.url}/api/events`, { authorization: `Bearer ${h.token}`, 'last-event-id': '1' });
    await old.until((ev) => ev.some((e) => e.event === 'reset'), 'a reset');
    old.close();
  });

  it('opens once with a ticket instead of the Authorization header', async () => {
    const t = await h.call<{ ticket: string }>('POST', '/events/ticket', { token: readerA });
    assert.equal(t.status, 201);
    const s = await open(`${h.url}/api/events?ticket=${encodeURIComponent(t.body.ticket)}`);
    assert.equal(s.status, 200);
    s.close();
    const again = await fetch(`${h.url}/api/events?ticket=${encodeURIComponent(t.body.ticket)}`);
    assert.equal(again.status, 401, 'a ticket is used once');
    await again.body?.cancel();
    const elsewhere = await fetch(`${h.url}/api/gitops/applications?ticket=${encodeURIComponent(t.body.ticket)}`);
    assert.equal(elsewhere.status, 401, 'only the event stream takes a ticket');
    await elsewhere.body?.cancel();
  });

  it('zerverless apps sync shows the steps as they happen; --quiet does not', async () => {
    await repoA.commit({ 'zerverless.yaml': luaManifest('six') });
    const r = await cli('apps', 'sync', 'alpha', '--namespace', 'a', '--server', h.url, '--token', h.token);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /head [\d.]+s · snapshot [\d.]+s · read [\d.]+s · plan [\d.]+s · prepare [\d.]+s · commit [\d.]+s/);
    assert.match(r.stdout, /synced/);
    await repoA.commit({ 'zerverless.yaml': luaManifest('seven') });
    const q = await cli('apps', 'sync', 'alpha', '--namespace', 'a', '--server', h.url, '--token', h.token, '--quiet');
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stderr, '');
  });

  it("groups a service's install, deploy and health events under its application", async () => {
    const { svc, app } = await serviceRepos();
    try {
      const s = await open(`${h.url}/api/events?app=svcapp`, { authorization: `Bearer ${h.token}` });
      const r = await h.api('POST', '/', { name: 'svcapp', namespace: 's', source: { repoURL: app.url, branch: 'main' } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const events = await s.until(finished('svcapp'), 'the sync of the service');
      s.close();
      const of = (type: string) => events.filter((e) => e.event === type).map((e) => data(e));
      assert.ok(of('build').some((d) => d.service === 'web' && d.phase === 'end' && d.result === 'ok'), 'the install of web');
      assert.ok(of('deploy').some((d) => d.service === 'web' && d.phase === 'end' && d.result === 'ok'), 'the deploy of web');
      assert.ok(events.every((e) => data(e).app === 'svcapp' && data(e).namespace === 's'));
    } finally {
      await svc.remove();
      await app.remove();
    }
  });

  it('zerverless apps add --wait waits for the first sync, showing its steps', async () => {
    const r = await cli('apps', 'add', 'charlie', repoB.url, '--namespace', 'c', '--wait', '--server', h.url, '--token', h.token);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /snapshot [\d.]+s · .*commit [\d.]+s/);
    assert.match(r.stdout, /synced/);
    const s = await h.api('GET', '/charlie?namespace=c');
    assert.equal(s.body.status, 'synced');
  });
});
