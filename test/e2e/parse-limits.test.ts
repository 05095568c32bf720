// No input can stall the server (issue 8.1), through the real server and a real git repository:
// huge or deeply nested zerverless.yaml, app.json and app.config files each end the sync with a
// clear limit error at `file:line:col`, the last good revision keeps serving, and /healthz keeps
// answering quickly while the sync runs (the parse happens off the main thread, bounded).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runValidate } from '../../src/cli/validate.js';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import type { AppStatus } from '../../src/core/status.js';

const GOOD = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: web
spec:
  functions:
    - path: /hi
      runtime: lua
      code: |
        function handle(req) return "one" end
`;

const HEAD = 'apiVersion: zerverless.io/v1\nkind: Application\n';
/** One flow mapping of `n` keys as the value of metadata. */
const flowKeys = (n: number, key = (i: number) => `k${i}`): string => {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(`${key(i)}: ${i}`);
  return `${HEAD}metadata: {${parts.join(', ')}}\nspec: {}\n`;
};

/** Healthz must answer within this while a sync parses a hostile file (an availability bound, not a benchmark). */
const HEALTHZ_BOUND_MS = 1000;
/** The sync must end within this ("within seconds", generous for a loaded 2-core machine). */
const SYNC_BOUND_MS = 30_000;

interface Measured {
  status: AppStatus;
  syncMs: number;
  healthzMaxMs: number;
  probes: number;
}

/** Runs POST …/sync while probing /healthz one request after another; the longest probe is the figure. */
async function syncWhileProbing(h: Harness): Promise<Measured> {
  let done = false;
  let healthzMaxMs = 0;
  let probes = 0;
  const probe = (async () => {
    while (!done) {
      const t = performance.now();
      const res = await h.get('/healthz');
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      healthzMaxMs = Math.max(healthzMaxMs, performance.now() - t);
      probes++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const t0 = performance.now();
  try {
    const status = await h.sync('web', 'limits');
    return { status, syncMs: performance.now() - t0, healthzMaxMs, probes };
  } finally {
    done = true;
    await probe;
  }
}

describe('no input can stall the server', () => {
  let h: Harness;
  let repo: TestRepo;
  let served: string;

  before(async () => {
    h = await startHarness();
    repo = await TestRepo.create({ 'zerverless.yaml': GOOD });
    const st = await h.register('web', 'limits', repo.url);
    assert.equal(st.status, 'synced', st.message);
    served = st.source.commit ?? '';
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  /** Commits `files`, syncs, and checks the error, the served revision and the availability figures. */
  async function expectRefused(label: string, files: Record<string, string | null>, message: RegExp, cleanup?: Record<string, string | null>): Promise<Measured> {
    await repo.commit(files, label);
    const m = await syncWhileProbing(h);
    console.log(`# ${label}: sync ${Math.round(m.syncMs)} ms, longest /healthz ${Math.round(m.healthzMaxMs)} ms over ${m.probes} probes; ${m.status.message.split('\n')[0]}`);
    assert.equal(m.status.status, 'error', `${label}: ${m.status.message}`);
    assert.match(m.status.message, message);
    assert.equal(m.status.source.commit, served, `${label}: the served commit is kept`);
    const res = await h.get('/limits/hi');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'one', `${label}: the last good revision keeps serving`);
    assert.ok(m.syncMs < SYNC_BOUND_MS, `${label}: the sync took ${Math.round(m.syncMs)} ms`);
    assert.ok(m.healthzMaxMs < HEALTHZ_BOUND_MS, `${label}: /healthz took ${Math.round(m.healthzMaxMs)} ms during the sync`);
    if (cleanup) await repo.commit(cleanup, `${label}: cleanup`);
    return m;
  }

  it('a flow mapping of 200,000 keys in zerverless.yaml is refused by size', { timeout: 180_000 }, async () => {
    await expectRefused('200,000 keys', { 'zerverless.yaml': flowKeys(200_000) },
      /^MANIFEST_TOO_LARGE: zerverless\.yaml:1:1: is \d+ bytes; zerverless\.yaml may be at most 1048576 bytes \(1 MiB\)/);
  });

  it('a flow mapping of 40,000 keys (under 1 MiB) is refused at its 10,001st key', { timeout: 180_000 }, async () => {
    await expectRefused('40,000 keys', { 'zerverless.yaml': flowKeys(40_000) },
      /^MANIFEST_TOO_LARGE: zerverless\.yaml:3:\d+: more than 10000 mapping keys/);
  });

  it('100,000 nested [ in zerverless.yaml are refused at nesting level 65', { timeout: 180_000 }, async () => {
    await expectRefused('100,000 nested [', { 'zerverless.yaml': `${HEAD}metadata:\n  name: web\nspec:\n  x: ${'['.repeat(100_000)}\n` },
      /^MANIFEST_TOO_LARGE: zerverless\.yaml:6:\d+: nested more than 64 levels deep/);
  });

  it('100,000 nested [ closed again (a well-formed 200,000-character nest) are refused the same way', { timeout: 180_000 }, async () => {
    await expectRefused('100,000 nested [ ]', { 'zerverless.yaml': `${HEAD}metadata:\n  name: web\nspec:\n  x: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n` },
      /^MANIFEST_TOO_LARGE: zerverless\.yaml:6:\d+: nested more than 64 levels deep/);
  });

  it('a 5,000-deep YAML apps/x/app.yaml is refused', { timeout: 180_000 }, async () => {
    await expectRefused('5,000-deep app.yaml', { 'apps/x/app.yaml': `name: x\nversion: "1"\nsource: {type: npm}\nenv: {a: ${'{b: '.repeat(5000)}1${'}'.repeat(5000)}}\n` },
      /^SERVICE_SPEC_TOO_LARGE: apps\/x\/app\.yaml:4:\d+: nested more than 64 levels deep/, { 'apps/x/app.yaml': null });
  });

  it('a 5,000-deep JSON apps/x/app.json is refused (twice) without taking the process down', { timeout: 180_000 }, async () => {
    const deep = `${'{"a": '.repeat(5000)}1${'}'.repeat(5000)}`;
    await expectRefused('5,000-deep app.json', { 'apps/x/app.json': deep }, /^SERVICE_SPEC_TOO_LARGE: apps\/x\/app\.json:1:\d+: nested more than 64 levels deep/);
    // The same commit again (issue: the second parse aborted Node with a RegExpCompiler allocation failure).
    const again = await syncWhileProbing(h);
    assert.equal(again.status.status, 'error');
    assert.match(again.status.message, /^SERVICE_SPEC_TOO_LARGE: apps\/x\/app\.json:1:\d+: nested more than 64 levels deep/);
    assert.ok(again.healthzMaxMs < HEALTHZ_BOUND_MS, `/healthz took ${Math.round(again.healthzMaxMs)} ms during the second sync`);
    await repo.commit({ 'apps/x/app.json': null }, 'cleanup');
  });

  it('deep Erlang terms in apps/x/app.config are refused at nesting level 65', { timeout: 180_000 }, async () => {
    const deep = `#{name => x, version => <<"1">>, source => #{type => npm}, env => #{a => ${'['.repeat(5000)}${']'.repeat(5000)}}}.\n`;
    await expectRefused('5,000-deep app.config', { 'apps/x/app.config': deep },
      /^SERVICE_SPEC_TOO_LARGE: apps\/x\/app\.config:1:\d+: nested more than 64 levels deep/, { 'apps/x/app.config': null });
    const tuples = `#{name => x, version => <<"1">>, source => #{type => npm}, env => ${'{'.repeat(5000)}${'}'.repeat(5000)}}.\n`;
    await expectRefused('5,000-deep tuples in app.config', { 'apps/x/app.config': tuples },
      /^SERVICE_SPEC_TOO_LARGE: apps\/x\/app\.config:1:\d+: nested more than 64 levels deep/, { 'apps/x/app.config': null });
  });

  it('a good commit after all that syncs and serves', { timeout: 120_000 }, async () => {
    await repo.commit({ 'zerverless.yaml': GOOD.replace('"one"', '"two"') }, 'good again');
    const st = await h.sync('web', 'limits');
    assert.equal(st.status, 'synced', st.message);
    assert.equal(await (await h.get('/limits/hi')).text(), 'two');
  });
});

