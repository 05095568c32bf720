// The shared contract suite every Source (./types.ts) must pass, in the shape of
// src/runtimes/contract.ts: branch heads (and their caching), snapshots holding exactly a commit's
// tree (symlinks as stored, the executable bit kept, submodules as entries), reads refused over a
// size limit, folders unchanged between commits keeping their ids, the commit's info, the error
// codes of unknown branches, repositories and commits, and commits that are not on the branch. A
// source's test file calls `sourceContract(...)` with a way to make real repositories it can read.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError, type ErrorCode } from '../errors/registry.js';
import type { CommitSnapshot, RepoRef, Source } from './types.js';
import type { SnapshotEntry } from './snapshot.js';

/**
 * A file of a commit: text, a symlink (its target, kept as written), an executable, or a submodule
 * (a commit id recorded at that path); null deletes.
 */
export type ContractFile = string | { link: string } | { exec: string } | { submodule: string } | null;
export type ContractFiles = Record<string, ContractFile>;

/** A repository the source under test reads, changed by the contract. */
export interface ContractRepo {
  /** The URL the source is given. */
  url: string;
  /** Writes `files` on `branch` (made from the current branch when new) and commits with `message`; returns the SHA. */
  commit(files: ContractFiles, branch?: string, message?: string): Promise<string>;
  /** Moves `branch` back to `sha`, dropping the commits after it from the branch (a force push). */
  resetBranch(branch: string, sha: string): Promise<void>;
}

/** The cases a source may mark `todo` (a known bug, with a one-line reason). */
export type SourceContractCase =
  | 'head' | 'headCache' | 'headShared' | 'unknownBranch' | 'unknownRepo' | 'olderCommit' | 'sameCommit'
  | 'offBranch' | 'missingCommit' | 'notSha' | 'keyedByRepo'
  | 'snapshotTree' | 'snapshotMissing' | 'snapshotMaxBytes' | 'snapshotSubmodule' | 'snapshotSharedIds' | 'snapshotErrors'
  | 'snapshotReaderKilled' | 'commitInfo';

export interface SourceContractOptions<S extends Source = Source> {
  name: string;
  /** A fresh source with its own storage; `headCacheMs` is how long head() reuses an answer by default. */
  create: (o: { headCacheMs: number }) => Promise<S> | S;
  /** A new repository with `files` committed on `main`. */
  repo: (files: ContractFiles) => Promise<ContractRepo>;
  /** A URL the source accepts but where no repository is. */
  missingRepoUrl: () => string;
  /** How many times the source asked the remote for a head so far (omit when it cannot tell). */
  headAsks?: (source: S) => number;
  /**
   * Kills -9 whatever long-lived process the source reads `ref`'s objects through (resolves false
   * when it has none running); the next read must work as if nothing happened.
   */
  killReader?: (source: S, ref: RepoRef) => Promise<boolean>;
  /** Frees what the contract made (temp dirs). */
  cleanup?: () => Promise<void>;
  todo?: Partial<Record<SourceContractCase, string>>;
  skip?: string | false;
}

const SITE: ContractFiles = {
  'zerverless.yaml': 'apiVersion: zerverless.io/v1\n',
  'handlers/hello.ts': 'export function handle() { return "hi"; }\n',
  'static/index.html': '<h1>v1</h1>\n',
  'static/css/deep/site.css': 'body{}\n',
  'static/home.html': { link: 'index.html' },
  'static/escape': { link: '../../../etc/passwd' },
  'static/dangling': { link: 'nowhere/at/all' },
  'bin/run.sh': { exec: '#!/bin/sh\necho run\n' },
  'empty.txt': '',
};

function apply(tree: ContractFiles, change: ContractFiles): ContractFiles {
  const out = { ...tree };
  for (const [p, f] of Object.entries(change)) {
    if (f === null) delete out[p];
    else out[p] = f;
  }
  return out;
}

