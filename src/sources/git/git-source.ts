// The git Source: branch heads by `git ls-remote` (shared and briefly cached per repository and
// branch), one shared bare clone per repository URL that is fetched only when a commit is missing,
// and snapshots of commits read straight from the clone's objects (snapshot.ts) through one
// long-lived `git cat-file --batch-command` per clone (objects.ts): the commit check, the tree and
// every file of a sync go through it, so a sync of a new commit runs ls-remote, fetch and (when it
// is not already running) the batch process — no checkout, no rev-parse, no gc per sync.
//
// Layout under <dataDir>/git/:
//   repos/<sha256(url) prefix>.git   bare clone shared by every application using that URL (and
//                                    credential: a private repository's clone is its own)
//   artifacts/<repo hash>-<commit>/  left by earlier versions, which checked every commit out here;
//                                    nothing makes them any more, and prune drops them once their
//                                    commit is no longer kept.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ZvError, isZvError } from '../../errors/registry.js';
import { CHANNELS, publish } from '../../telemetry/events.js';
import type { CommitSnapshot, RepoRef, Source } from '../types.js';
import { runGit, type GitResult, type GitRun } from '../../git-cli/exec.js';
import { KeyedMutex, SingleFlight } from './lock.js';
import { classifyRepoUrl, normaliseRevision, redactUrl, validateBranchName } from '../../git-cli/url.js';
import { GitAuthFiles, classifyAuthError, type CredentialResolver, type GitAuth } from './auth.js';
import { verifyCommit } from './verify.js';
import type { CommitVerification } from '../../core/commit-policy.js';
import { summariseVerify, type VerifySummary } from './verify-policy.js';
import { BatchReaders, type BatchReader } from './objects.js';
import { GitSnapshot, TreeCache, parseCommit } from './snapshot.js';

export interface GitSourceOptions {
  dataDir: string;
  /** Accept file:// URLs and absolute local paths (the --allow-file-repos flag). */
  allowFileRepos: boolean;
  /** Time limit of a fetch and of local git work (default 120 s); ls-remote uses min(this, 30 s). */
  timeoutMs?: number;
  /** Time limit of one ls-remote (default min(timeoutMs, 30 s)). */
  lsRemoteTimeoutMs?: number;
  /** How long a head() answer is reused when the caller gives no maxAgeMs (default 5 s). */
  headCacheMs?: number;
  /** The git binary (default `git` from PATH). */
  git?: string;
  /** URLs accepted even when file repositories are not (e.g. the bundled example's local repo). */
  trustedUrls?: string[];
  /**
   * The credential of a repository for the application's namespace (see auth.ts). Clones,
   * artifacts and head answers are kept apart per credential, so a caller without it never
   * gets what was fetched with it.
   */
  credentials?: CredentialResolver;
  /** Open `git cat-file` readers at most (one per clone; default 16) and how long one lives unused (default 60 s). */
  maxReaders?: number;
  readerIdleMs?: number;
}

