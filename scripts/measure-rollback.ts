// Measures revisions and rollback (issue 11, item 2) on a real server: a site of 20,000 static files
// and 100 Lua functions, 20 commits (each changes every function and 50 files) synced one by one;
// then the size of what the revisions take in the SQLite file, and how long `POST …/rollback`
// takes to switch back 19 revisions (every function and 1,000 files differ) and forward again.
// Run: node --import tsx scripts/measure-rollback.ts [files=20000] [functions=100] [commits=20]
// Prints figures; asserts nothing about time (the machine may be loaded).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { TestRepo } from '../test/support/repo.js';
import { startHarness } from '../test/support/server.js';
import { sqlite } from '../src/store/sqlite/driver.js';

const [files = 20_000, functions = 100, commits = 20] = process.argv.slice(2).map(Number);

function manifest(v: number): string {
  const fns = Array.from({ length: functions }, (_, i) => `    - path: /f${i}
      runtime: lua
      code: |
        function handle(req) return "f${i} v${v}" end
`).join('');
  return `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: big
spec:
  functions:
${fns}  static:
    dir: site
`;
}

const page = (i: number, v: number): string => `<html><body><h1>page ${i}</h1><p>version ${v}</p></body></html>\n`;

async function main(): Promise<void> {
  const t0 = Date.now();
  const initial: Record<string, string> = { 'zerverless.yaml': manifest(1) };
  for (let i = 0; i < files; i++) initial[`site/d${Math.floor(i / 200)}/p${i}.html`] = page(i, i < 50 ? 1 : 0);
  const repo = await TestRepo.create(initial);
  const h = await startHarness({ revisions: 20 });
  try {
    const shas: string[] = [repo.head()];
    const reg = await h.api('POST', '/', { name: 'big', namespace: 'big', source: { repoURL: repo.url } });
    if (reg.status !== 201) throw new Error(`register: ${reg.status}`);
    const first = await h.waitFor('big', (s) => s.status !== 'pending' && s.status !== 'syncing', 1_200_000, 'big');
    if (first.status !== 'synced') throw new Error(`first sync: ${first.status} ${first.message}`);
    for (let v = 2; v <= commits; v++) {
      // each commit: every function, and 50 files (a different 50 each time)
      const change: Record<string, string> = { 'zerverless.yaml': manifest(v) };
      for (let k = 0; k < 50; k++) {
        const i = ((v - 1) * 50 + k) % files;
        change[`site/d${Math.floor(i / 200)}/p${i}.html`] = page(i, v);
      }
      shas.push(await repo.commit(change, `version ${v}`));
      const st = await h.sync('big', 'big');
      if (st.status !== 'synced' || st.source.commit !== shas[v - 1]) throw new Error(`sync ${v}: ${st.status} ${st.message}`);
    }
    console.log(`setup: ${files} files, ${functions} functions, ${commits} commits synced in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const db = new (sqlite())(join(h.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
    const q = (sql: string): number => Number((db.prepare(sql).get() as { n: number | null }).n ?? 0);
    const revs = q('SELECT COUNT(*) AS n FROM revisions');
    const stateBytes = q('SELECT SUM(length(state)) AS n FROM revisions');
    const chunks = q('SELECT COUNT(*) AS n FROM revision_chunks');
    const chunkBytes = q('SELECT SUM(length(data)) AS n FROM revision_chunks');
    const deployedFiles = q('SELECT COUNT(*) AS n FROM deployed_static_files');
    let pageSize = 4096;
    try {
      pageSize = Number(db.pragma('page_size', { simple: true }));
    } catch { /* default */ }
    // What the revisions tables take in pages (dbstat may be absent from the build).
    let tablePages = 'n/a';
    try {
      const r = db.prepare("SELECT SUM(pgsize) AS n FROM dbstat WHERE name IN ('revisions', 'revision_chunks', 'revision_chunk_refs', 'revisions_app', 'revision_chunk_refs_chunk') OR name LIKE 'sqlite_autoindex_revision%'").get() as { n: number };
      tablePages = `${(r.n / 1024 / 1024).toFixed(2)} MiB`;
    } catch { /* no dbstat */ }
    db.close();
    const size = (f: string): number => { try { return statSync(join(h.dataDir, f)).size; } catch { return 0; } };
    console.log(`revisions: ${revs} kept; per-revision state ${(stateBytes / 1024).toFixed(0)} KiB in all (${(stateBytes / revs / 1024).toFixed(1)} KiB each); ` +
      `${chunks} file-list chunks, ${(chunkBytes / 1024).toFixed(0)} KiB; revisions tables on disk: ${tablePages} (page ${pageSize} B)`);
    console.log(`database file: ${(size('state.db') / 1024 / 1024).toFixed(2)} MiB (+ WAL ${(size('state.db-wal') / 1024 / 1024).toFixed(2)} MiB); deployed_static_files rows: ${deployedFiles}`);

    const timed = async (label: string, revision: string): Promise<void> => {
      const t = performance.now();
      const r = await h.api('POST', '/big/rollback?namespace=big', { revision });
      const ms = performance.now() - t;
      if (r.status !== 200) throw new Error(`${label}: ${r.status} ${JSON.stringify(r.body)}`);
      const fn = await (await h.get('/big/f7')).text();
      const pageText = await (await h.get('/static/big/d4/p950.html')).text();
      console.log(`${label}: ${ms.toFixed(0)} ms (POST …/rollback until answered); /big/f7 → ${fn}; static d4/p950.html (changed by commit 20) → ${pageText.match(/version \d+/)?.[0]}`);
    };
    // Three rounds: the figures of one loaded machine vary from run to run.
    const mid = Math.ceil(commits / 2);
    for (let round = 1; round <= 3; round++) {
      await timed(`round ${round}: rollback ${commits} → 1`, shas[0] as string);
      await timed(`round ${round}: rollback 1 → ${mid}`, shas[mid - 1] as string);
      await timed(`round ${round}: rollback ${mid} → ${commits}`, shas[commits - 1] as string);
    }
  } finally {
    await h.close();
    await repo.remove();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
