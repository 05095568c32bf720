// End to end over loopback: a real git repository registered with the real server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestRepo } from '../support/repo.js';
import { errorCode, startHarness, type Harness } from '../support/server.js';
import { baseFiles, manifest } from './fixtures.js';

describe('functions and static sites from git', () => {
  let h: Harness;
  let repo: TestRepo;

  before(async () => {
    h = await startHarness();
    repo = await TestRepo.create(baseFiles());
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('registers, syncs, and every runtime answers with the request fields', async () => {
    const st = await h.register('app', 'team', repo.url);
    assert.equal(st.status, 'synced', st.message);
    assert.equal(st.source.commit, repo.head());
    assert.match(st.lastSync ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(st.functions.map((f) => [f.path, f.runtime, f.url, f.status]), [
      ['/lua', 'lua', '/team/lua', 'ready'],
      ['/py', 'python', '/team/py', 'ready'],
      ['/js', 'js', '/team/js', 'ready'],
      ['/ts', 'js', '/team/ts', 'ready'],
    ]);
    assert.deepEqual(st.static, { dir: 'site', files: 4, url: '/static/team/' });
    for (const [path, runtime] of [['/lua', 'lua'], ['/py', 'python'], ['/js', 'js'], ['/ts', 'ts']]) {
      const res = await h.get(`/team${path}/sub/x?a=1&a=2&b=two`, { method: 'POST', headers: { 'x-h': 'v' }, body: 'hello' });
      assert.equal(res.status, 200, `${path}: ${res.status}`);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const body = await res.json();
      assert.deepEqual(body, { runtime, method: 'POST', path: `${path}/sub/x`, query: { a: '1', b: 'two' }, xh: 'v', body: 'hello' }, path);
    }
  });

  it('serves static files with index.html, ETag/304, HEAD, Range and content types', async () => {
    const index = await h.get('/static/team/');
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(await index.text(), '<h1>v1</h1>');
    const etag = index.headers.get('etag');
    assert.ok(etag);
    assert.equal((await h.get('/static/team/', { headers: { 'if-none-match': etag } })).status, 304);
    const css = await h.get('/static/team/css/app.css');
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    await css.text();
    const post = await h.get('/static/team/about.txt', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const head = await h.get('/static/team/about.txt', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '8');
    assert.equal(await head.text(), '');
    const range = await h.get('/static/team/about.txt', { headers: { range: 'bytes=0-4' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers.get('content-range'), 'bytes 0-4/8');
    assert.equal(await range.text(), 'about');
    const bad = await h.get('/static/team/about.txt', { headers: { range: 'bytes=100-' } });
    assert.equal(bad.status, 416);
    await bad.text();
    const dir = await h.get('/static/team/css', { redirect: 'manual' });
    assert.equal(dir.status, 404, 'a folder without index.html is not served');
    const sub = await h.get('/static/team/docs?x=1', { redirect: 'manual' });
    assert.equal(sub.status, 301);
    assert.equal(sub.headers.get('location'), '/static/team/docs/?x=1');
    assert.equal(await (await h.get('/static/team/docs/')).text(), 'docs');
    const encoded = await h.get('/static/%74eam/index.html');
    assert.equal(encoded.status, 404, 'the namespace segment is matched as sent');
    const missing = await h.get('/static/team/nope.txt');
    assert.equal(missing.status, 404);
    assert.equal((await errorCode(missing)), 'NOT_FOUND');
  });

  it('a commit + sync serves the new answer; removed functions and files answer 404', async () => {
    await repo.commit({
      // spec.source naming another repository: the registration wins, with a warning (PRODUCT.md §3)
      'zerverless.yaml': manifest({ lua: 'return "lua v2"' }).replace(/ {4}- path: \/py\n(.*\n){2}/, '')
        .replace('spec:\n', 'spec:\n  source:\n    repoURL: https://github.com/someone/elsewhere\n'),
      'site/about.txt': null,
      'site/index.html': '<h1>v2</h1>',
    });
    const st = await h.sync('app');
    assert.equal(st.status, 'synced', st.message);
    assert.equal(st.source.commit, repo.head());
    assert.equal(await (await h.get('/team/lua')).text(), 'lua v2');
    const py = await h.get('/team/py');
    assert.equal(py.status, 404);
    assert.equal((await errorCode(py)), 'NOT_FOUND');
    assert.equal((await h.get('/static/team/about.txt')).status, 404);
    assert.equal(await (await h.get('/static/team/index.html')).text(), '<h1>v2</h1>');
    assert.equal(st.functions.length, 3);
    assert.ok((st.warnings ?? []).some((w) => /^zerverless\.yaml:\d+:\d+: spec\.source\.repoURL: is "https:\/\/github\.com\/someone\/elsewhere" but the application is registered with /.test(w)),
      JSON.stringify(st.warnings));
  });

  it('an invalid manifest fails the sync naming the line, and the old version keeps serving', async () => {
    const good = repo.head();
    await repo.commit({ 'zerverless.yaml': manifest({ lua: 'return "lua v3"' }).replace('runtime: python', 'runtime: cobol') });
    let st = await h.sync('app');
    assert.equal(st.status, 'error');
    assert.match(st.message, /zerverless\.yaml:\d+:\d+/);
    assert.match(st.message, /runtime/);
    assert.equal(st.source.commit, good, 'the served commit did not change');
    assert.equal(await (await h.get('/team/lua')).text(), 'lua v2');

    await repo.commit({ 'zerverless.yaml': 'apiVersion: zerverless.io/v1\nkind: Application\nmetadata: [unclosed\n' });
    st = await h.sync('app');
    assert.equal(st.status, 'error');
    assert.match(st.message, /zerverless\.yaml:\d+:\d+/);
    assert.equal(await (await h.get('/team/lua')).text(), 'lua v2');
  });

  it('code that does not compile fails the sync and changes nothing', async () => {
    await repo.commit({ 'zerverless.yaml': manifest({ lua: 'return "never"' }), 'fn/echo.js': 'export default { fetch( {' });
    const st = await h.sync('app');
    assert.equal(st.status, 'error');
    assert.match(st.message, /FUNCTION_COMPILE_ERROR/);
    assert.match(st.message, /fn\/echo\.js:1/);
    assert.equal(await (await h.get('/team/lua')).text(), 'lua v2');
  });

  it('a codeFile outside the tree and a static symlink to /etc/passwd are errors; nothing is served', async () => {
    const repo2 = await TestRepo.create({ 'zerverless.yaml': manifest({ namespace: 'evil' }).replace('codeFile: fn/echo.py', 'codeFile: ../../etc/passwd'), 'fn/echo.js': 'x', 'fn/echo.ts': 'x', 'site/index.html': 'x' });
    try {
      const st = await h.register('evil', 'evil', repo2.url);
      assert.equal(st.status, 'error');
      assert.match(st.message, /codeFile/);
      assert.equal((await h.get('/evil/lua')).status, 404);

      await repo2.link('site/passwd', '/etc/passwd');
      await repo2.commit({ 'zerverless.yaml': manifest({ namespace: 'evil' }).replace(/ {4}- path: \/py\n(.*\n){2}/, '').replace(/ {4}- path: \/(js|ts)\n(.*\n){2}/g, '') });
      const st2 = await h.sync('evil');
      assert.equal(st2.status, 'error');
      assert.match(st2.message, /PATH_ESCAPE/);
      assert.match(st2.message, /passwd/);
      assert.equal((await h.get('/static/evil/passwd')).status, 404);
      assert.equal((await h.get('/evil/lua')).status, 404);
    } finally {
      await repo2.remove();
    }
  });

  it('survives a restart with the repository moved away', async () => {
    const before = await h.api('GET', '/app');
    const moved = `${repo.dir}-moved`;
    const { rename } = await import('node:fs/promises');
    await rename(repo.dir, moved);
    try {
      await h.restart();
      assert.equal(await (await h.get('/team/lua')).text(), 'lua v2');
      assert.equal(await (await h.get('/static/team/index.html')).text(), '<h1>v2</h1>');
      const after = await h.api('GET', '/app');
      assert.equal(after.body.source.commit, before.body.source.commit);
      assert.equal(after.body.status, before.body.status);
      assert.equal(after.body.message, before.body.message);
      // a sync now fails on git, and still nothing changes
      const st = await h.sync('app');
      assert.equal(st.status, 'error');
      assert.match(st.message, /GIT_/);
      assert.equal(await (await h.get('/team/lua')).text(), 'lua v2');
    } finally {
      await rename(moved, repo.dir);
    }
  });

  it('deleting the application removes everything it deployed', async () => {
    const r = await h.api('DELETE', '/app');
    assert.equal(r.status, 204);
    assert.equal((await h.get('/team/lua')).status, 404);
    assert.equal((await h.get('/static/team/index.html')).status, 404);
    assert.equal((await h.api('GET', '/app')).status, 404);
  });
});