/** Counters of the git processes this source started; for metrics and tests. */
export interface GitSourceStats {
  lsRemote: number;
  fetch: number;
  /** `git gc --auto` runs (only when a clone has many packs, or every GC_EVERY_FETCHES fetches). */
  gc: number;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_LS_REMOTE_TIMEOUT_MS = 30_000;
const DEFAULT_HEAD_CACHE_MS = 5_000;
const ARTIFACT_NAME = /^[0-9a-f]{32}-([0-9a-f]{40}|[0-9a-f]{64})$/;
const STALE_LOCKS = ['packed-refs.lock', 'HEAD.lock', 'config.lock', 'shallow.lock'];
/** A clone with more packs than this gets `git gc --auto` after a fetch. */
const GC_PACKS = 20;
/** …and so does one every this many fetches (loose objects pile up too). */
const GC_EVERY_FETCHES = 50;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function randomSuffix(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

export class GitSource implements Source {
  readonly stats: GitSourceStats = { lsRemote: 0, fetch: 0, gc: 0 };

  private readonly dataDir: string;
  private readonly root: string;
  private readonly reposDir: string;
  private readonly artifactsDir: string;
  private readonly allowFileRepos: boolean;
  private readonly timeoutMs: number;
  private readonly lsRemoteTimeoutMs: number;
  private readonly headCacheMs: number;
  private readonly git: string;
  private readonly trusted: ReadonlySet<string>;
  private readonly credentials: CredentialResolver | undefined;
  private readonly authFiles: GitAuthFiles;

  private readonly heads = new SingleFlight<string>();
  private readonly headCache = new Map<string, { sha: string; at: number }>();
  private readonly repoLock = new KeyedMutex();
  private readonly checkedBranches = new Set<string>();
  private dirsReady: Promise<void> | undefined;
  /** The long-lived `git cat-file` of each clone (objects.ts). */
  readonly readers: BatchReaders;
  private readonly trees = new TreeCache();
  private readonly fetchesSinceGc = new Map<string, number>();

  constructor(opts: GitSourceOptions) {
    this.dataDir = resolve(opts.dataDir);
    this.root = join(this.dataDir, 'git');
    this.reposDir = join(this.root, 'repos');
    this.artifactsDir = join(this.root, 'artifacts');
    this.allowFileRepos = opts.allowFileRepos;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.lsRemoteTimeoutMs = opts.lsRemoteTimeoutMs ?? Math.min(this.timeoutMs, DEFAULT_LS_REMOTE_TIMEOUT_MS);
    this.headCacheMs = opts.headCacheMs ?? DEFAULT_HEAD_CACHE_MS;
    this.git = opts.git ?? 'git';
    this.trusted = new Set(opts.trustedUrls ?? []);
    this.credentials = opts.credentials;
    this.authFiles = new GitAuthFiles(this.root);
    this.readers = new BatchReaders({
      ...(opts.maxReaders !== undefined ? { max: opts.maxReaders } : {}),
      ...(opts.readerIdleMs !== undefined ? { idleMs: opts.readerIdleMs } : {}),
      make: (repoDir) => ({
        git: this.git, repoDir, env: { GIT_CEILING_DIRECTORIES: this.dataDir }, allowFile: this.allowFileRepos, timeoutMs: this.timeoutMs,
      }),
    });
  }

  /** Ends the clones' cat-file processes (server shutdown); they start again when needed. */
  async close(): Promise<void> {
    this.readers.close();
  }

  private allowFileFor(url: string): boolean {
    return this.allowFileRepos || this.trusted.has(url);
  }

  async head(ref: RepoRef, opts?: { maxAgeMs?: number }): Promise<string> {
    await this.checkRef(ref);
    const auth = await this.auth(ref);
    const key = `${ref.repoURL}\u0000${ref.branch}\u0000${auth?.id ?? ''}`;
    const maxAge = opts?.maxAgeMs ?? this.headCacheMs;
    const cached = this.headCache.get(key);
    if (cached && maxAge > 0 && Date.now() - cached.at <= maxAge) return cached.sha;
    return this.heads.do(key, async () => {
      const sha = await this.lsRemote(ref, auth);
      if (this.headCache.size > 1000) this.headCache.clear();
      this.headCache.set(key, { sha, at: Date.now() });
      return sha;
    });
  }

  async snapshot(ref: RepoRef, revision?: string): Promise<CommitSnapshot> {
    await this.checkRef(ref);
    let rev: string;
    if (revision === undefined) {
      rev = await this.head(ref, { maxAgeMs: 0 });
    } else {
      const normal = normaliseRevision(revision);
      if (normal === undefined) {
        throw new ZvError('GIT_ERROR', `revision '${String(revision).slice(0, 80)}' is not a full commit SHA (40 hex digits)`);
      }
      rev = normal;
    }
    const repoDir = await this.ensureCommit(ref, rev, revision !== undefined);
    const objects = this.readers.for(repoDir);
    const c = await objects.contents(rev);
    if (!c || c.info.type !== 'commit') throw new ZvError('GIT_ERROR', `commit ${rev} is missing from the clone of ${redactUrl(ref.repoURL)}`);
    const { tree, info } = parseCommit(c.data);
    return new GitSnapshot(ref.repoURL, ref.branch, rev, tree, objects, this.trees, info);
  }

  async prune(keep: Set<string>): Promise<void> {
    const wanted = new Set([...keep].map((r) => r.toLowerCase()));
    let names: string[];
    try {
      names = await readdir(this.artifactsDir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(this.artifactsDir, name);
      const m = ARTIFACT_NAME.exec(name);
      if (m) {
        if (wanted.has(m[1] as string)) continue;
        // Rename first so that nobody sees a half-deleted artifact under its real name.
        const trash = join(this.artifactsDir, `.trash-${name}-${randomSuffix()}`);
        try {
          await rename(path, trash);
        } catch {
          continue;
        }
        await rm(trash, { recursive: true, force: true });
      } else if (name.startsWith('.trash-') || name.startsWith('.tmp-')) {
        await rm(path, { recursive: true, force: true });
      }
    }
    // Nothing makes artifact folders any more: once the last one is gone, so is the folder (rmdir
    // refuses a folder that is not empty).
    await rmdir(this.artifactsDir).catch(() => undefined);
  }

  /** The policy's type and key fingerprints, for the status (see verify-policy.ts). */
  describeVerify(policy: CommitVerification): VerifySummary {
    return summariseVerify(policy);
  }

  /** Throws COMMIT_NOT_TRUSTED unless `revision` is signed by a key of `policy` (see verify.ts). */
  async verifyCommit(ref: RepoRef, revision: string, policy: CommitVerification): Promise<void> {
    await this.checkRef(ref);
    const rev = normaliseRevision(revision);
    if (rev === undefined) throw new ZvError('GIT_ERROR', `revision '${String(revision).slice(0, 80)}' is not a full commit SHA (40 hex digits)`);
    const repoDir = await this.ensureCommit(ref, rev, true);
    await verifyCommit({ repoDir, revision: rev, policy, keysDir: join(this.root, 'verify'), timeoutMs: this.timeoutMs, git: (r) => this.run(r) });
  }

  /** The bare clone used for `repoURL` fetched with credential `authId` (it may not exist yet). */
  repoDir(repoURL: string, authId?: string): string {
    return join(this.reposDir, `${this.repoHash(repoURL, authId)}.git`);
  }

  /** Which credential `ref` is fetched with ('' = none): callers that share one check group by it. */
  async accessKey(ref: RepoRef): Promise<string> {
    return (await this.auth(ref))?.id ?? '';
  }

  private async auth(ref: RepoRef): Promise<GitAuth | null> {
    if (!this.credentials || ref.namespace === undefined) return null;
    return this.credentials({ repoURL: ref.repoURL, namespace: ref.namespace });
  }

  private repoHash(repoURL: string, authId?: string): string {
    // Without a credential the hash is the URL's alone (clones made before credentials existed stay valid).
    return createHash('sha256').update(authId === undefined ? repoURL : `${repoURL}\u0000${authId}`).digest('hex').slice(0, 32);
  }

  /** A run that talks to the remote: the credential's files and environment for its duration only. */
  private async runRemote(auth: GitAuth | null, r: Parameters<GitSource['run']>[0] & { url: string }): Promise<GitResult> {
    const session = await this.authFiles.open(auth, r.url);
    try {
      return await this.run({ ...r, env: { ...r.env, ...session.env } });
    } catch (e) {
      throw classifyAuthError(e, auth, r.url);
    } finally {
      await session.close();
    }
  }

  private async checkRef(ref: RepoRef): Promise<void> {
    classifyRepoUrl(ref.repoURL, { allowFileRepos: this.allowFileFor(ref.repoURL) });
    validateBranchName(ref.branch);
    if (this.checkedBranches.has(ref.branch)) return;
    await this.ensureDirs();
    const r = await this.run({
      args: ['check-ref-format', '--branch', ref.branch], mode: 'local', okCodes: [0, 1, 128],
      timeoutMs: this.lsRemoteTimeoutMs, what: 'git check-ref-format',
    });
    if (r.code !== 0) throw new ZvError('VALIDATION_FAILED', `invalid branch name '${ref.branch}': git check-ref-format refused it`);
    if (this.checkedBranches.size > 10_000) this.checkedBranches.clear();
    this.checkedBranches.add(ref.branch);
  }

  private ensureDirs(): Promise<void> {
    this.dirsReady ??= (async () => {
      await mkdir(this.reposDir, { recursive: true });
    })().catch((e: unknown) => {
      this.dirsReady = undefined;
      throw new ZvError('GIT_ERROR', `cannot create ${this.root}: ${e instanceof Error ? e.message : String(e)}`);
    });
    return this.dirsReady;
  }

  private run(r: Omit<GitRun, 'git' | 'cwd' | 'allowFile'> & { cwd?: string; url?: string }): Promise<GitResult> {
    // cwd is our own directory and discovery stops at the data dir, so no surrounding repository's
    // config (e.g. the project checkout that holds ./.zerverless) is read.
    const env = { GIT_CEILING_DIRECTORIES: this.dataDir, ...r.env };
    const { url, ...run } = r;
    return runGit({ ...run, env, git: this.git, cwd: r.cwd ?? this.root, allowFile: url !== undefined ? this.allowFileFor(url) : this.allowFileRepos });
  }

  private async lsRemote(ref: RepoRef, auth: GitAuth | null): Promise<string> {
    await this.ensureDirs();
    const url = ref.repoURL;
    const wanted = `refs/heads/${ref.branch}`;
    this.stats.lsRemote++;
    const started = performance.now();
    let r: GitResult;
    try {
      r = await this.runRemote(auth, {
        args: ['ls-remote', '--exit-code', '--', url, wanted], mode: 'remote', okCodes: [0, 2], url,
        timeoutMs: this.lsRemoteTimeoutMs, what: `git ls-remote ${url}`,
      });
    } catch (e) {
      publish(CHANNELS.gitLsRemote, { repo: url, branch: ref.branch, duration: performance.now() - started, result: 'error', error: e instanceof Error ? e.message : String(e) });
      throw e;
    }
    publish(CHANNELS.gitLsRemote, { repo: url, branch: ref.branch, duration: performance.now() - started, result: 'ok' });
    for (const line of r.stdout.split('\n')) {
      const [sha, name] = line.split('\t');
      if (name !== wanted || sha === undefined) continue;
      const normal = normaliseRevision(sha);
      if (normal === undefined) throw new ZvError('GIT_ERROR', `git ls-remote ${redactUrl(url)} answered an unexpected line: ${line.slice(0, 200)}`);
      return normal;
    }
    throw this.refNotFound(ref);
  }

  private refNotFound(ref: RepoRef): ZvError {
    return new ZvError('GIT_REF_NOT_FOUND', `branch '${ref.branch}' not found in ${redactUrl(ref.repoURL)}`);
  }

  /** Makes sure `rev` is in the shared clone of ref.repoURL, fetching only when it is not. */
  private async ensureCommit(ref: RepoRef, rev: string, explicit: boolean): Promise<string> {
    await this.ensureDirs();
    const auth = await this.auth(ref);
    const repoDir = this.repoDir(ref.repoURL, auth?.id);
    if (await this.hasCommit(repoDir, rev)) return repoDir;
    return this.repoLock.run(repoDir, async () => {
      await this.ensureClone(repoDir, ref.repoURL);
      // Another caller may have fetched while we waited for the lock.
      if (await this.hasCommit(repoDir, rev)) return repoDir;
      const tip = await this.fetch(repoDir, ref, auth, `+refs/heads/${ref.branch}:refs/heads/${ref.branch}`);
      if (await this.hasCommit(repoDir, rev)) return repoDir;
      if (tip === 'unknown') {
        // The reader did not see the branch the fetch just wrote: start it again before concluding.
        this.readers.drop(repoDir);
        if (await this.hasCommit(repoDir, rev)) return repoDir;
      }
      if (explicit) {
        // Not (or no longer) on the branch: ask for the commit itself; servers may allow it.
        try {
          await this.fetch(repoDir, ref, auth, rev, rev);
        } catch (e) {
          if (isZvError(e, 'GIT_TIMEOUT')) throw e;
        }
        if (await this.hasCommit(repoDir, rev)) return repoDir;
      }
      // `missingCommit`: the remote answered, and has no such commit (callers tell it from git failing).
      throw new ZvError('GIT_ERROR',
        `commit ${rev} does not exist in branch '${ref.branch}' of ${redactUrl(ref.repoURL)} (the branch is at ${tip})`,
        { missingCommit: rev, branch: ref.branch, tip });
    });
  }

  /** Whether the clone has commit `rev`: asked of the clone's batch process, not a git run of its own. */
  private async hasCommit(repoDir: string, rev: string): Promise<boolean> {
    if (!(await exists(join(repoDir, 'HEAD')))) return false;
    const info = await this.reader(repoDir).info(rev);
    return info?.type === 'commit';
  }

  private reader(repoDir: string): BatchReader {
    return this.readers.for(repoDir);
  }

  private async ensureClone(repoDir: string, url: string): Promise<void> {
    if (await exists(join(repoDir, 'HEAD'))) return;
    const tmp = `${repoDir}.tmp-${randomSuffix()}`;
    try {
      await this.run({
        args: ['init', '--bare', '--quiet', '--template=', '--initial-branch=zerverless-unused', '--', tmp],
        mode: 'local', timeoutMs: this.timeoutMs, what: 'git init',
      });
      await writeFile(join(tmp, 'zerverless-url'), url + '\n');
      await rename(tmp, repoDir);
      this.readers.drop(repoDir); // a reader of a clone that was removed from under it sees nothing of this one
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      if (await exists(join(repoDir, 'HEAD'))) return; // another process made it first
      throw e;
    }
  }

  /** Fetches `refspec` from the remote into the clone; returns the commit it brought. */
  private async fetch(repoDir: string, ref: RepoRef, auth: GitAuth | null, refspec: string, commit?: string): Promise<string> {
    const url = ref.repoURL;
    const started = performance.now();
    this.stats.fetch++;
    try {
      await this.runRemote(auth, {
        args: [`--git-dir=${repoDir}`, 'fetch', '--quiet', '--no-tags', '--no-recurse-submodules', '--no-write-fetch-head',
          '--no-auto-maintenance', '--', url, refspec],
        mode: 'remote', url, timeoutMs: this.timeoutMs, what: `git fetch ${url} ${commit ?? ref.branch}`,
      });
    } catch (e) {
      publish(CHANNELS.gitPull, {
        repo: url, branch: ref.branch, commit: commit ?? null, duration: performance.now() - started, result: 'error',
        error: e instanceof Error ? e.message : String(e),
      });
      if (isZvError(e, 'GIT_TIMEOUT')) await this.removeStaleLocks(repoDir, ref.branch);
      if (commit === undefined && isZvError(e, 'GIT_ERROR') && /couldn't find remote ref/i.test(e.message)) {
        throw this.refNotFound(ref);
      }
      throw e;
    }
    const tip = commit ?? await this.branchTip(repoDir, ref.branch);
    publish(CHANNELS.gitPull, { repo: url, branch: ref.branch, commit: tip, duration: performance.now() - started, result: 'ok' });
    await this.maintain(repoDir);
    return tip;
  }

  /** The branch as the fetch left it in the clone, read through the batch process (no rev-parse). */
  private async branchTip(repoDir: string, branch: string): Promise<string> {
    const info = await this.reader(repoDir).info(`refs/heads/${branch}`);
    return info?.oid ?? 'unknown';
  }

  /**
   * `git gc --auto` in the foreground, under the repository lock, but only when the clone has
   * accumulated more than GC_PACKS packs or every GC_EVERY_FETCHES fetches — not after every fetch
   * (it is a git process of its own). A failure here is not fatal.
   */
  private async maintain(repoDir: string): Promise<void> {
    const n = (this.fetchesSinceGc.get(repoDir) ?? 0) + 1;
    let packs = 0;
    try {
      packs = (await readdir(join(repoDir, 'objects', 'pack'))).filter((f) => f.endsWith('.pack')).length;
    } catch {
      // no pack folder yet
    }
    if (packs <= GC_PACKS && n < GC_EVERY_FETCHES) {
      if (this.fetchesSinceGc.size > 10_000) this.fetchesSinceGc.clear();
      this.fetchesSinceGc.set(repoDir, n);
      return;
    }
    this.fetchesSinceGc.set(repoDir, 0);
    this.stats.gc++;
    try {
      await this.run({
        args: ['-c', 'gc.autoDetach=false', `--git-dir=${repoDir}`, 'gc', '--auto', '--quiet'],
        mode: 'local', timeoutMs: this.timeoutMs,
      });
    } catch {
      // Packs pile up a little longer; the next fetch tries again.
    }
  }

  /** A fetch killed at its time limit can leave lock files behind that would break every later fetch. */
  private async removeStaleLocks(repoDir: string, branch: string): Promise<void> {
    const locks = [...STALE_LOCKS, join('refs', 'heads', `${branch}.lock`)];
    await Promise.all(locks.map((l) => rm(join(repoDir, l), { force: true }).catch(() => undefined)));
  }
}
