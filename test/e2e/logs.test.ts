// End to end: the kept output of functions (issue 12 item 3, PRODUCT.md §12) with the real server
// and a real git repository. A Lua, a JS and a Python function print a line per request and
// `zerverless logs APP /path` shows them with times; `follow=true` (and `logs -f`) receive a line
// printed after they started; a function printing 10 MB keeps at most its budget on disk; a secret
// env value printed by a function is neither in the log files nor in the API answer; another
// namespace's token gets 403/404; deleting the application removes its logs. A Node service's
// output is kept, followed and printed the same way.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { cliFromSource as run, envWithoutServer } from '../support/cli-src.js';
import { serviceRepos } from '../support/node-service.js';

const MANIFEST = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
  namespace: team
spec:
  functions:
    - path: /lua
      runtime: lua
      code: |
        function handle(req)
          print("lua says " .. (req.query.m or ""))
          return "ok"
        end
    - path: /js
      runtime: js
      codeFile: fn/log.js
    - path: /py
      runtime: python
      codeFile: fn/log.py
    - path: /secret
      runtime: python
      codeFile: fn/secret.py
      envFrom: [secrets/prod.env.age]
    - path: /flood
      runtime: lua
      code: |
        function handle(req)
          local line = string.rep("x", 1000)
          for i = 1, 10000 do print(i .. " " .. line) end
          return "flooded"
        end
`;

const JS = `export default {
  fetch(request) {
    console.log('js says ' + (new URL(request.url).searchParams.get('m') ?? ''));
    return new Response('ok');
  },
};
`;

const PY = `def handle(req):
    print("py says " + req["query"].get("m", ""))
    return "ok"
`;

const SECRET_PY = `import os, sys
def handle(req):
    print("the password is " + os.environ["DB_PASSWORD"])
    print("stderr has it too: " + os.environ["DB_PASSWORD"], file=sys.stderr)
    return "ok"