/** Every entry of `snap` that is not a folder, by path, read through readdir from the root. */
async function snapshotEntries(snap: CommitSnapshot): Promise<Map<string, SnapshotEntry>> {
  const out = new Map<string, SnapshotEntry>();
  const walk = async (dir: string): Promise<void> => {
    const entries = await snap.readdir(dir);
    assert.deepEqual(entries.map((e) => e.name), entries.map((e) => e.name).sort(), `${dir || '/'} is sorted by name`);
    for (const e of entries) {
      assert.equal(e.path, dir ? `${dir}/${e.name}` : e.name);
      if (e.kind === 'dir') await walk(e.path);
      else out.set(e.path, e);
    }
  };
  await walk('');
  return out;
}

/** Asserts that `snap` holds exactly `tree`: the same paths, kinds, contents, sizes and symlink targets. */
export async function assertSnapshot(snap: CommitSnapshot, tree: ContractFiles): Promise<void> {
  const entries = await snapshotEntries(snap);
  assert.deepEqual([...entries.keys()].sort(), Object.keys(tree).filter((p) => tree[p] !== null).sort(), 'exactly the committed paths');
  for (const [p, f] of Object.entries(tree)) {
    if (f === null) continue;
    const e = entries.get(p) as SnapshotEntry;
    assert.deepEqual(await snap.lstat(p), e, `${p}: lstat is the readdir entry`);
    if (typeof f === 'object' && 'submodule' in f) {
      assert.equal(e.kind, 'submodule', `${p} is a submodule`);
      assert.equal(e.id, f.submodule, `${p} records its commit`);
      continue;
    }
    const text = typeof f === 'string' ? f : 'link' in f ? f.link : f.exec;
    const kind = typeof f === 'string' ? 'file' : 'link' in f ? 'symlink' : 'exec';
    assert.equal(e.kind, kind, `${p} kind`);
    assert.equal((await snap.read(e)).toString('utf8'), text, `${p} content (a symlink's target as written)`);
    assert.equal(e.size, Buffer.byteLength(text), `${p} size`);
  }
}