describe('zerverless validate goes through the same bounded path', () => {
  it('reports the limit with its file:line:col and exits 1, in seconds', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zv-validate-limits-'));
    try {
      await writeFile(join(dir, 'zerverless.yaml'), `${HEAD}metadata:\n  name: web\nspec:\n  x: ${'['.repeat(100_000)}\n`);
      await mkdir(join(dir, 'apps/x'), { recursive: true });
      await writeFile(join(dir, 'apps/x/app.config'), `${'['.repeat(5000)}${']'.repeat(5000)}.\n`);
      const out: string[] = [];
      const t0 = performance.now();
      const code = await runValidate(dir, { json: true }, (s) => out.push(s));
      const ms = performance.now() - t0;
      assert.equal(code, 1);
      const report = JSON.parse(out.join('')) as { valid: boolean; errors: { file: string; line: number; message: string }[] };
      assert.equal(report.valid, false);
      assert.deepEqual(report.errors.map((e) => [e.file, e.line, e.message.split(' (')[0]]), [
        ['zerverless.yaml', 6, 'nested more than 64 levels deep'],
        ['apps/x/app.config', 1, 'nested more than 64 levels deep'],
      ]);
      assert.ok(ms < SYNC_BOUND_MS, `validate took ${Math.round(ms)} ms`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