`;

interface Line { at: string; stream: string; line: string; function?: string; service?: string }

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += (await stat(join(e.parentPath, e.name))).size;
  return n;
}

async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    if ((await readFile(p)).includes(needle)) out.push(p);
  }
  return out;
}

/**
 * Follows `GET /api/gitops/applications/<query>`, makes `trigger` print, and reads the stream until
 * it holds `needle`; the caller aborts the follow.
 */
async function follow(h: Harness, query: string, trigger: string, needle: string): Promise<{ text: string; abort: AbortController; res: Response }> {
  const abort = new AbortController();
  const res = await fetch(`${h.url}/api/gitops/applications/${query}`, { headers: { authorization: `Bearer ${h.token}` }, signal: abort.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  assert.equal((await h.get(trigger)).status, 200);
  let text = '';
  while (!text.includes(needle)) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the followed answer ended early');
    text += new TextDecoder().decode(value);
  }
  return { text, abort, res };
}

describe('kept function logs (GET …/logs, zerverless logs)', () => {
  let h: Harness;
  let repo: TestRepo;
  let work: string;
  const secret = `pw-${randomBytes(8).toString('hex')}`;

  /** The NDJSON answer of GET …/logs with `query`, as lines. */
  async function logs(query: string, token?: string): Promise<{ status: number; lines: Line[]; text: string }> {
    const res = await fetch(`${h.url}/api/gitops/applications/app/logs?${query}`, { headers: { authorization: `Bearer ${token ?? h.token}` } });
    const text = await res.text();
    return { status: res.status, text, lines: res.status === 200 ? text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line) : [] };
  }

  /** Polls until the kept lines of `fn` satisfy `pred` (output may land a moment after the answer). */
  async function waitForLogs(query: string, pred: (lines: Line[]) => boolean): Promise<Line[]> {
    const deadline = Date.now() + 60_000;
    let last: Line[] = [];
    while (Date.now() < deadline) {
      last = (await logs(query)).lines;
      if (pred(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for logs ${query}; last ${JSON.stringify(last.slice(-5))}`);
  }

  before(async () => {
    h = await startHarness();
    work = await mkdtemp(join(tmpdir(), 'zv-logs-work-'));
    const recipient = (await h.call<{ recipient: string }>('GET', '/secrets/recipient')).body.recipient;
    repo = await TestRepo.create({ 'zerverless.yaml': MANIFEST, 'fn/log.js': JS, 'fn/log.py': PY, 'fn/secret.py': SECRET_PY });
    const plain = join(work, 'prod.env');
    await writeFile(plain, `DB_PASSWORD=${secret}\n`);
    execFileSync('mkdir', ['-p', join(repo.dir, 'secrets')]);
    execFileSync('age', ['-r', recipient, '-o', join(repo.dir, 'secrets', 'prod.env.age'), plain]);
    await rm(plain);
    await repo.commit({}, 'secret');
    const s = await h.register('app', 'team', repo.url);
    assert.equal(s.status, 'synced', JSON.stringify(s));
  });
  after(async () => {
    await h.close();
    await repo.remove();
    await rm(work, { recursive: true, force: true });
  });

  it('a Lua, a JS and a Python function print a line per request: the API and `zerverless logs APP /path` show them with times', async () => {
    for (const [path, word] of [['/lua', 'lua'], ['/js', 'js'], ['/py', 'py']] as const) {
      for (const m of ['one', 'two']) assert.equal((await h.get(`/team${path}?m=${m}`)).status, 200);
      const lines = await waitForLogs(`function=${path}`, (l) => l.filter((e) => e.line.startsWith(`${word} says`)).length === 2);
      assert.deepEqual(lines.map((e) => [e.function, e.stream, e.line]), [[path, 'stdout', `${word} says one`], [path, 'stdout', `${word} says two`]]);
      for (const e of lines) assert.match(e.at, ISO);
      const cli = await run('logs', 'app', path, '--server', h.url, '--token', h.token);
      assert.equal(cli.code, 0, cli.stderr);
      const printed = cli.stdout.trim().split('\n');
      assert.equal(printed.length, 2);
      assert.match(printed[0]!, new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z ${path} stdout ${word} says one$`));
      assert.match(printed[1]!, new RegExp(` ${path} stdout ${word} says two$`));
    }
    // Every function of the application at once, oldest first; tail and since.
    const all = (await logs('')).lines;
    assert.deepEqual(new Set(all.map((e) => e.function)), new Set(['/lua', '/js', '/py']));
    assert.equal((await logs('function=/py&tail=1')).lines.map((e) => e.line).join(), 'py says two');
    assert.equal((await logs('since=1h')).lines.length, all.length);
    assert.equal((await logs('since=2999-01-01T00:00:00Z')).lines.length, 0);
    const bad = await logs('since=yesterday');
    assert.equal(bad.status, 400);
    assert.equal((await logs('function=/py&service=web')).status, 400);
  });

  it('follow=true receives a line printed after it started; `zerverless logs -f` too', async () => {
    const { text, abort, res } = await follow(h, 'app/logs?function=/js&follow=true&tail=0', '/team/js?m=followed', 'js says followed');
    assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
    const line = JSON.parse(text.split('\n').find((l) => l.includes('followed'))!) as Line;
    assert.deepEqual({ ...line, at: 'x' }, { at: 'x', stream: 'stdout', line: 'js says followed', function: '/js' });
    abort.abort();

    // The CLI follows until it is stopped (SIGINT, as Ctrl-C).
    const entry = `import('./src/cli/main.ts').then((m) => m.main(process.argv.slice(1))).then((c) => process.exit(c))`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', entry, '--', 'logs', 'app', '/lua', '-f', '--tail', '0', '--server', h.url, '--token', h.token],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)), env: envWithoutServer(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // Requests until the follower (which needs a moment to start) shows one of them.
    const deadline = Date.now() + 60_000;
    for (let i = 0; !out.includes('lua says cli-'); i++) {
      assert.ok(Date.now() < deadline, `logs -f printed nothing: ${out} ${err}`);
      assert.equal((await h.get(`/team/lua?m=cli-${i}`)).status, 200);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(out, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z \/lua stdout lua says cli-\d+$/m);
    child.kill('SIGINT');
    assert.equal(await exited, 0, err);
  });

  it('a function printing 10 MB keeps at most its budget (1 MiB) on disk, with a note of what was dropped', async () => {
    assert.equal(await (await h.get('/team/flood')).text(), 'flooded');
    await waitForLogs('function=/flood', (l) => l.length > 0);
    const dir = join(h.dataDir, 'logs', 'team', 'app', '%2Fflood');
    assert.ok((await bytesUnder(dir)) <= 1024 * 1024, `${await bytesUnder(dir)} bytes on disk`);
    // Printing again: still bounded, and the newest lines are there.
    assert.equal(await (await h.get('/team/flood')).text(), 'flooded');
    // What was over the rate or the buffer is counted in a line of its own.
    await waitForLogs('function=/flood', (l) => l.some((e) => e.stream === 'stderr' && /^\[zerverless\] \d+ lines? dropped/.test(e.line)));
    assert.ok((await bytesUnder(dir)) <= 1024 * 1024, `${await bytesUnder(dir)} bytes on disk`);
    // Other functions still log (a chatty function does not starve them).
    assert.equal((await h.get('/team/py?m=after-flood')).status, 200);
    await waitForLogs('function=/py', (l) => l.some((e) => e.line === 'py says after-flood'));
  });

  it('a secret env value printed by a function is in neither the log files nor the API answer', async () => {
    assert.equal((await h.get('/team/secret')).status, 200);
    const lines = await waitForLogs('function=/secret', (l) => l.length === 2);
    assert.deepEqual(lines.map((e) => [e.stream, e.line]).sort(), [['stderr', 'stderr has it too: [redacted]'], ['stdout', 'the password is [redacted]']]);
    assert.ok(!(await logs('')).text.includes(secret));
    assert.ok(!(await logs('function=/secret')).text.includes(secret));
    assert.deepEqual(await filesContaining(join(h.dataDir, 'logs'), secret), []);
  });

  it("another namespace's token gets 403 (naming the namespace) or 404 (not naming it); a reader of the namespace may read", async () => {
    const other = await h.call<{ token: string }>('POST', '/tokens', { body: { name: 'other-ns', role: 'deployer', namespaces: ['other'] } });
    assert.equal((await logs('namespace=team&function=/py', other.body.token)).status, 403);
    assert.equal((await logs('function=/py', other.body.token)).status, 404);
    const reader = await h.call<{ token: string }>('POST', '/tokens', { body: { name: 'team-reader', role: 'reader', namespaces: ['team'] } });
    const r = await logs('function=/py', reader.body.token);
    assert.equal(r.status, 200);
    assert.ok(r.lines.length > 0);
    const cli = await run('logs', 'app', '/py', '--server', h.url, '--token', other.body.token);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /APP_NOT_FOUND|not found/);
  });

  it('a follower ends when the server stops; the kept lines are there after a restart', async () => {
    const before = (await logs('function=/py')).lines;
    assert.ok(before.length > 0);
    const res = await fetch(`${h.url}/api/gitops/applications/app/logs?function=/py&follow=true`, { headers: { authorization: `Bearer ${h.token}` } });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    // The kept lines come first.
    let text = '';
    while (text.split('\n').filter((l) => l !== '').length < before.length) {
      const { value, done } = await reader.read();
      assert.ok(!done);
      text += new TextDecoder().decode(value);
    }
    const stopping = h.restart();
    for (;;) {
      const { done } = await reader.read().catch(() => ({ done: true }));
      if (done) break;
    }
    await stopping;
    assert.deepEqual((await logs('function=/py')).lines, before);
  });

  it('deleting the application removes its logs', async () => {
    const dir = join(h.dataDir, 'logs', 'team', 'app');
    assert.ok(existsSync(dir));
    assert.equal((await h.api('DELETE', '/app?namespace=team')).status, 204);
    assert.ok(!existsSync(dir), 'the logs folder of the application is gone');
  });
});

/** A Node service that prints a line per request (not for /health). */
const LOGGING_SERVICE_JS = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(200); return res.end('ok'); }
  console.log('web says ' + req.url);
  res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

describe('kept service logs (GET …/logs?service=, zerverless logs APP SERVICE)', () => {
  let h: Harness;
  let svc: TestRepo;
  let site: TestRepo;

  async function logs(query: string): Promise<{ status: number; lines: Line[] }> {
    const res = await fetch(`${h.url}/api/gitops/applications/svc/logs?${query}`, { headers: { authorization: `Bearer ${h.token}` } });
    const text = await res.text();
    return { status: res.status, lines: res.status === 200 ? text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line) : [] };
  }

  before(async () => {
    h = await startHarness();
    ({ svc, app: site } = await serviceRepos({ v1: LOGGING_SERVICE_JS }));
    const st = await h.register('svc', 'team', site.url);
    assert.equal(st.status, 'synced', st.message);
    await h.waitFor('svc', (s) => s.services[0]?.health === 'healthy', 120_000);
  });
  after(async () => {
    await h.close();
    await svc.remove();
    await site.remove();
  });

  it("keeps a service's output on disk with times; follows it; the CLI prints it; delete removes it", async () => {
    assert.equal((await h.get('/team/web/x?m=one')).status, 200);
    const deadline = Date.now() + 60_000;
    let lines: Line[] = [];
    while (!lines.some((e) => e.line === 'web says /web/x?m=one')) {
      assert.ok(Date.now() < deadline, `no line: ${JSON.stringify(lines.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 100));
      lines = (await logs('service=web')).lines;
    }
    const line = lines.find((e) => e.line === 'web says /web/x?m=one')!;
    assert.equal(line.service, 'web');
    assert.equal(line.stream, 'stdout');
    assert.match(line.at, ISO);
    // The runtime's own notes (fetch, install, start) are kept too.
    assert.ok(lines.some((e) => e.stream === 'system'));
    assert.equal((await logs('service=nope')).status, 404);
    assert.ok(existsSync(join(h.dataDir, 'logs', 'team', 'svc', 'web')));

    // Followed: a line printed after the follow started arrives.
    const { abort } = await follow(h, 'svc/logs?service=web&follow=true&tail=0', '/team/web/x?m=followed', 'web says /web/x?m=followed');
    abort.abort();

    // Today's `zerverless logs APP SERVICE` keeps working, with the service's name on each line.
    const cli = await run('logs', 'svc', 'web', '--tail', '1', '--server', h.url, '--token', h.token);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z web stdout web says \/web\/x\?m=followed\n$/);

    assert.equal((await h.api('DELETE', '/svc')).status, 204);
    assert.ok(!existsSync(join(h.dataDir, 'logs', 'team', 'svc')));
  });
});
