// The `webhooks` row of the scale bench (bench/scale.mjs, issue 11): 1,000 applications follow one
// repository; one signed GitHub push hook must answer in ≤ 1 s and start all their syncs, which run
// within the server's cap on syncs at once (--max-syncs, default 4).
//
// Measured per round (BENCH_SCALE_ROUNDS, at most 3): the hook's answer time and how many
// applications it named; the time from the hook to every application serving the new commit; and
// the most syncs that ran at once, read from the applications' sync records (each record starts
// when the sync gets its slot, so overlapping records are syncs running together).
// Settings: BENCH_SCALE_HOOK_APPS (1000), BENCH_SCALE_BATCH (registrations in flight).
import { createHmac, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, commit, envNumber, git, stopChild } from './lib.mjs';

const { fetch } = globalThis; // Node 20's built-in (undici)

const SECRET = 'bench-webhook-secret';
/** The server's default --max-syncs (src/server/config.ts). */
const MAX_SYNCS = 4;

async function allApps(base) {
  const r = await api(base, 'GET', '?limit=1000');
  const list = [...r.body.applications];
  for (let off = 1000; off < r.body.total; off += 1000) list.push(...(await api(base, 'GET', `?limit=1000&offset=${off}`)).body.applications);
  return list;
}

/** The most intervals [start, end) open at one time. */
function maxOverlap(intervals) {
  const edges = [];
  for (const [s, e] of intervals) edges.push([s, 1], [e, -1]);
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of edges) {
    open += d;
    max = Math.max(max, open);
  }
  return max;
}

async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

/**
 * ctx: { rowServer(row), tmpRoot, newRepo(dir, files), manifestHead(name, ns), luaFn(path, body), log, config }
 * from bench/scale.mjs.
 */
export async function rowWebhooks(ctx) {
  const { rowServer, tmpRoot, newRepo, manifestHead, luaFn, log, config } = ctx;
  const n = envNumber('BENCH_SCALE_HOOK_APPS', 1000, { min: 1, integer: true });
  const rounds = Math.min(config.rounds, 3);
  const repoDir = join(tmpRoot, 'hooks-repo');
  // No metadata.namespace: each application serves it in the namespace it is registered in.
  const manifest = (v) => [...manifestHead('web', '-').filter((l) => !l.startsWith('  namespace:')), '  functions:', ...luaFn('/hi', v), ''].join('\n');
  await newRepo(repoDir, { 'zerverless.yaml': manifest('v0') });
  const url = `file://${repoDir}`;
  // The secret reaches bench/server.mjs through its environment (never its argv).
  process.env.ZV_WEBHOOK_SECRET = SECRET;
  let s;
  try {
    s = await rowServer('webhooks');
  } finally {
    delete process.env.ZV_WEBHOOK_SECRET;
  }
  try {
    const base = s.zv.url;
    const names = Array.from({ length: n }, (_, i) => `w${String(i).padStart(4, '0')}`);
    log(`webhooks: registering ${n} applications on one repository…`);
    const t0 = performance.now();
    const deadline = t0 + config.rowTimeoutSec * 1000;
    await pool(names, config.batch, async (ns) => {
      const r = await api(base, 'POST', '', { name: 'web', namespace: ns, source: { repoURL: url, branch: 'main' } });
      if (r.status !== 201) throw new Error(`registering ${ns}/web answered ${r.status}: ${JSON.stringify(r.body)}`);
    });
    const settled = async (head) => {
      for (;;) {
        const list = await allApps(base);
        const done = list.filter((a) => a.status !== 'pending' && a.status !== 'syncing' && (head === null || a.source.commit === head));
        if (done.length >= n) return list;
        if (performance.now() > deadline) return null;
        await sleep(250);
      }
    };
    if (!(await settled(null))) return { notMeasured: `the ${n} registrations had not synced after ${config.rowTimeoutSec} s` };
    log(`webhooks: ${n} applications synced (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

    const out = [];
    for (let r = 1; r <= rounds; r++) {
      await commit(repoDir, { 'zerverless.yaml': manifest(`v${r}`) }, `bench: round ${r}`);
      const head = git(repoDir, 'rev-parse', 'HEAD').trim();
      const payload = JSON.stringify({
        ref: 'refs/heads/main', before: '0'.repeat(39) + '1', after: head, deleted: false,
        repository: { full_name: 'bench/hooks', clone_url: `${url}.git`, html_url: url },
      });
      const headers = {
        'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(),
        'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(payload).digest('hex')}`,
      };
      const tHook = performance.now();
      const res = await fetch(`${base}/hooks/github`, { method: 'POST', headers, body: payload });
      const answer = await res.json();
      const answerMs = performance.now() - tHook;
      if (res.status !== 202) throw new Error(`the hook answered ${res.status}: ${JSON.stringify(answer)}`);
      const list = await settled(head);
      if (!list) return { notMeasured: `round ${r}: not every application served ${head.slice(0, 8)} within ${config.rowTimeoutSec} s`, rounds: out };
      const allSyncedMs = performance.now() - tHook;
      // The sync records of this round (trigger webhook) give when each sync ran.
      const records = await pool(names, 16, async (ns) => {
        const h = await api(base, 'GET', `/web/syncs?namespace=${ns}&limit=3`);
        return h.body.syncs.find((x) => x.trigger === 'webhook' && x.commit === head) ?? null;
      });
      const ran = records.filter(Boolean);
      const intervals = ran.map((x) => [Date.parse(x.startedAt), Date.parse(x.finishedAt ?? x.startedAt)]);
      const errors = list.filter((a) => a.status === 'error').length;
      out.push({ answerMs, triggered: answer.triggered.length, allSyncedMs, webhookSyncs: ran.length, maxConcurrent: maxOverlap(intervals), errors });
      log(`webhooks: round ${r}: answered in ${answerMs.toFixed(0)} ms naming ${answer.triggered.length}; all served after ${(allSyncedMs / 1000).toFixed(1)} s; at most ${maxOverlap(intervals)} syncs at once`);
    }
    return { apps: n, maxSyncs: MAX_SYNCS, rounds: out };
  } finally {
    await stopChild(s.zv.child);
  }
}

/** The row of the printed table. */
export function webhooksTableRow(r, { range }) {
  const label = `a push hook to ${r.apps.toLocaleString('en-US')} applications on one repository`;
  const x = r.rounds;
  return [label,
    `answered in ${range(x.map((y) => y.answerMs))} naming ${[...new Set(x.map((y) => y.triggered))].join('/')}; all served in ${range(x.map((y) => y.allSyncedMs))}; at most ${Math.max(...x.map((y) => y.maxConcurrent))} syncs at once (cap ${r.maxSyncs})`,
    '≤ 1 s; within the cap'];
}