/** Asserts that `p` rejects with the error `code`, its message matching `message` if given (also for the git source's own tests). */
export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isZvError(e, code), `expected ${code}, got ${e instanceof Error ? `${(e as { code?: string }).code}: ${e.message}` : String(e)}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

export function sourceContract<S extends Source>(opts: SourceContractOptions<S>): void {
  const todo = (c: SourceContractCase): { todo?: string } => (opts.todo?.[c] ? { todo: opts.todo[c] } : {});

  describe(`source contract: ${opts.name}`, { skip: opts.skip || false }, () => {
    after(async () => {
      await opts.cleanup?.();
    });
    const make = async (files: ContractFiles = SITE): Promise<{ repo: ContractRepo; ref: RepoRef; tree: ContractFiles }> => {
      const repo = await opts.repo(files);
      return { repo, ref: { repoURL: repo.url, branch: 'main' }, tree: { ...files } };
    };

    it('head() is the commit at the tip of the branch, and follows new commits', todo('head'), async () => {
      const { repo, ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const first = await src.head(ref);
      assert.match(first, /^[0-9a-f]{40}$/);
      const second = await repo.commit({ 'static/index.html': '<h1>v2</h1>\n' });
      assert.equal(await src.head(ref), second);
      assert.notEqual(first, second);
      const dev = await repo.commit({ 'dev.txt': 'dev\n' }, 'dev');
      assert.equal(await src.head({ ...ref, branch: 'dev' }), dev);
      assert.equal(await src.head(ref), second, 'a commit on another branch does not move main');
    });

    it('head() reuses an answer within maxAgeMs (and the default cache), asks again with maxAgeMs 0', todo('headCache'), async () => {
      const { repo, ref } = await make();
      const src = await opts.create({ headCacheMs: 60_000 });
      const first = await src.head(ref);
      const asks = opts.headAsks?.(src);
      const second = await repo.commit({ 'static/index.html': '<h1>v2</h1>\n' });
      assert.equal(await src.head(ref), first, 'within the default cache time');
      assert.equal(await src.head(ref, { maxAgeMs: 60_000 }), first, 'within maxAgeMs');
      if (asks !== undefined) assert.equal(opts.headAsks?.(src), asks, 'no new ask');
      assert.equal(await src.head(ref, { maxAgeMs: 0 }), second, 'maxAgeMs 0 asks the remote');
      assert.equal(await src.head(ref), second, 'the new answer is cached');
      const other = await opts.create({ headCacheMs: 0 });
      assert.equal(await other.head(ref), second);
    });

    it('concurrent head() calls for one branch share one ask', { skip: !opts.headAsks, ...todo('headShared') }, async () => {
      const { ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const before = opts.headAsks!(src);
      const all = await Promise.all([src.head(ref), src.head(ref), src.head({ ...ref })]);
      assert.equal(new Set(all).size, 1);
      assert.equal(opts.headAsks!(src) - before, 1);
    });

    it('an unknown branch is GIT_REF_NOT_FOUND naming it, for head and snapshot', todo('unknownBranch'), async () => {
      const { ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const sha = await src.head(ref);
      const nope = { ...ref, branch: 'nope' };
      await rejectsWith(src.head(nope), 'GIT_REF_NOT_FOUND', /'nope'/);
      await rejectsWith(src.snapshot(nope), 'GIT_REF_NOT_FOUND');
      await rejectsWith(src.snapshot(nope, sha), 'GIT_REF_NOT_FOUND');
    });

    it('an unknown repository is GIT_ERROR, for head and snapshot', todo('unknownRepo'), async () => {
      const src = await opts.create({ headCacheMs: 0 });
      const ref = { repoURL: opts.missingRepoUrl(), branch: 'main' };
      await rejectsWith(src.head(ref), 'GIT_ERROR');
      await rejectsWith(src.snapshot(ref), 'GIT_ERROR');
      await rejectsWith(src.snapshot(ref, 'a'.repeat(40)), 'GIT_ERROR');
    });

    it('snapshots of older commits stay exact and readable beside newer ones', todo('olderCommit'), async () => {
      const { repo, ref, tree: t1 } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const one = await src.snapshot(ref);
      const c2: ContractFiles = { 'static/index.html': '<h1>v2</h1>\n', 'static/home.html': 'now a file\n', 'new/file.txt': 'x' };
      const sha2 = await repo.commit(c2);
      const t2 = apply(t1, c2);
      const c3: ContractFiles = { 'bin/run.sh': null, 'static/index.html': { link: 'home.html' }, 'empty.txt': { exec: '' } };
      const sha3 = await repo.commit(c3);
      const t3 = apply(t2, c3);
      const three = await src.snapshot(ref);
      assert.equal(three.revision, sha3);
      await assertSnapshot(three, t3);
      const two = await src.snapshot(ref, sha2);
      assert.equal(two.revision, sha2);
      await assertSnapshot(two, t2);
      await assertSnapshot(one, t1);
    });

    it('asking for the same commit again (also concurrently, or in upper case) gives the same tree', todo('sameCommit'), async () => {
      const { ref, tree } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const sha = await src.head(ref);
      const [a, b] = await Promise.all([src.snapshot(ref, sha), src.snapshot(ref, sha)]);
      assert.equal((await a.lstat(''))?.id, (await b.lstat(''))?.id);
      const c = await src.snapshot(ref, sha.toUpperCase());
      assert.equal(c.revision, sha);
      assert.equal((await c.lstat(''))?.id, (await a.lstat(''))?.id);
      await assertSnapshot(a, tree);
    });

    it('a commit that is not on the branch (another branch\'s, or force-pushed away) gives its exact tree while the remote has it', todo('offBranch'), async () => {
      const { repo, ref, tree } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const base = await src.head(ref);
      const devFiles: ContractFiles = { 'dev.txt': 'dev\n' };
      const dev = await repo.commit(devFiles, 'dev');
      const onDev = await src.snapshot(ref, dev);
      assert.equal(onDev.revision, dev);
      await assertSnapshot(onDev, apply(tree, devFiles));
      const gone: ContractFiles = { 'static/index.html': '<h1>gone</h1>\n' };
      const goneSha = await repo.commit(gone);
      await repo.resetBranch('main', base);
      assert.equal(await src.head(ref), base);
      await assertSnapshot(await src.snapshot(ref, goneSha), apply(tree, gone));
      assert.equal((await src.snapshot(ref)).revision, base, 'the branch itself is where it was moved to');
    });

    it('a commit the repository does not have is GIT_ERROR naming the commit and the branch', todo('missingCommit'), async () => {
      const { ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const missing = 'deadbeef'.repeat(5);
      await rejectsWith(src.snapshot(ref, missing), 'GIT_ERROR', new RegExp(`${missing}[^]*'main'`));
    });

    it('a revision that is not a full commit SHA is GIT_ERROR', todo('notSha'), async () => {
      const { ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const sha = await src.head(ref);
      for (const rev of ['main', 'HEAD', sha.slice(0, 12), '--output=/tmp/x', `${sha}x`]) {
        await rejectsWith(src.snapshot(ref, rev), 'GIT_ERROR', /not a full commit SHA/);
      }
    });

    it('snapshots are keyed by repository: another repository\'s commit is never handed out', todo('keyedByRepo'), async () => {
      const a = await make();
      const b = await make({ ...SITE, 'other.txt': 'b' });
      const src = await opts.create({ headCacheMs: 0 });
      const snapA = await src.snapshot(a.ref);
      await rejectsWith(src.snapshot(b.ref, snapA.revision), 'GIT_ERROR');
      const snapB = await src.snapshot(b.ref);
      assert.notEqual(snapB.revision, snapA.revision);
      await assertSnapshot(snapB, b.tree);
    });

    it('a snapshot holds exactly the commit: files, executables, symlinks as stored, sizes; lstat agrees with readdir', todo('snapshotTree'), async () => {
      const { repo, ref, tree } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const head = await src.head(ref);
      const snap = await src.snapshot(ref);
      assert.equal(snap.revision, head);
      assert.equal(snap.commit, head);
      assert.deepEqual([snap.repoURL, snap.branch], [ref.repoURL, 'main']);
      assert.deepEqual(await snap.lstat(''), { path: '', name: '', kind: 'dir', id: (await snap.lstat(''))?.id });
      await assertSnapshot(snap, tree);
      const change: ContractFiles = { 'static/index.html': { link: 'home.html' }, 'bin/run.sh': null, 'empty.txt': { exec: 'now\n' } };
      const sha2 = await repo.commit(change);
      await assertSnapshot(await src.snapshot(ref, sha2.toUpperCase()), apply(tree, change));
      await assertSnapshot(await src.snapshot(ref, head), tree);
    });

    it('a snapshot answers null for a missing path (also below a file) and refuses readdir of a file', todo('snapshotMissing'), async () => {
      const { ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const snap = await src.snapshot(ref);
      assert.equal(await snap.lstat('nope'), null);
      assert.equal(await snap.lstat('static/nope/deeper'), null);
      assert.equal(await snap.lstat('static/index.html/x'), null);
      assert.equal(await snap.lstat('static/home.html/x'), null, 'links on the way are not followed');
      assert.equal((await snap.lstat('static/dangling'))?.kind, 'symlink', 'a dangling link is an entry');
      await assert.rejects(snap.readdir('static/index.html'));
      await assert.rejects(snap.readdir('nope'));
      assert.deepEqual((await snap.readdir('static/css')).map((e) => [e.name, e.kind]), [['deep', 'dir']]);
    });

    it('a read over maxBytes is refused with FILE_TOO_LARGE; at the limit it is read', todo('snapshotMaxBytes'), async () => {
      const { ref } = await make({ ...SITE, 'big.bin': 'x'.repeat(10_000) });
      const src = await opts.create({ headCacheMs: 0 });
      const snap = await src.snapshot(ref);
      const big = await snap.lstat('big.bin');
      assert.ok(big);
      await rejectsWith(snap.read(big, { maxBytes: 9_999 }), 'FILE_TOO_LARGE', /big\.bin[^]*10000[^]*9999/);
      // An entry without its size (made by hand) is refused from the store's own answer.
      const { size: _size, ...bare } = big;
      await rejectsWith(snap.read(bare, { maxBytes: 100 }), 'FILE_TOO_LARGE');
      assert.equal((await snap.read(big, { maxBytes: 10_000 })).length, 10_000);
      assert.equal((await snap.read((await snap.lstat('empty.txt'))!, { maxBytes: 0 })).length, 0);
    });

    it('a submodule is an entry with the commit it records; it has no bytes and no folder', todo('snapshotSubmodule'), async () => {
      const sub = 'c0ffee'.repeat(6) + 'c0ff';
      const { ref, tree } = await make({ ...SITE, 'vendor/lib': { submodule: sub } });
      const src = await opts.create({ headCacheMs: 0 });
      const snap = await src.snapshot(ref);
      const e = await snap.lstat('vendor/lib');
      assert.deepEqual(e, { path: 'vendor/lib', name: 'lib', kind: 'submodule', id: sub });
      await assert.rejects(snap.read(e));
      await assert.rejects(snap.readdir('vendor/lib'));
      await assertSnapshot(snap, tree);
    });

    it('folders unchanged between two commits keep their ids; changed ones and the root get new ones', todo('snapshotSharedIds'), async () => {
      const { repo, ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const one = await src.snapshot(ref);
      const two = await src.snapshot(ref, await repo.commit({ 'static/css/deep/site.css': 'body{color:red}\n' }));
      const id = async (s: CommitSnapshot, p: string): Promise<string | undefined> => (await s.lstat(p))?.id;
      for (const same of ['handlers', 'bin', 'static/index.html', 'static/home.html']) assert.equal(await id(two, same), await id(one, same), same);
      for (const changed of ['', 'static', 'static/css', 'static/css/deep', 'static/css/deep/site.css']) {
        assert.notEqual(await id(two, changed), await id(one, changed), changed || '/');
      }
      const equal = await repo.commit({ 'static/css/deep/site.css': 'body{}\n' });
      assert.equal(await id(await src.snapshot(ref, equal), ''), await id(one, ''), 'the same tree again has the same id');
    });

    it('snapshot(): an unknown branch, repository or commit (naming the tip), and a revision that is not a SHA, are refused', todo('snapshotErrors'), async () => {
      const { ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const sha = await src.head(ref);
      await rejectsWith(src.snapshot({ ...ref, branch: 'nope' }), 'GIT_REF_NOT_FOUND');
      await rejectsWith(src.snapshot({ ...ref, branch: 'nope' }, sha), 'GIT_REF_NOT_FOUND');
      await rejectsWith(src.snapshot({ repoURL: opts.missingRepoUrl(), branch: 'main' }), 'GIT_ERROR');
      const missing = 'deadbeef'.repeat(5);
      await rejectsWith(src.snapshot(ref, missing), 'GIT_ERROR', new RegExp(`${missing}[^]*'main'[^]*${sha}`));
      for (const rev of ['main', sha.slice(0, 12), '--output=/tmp/x']) await rejectsWith(src.snapshot(ref, rev), 'GIT_ERROR', /not a full commit SHA/);
      const other = await make({ ...SITE, 'other.txt': 'b' });
      await rejectsWith(src.snapshot(other.ref, sha), 'GIT_ERROR');
    });

    it('the process objects are read through may be killed -9 between and during reads: reads go on', { skip: !opts.killReader, ...todo('snapshotReaderKilled') }, async () => {
      const { repo, ref, tree } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const one = await src.snapshot(ref);
      assert.equal(await opts.killReader!(src, ref), true, 'a reader was running');
      await assertSnapshot(one, tree);
      const change: ContractFiles = { 'static/index.html': '<h1>v2</h1>\n' };
      const two = await src.snapshot(ref, await repo.commit(change));
      const reading = assertSnapshot(two, apply(tree, change));
      await opts.killReader!(src, ref);
      await reading;
    });

    it('a snapshot carries the commit info: message (sanitised), author and times', todo('commitInfo'), async () => {
      const { repo, ref } = await make();
      const src = await opts.create({ headCacheMs: 0 });
      const sha = await repo.commit({ 'x.txt': 'x' }, 'main', 'Deploy \u001b[1mv2\u0007\n\nWith a body line.\n');
      const info = (await src.snapshot(ref, sha)).commitInfo;
      assert.equal(info.message, 'Deploy [1mv2\n\nWith a body line.');
      assert.match(info.author, /^.+ <.*>$/);
      assert.ok(info.time && !Number.isNaN(Date.parse(info.time)));
      assert.ok(info.committedAt && !Number.isNaN(Date.parse(info.committedAt)));
      const long = await repo.commit({ 'y.txt': 'y' }, 'main', 'ü'.repeat(5000));
      const m = (await src.snapshot(ref, long)).commitInfo.message;
      assert.ok(Buffer.byteLength(m) <= 2048 && m.length >= 1000, 'at most 2 KiB, whole characters');
    });
  });
}
