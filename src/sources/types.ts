// The Source interface: where desired state comes from. A source turns (repository, branch) into a
// snapshot: one exact commit's tree, read without checking it out (snapshot.ts), with its SHA and
// what the commit says of itself. Appliers only read snapshots.
import type { CommitVerification } from '../core/commit-policy.js';
import type { DeployedState, DesiredState, StaticFileEntry } from '../core/desired.js';
import type { ServiceSpec } from '../core/services/types.js';
import type { Snapshot } from './snapshot.js';

export interface RepoRef {
  repoURL: string;
  branch: string;
  /** The application's namespace: picks the credential used for the repository (none without it). */
  namespace?: string;
}

/** What a commit says of itself, sanitised for display (no control characters) and bounded. */
export interface CommitInfo {
  /** The message, its first 2 KiB (UTF-8), line breaks kept as \n. */
  message: string;
  /** `Name <email>` of the author (at most 256 characters). */
  author: string;
  /** When the commit was authored (ISO 8601, UTC), or null when its header cannot be read. */
  time: string | null;
  /** When it was committed (ISO 8601, UTC), or null. */
  committedAt: string | null;
}

/** One commit's tree as a Snapshot, with where it came from. */
export interface CommitSnapshot extends Snapshot {
  repoURL: string;
  branch: string;
  /** Full commit SHA (the same as `commit`). */
  revision: string;
  commitInfo: CommitInfo;
}

export interface Source {
  /**
   * The branch head on the remote, asked without fetching (`git ls-remote`). Concurrent and recent
   * calls for the same (repoURL, branch) share one check. Rejects with GIT_REF_NOT_FOUND, GIT_ERROR
   * or GIT_TIMEOUT.
   */
  head(ref: RepoRef, opts?: { maxAgeMs?: number }): Promise<string>;
  /**
   * The tree of `revision` (default: the branch head) as a snapshot, read straight from the
   * source's store without writing anything out. Fetches only when the commit is missing; rejects
   * with GIT_ERROR naming the branch tip when the commit is not on the branch (nor fetchable).
   */
  snapshot(ref: RepoRef, revision?: string): Promise<CommitSnapshot>;
  /**
   * Drops what the source keeps on disk per commit for commits not in `keep` (revisions). The git
   * source keeps nothing per commit any more: it drops the artifact folders earlier versions left.
   */
  prune(keep: Set<string>): Promise<void>;
  /** Ends what the source keeps running (readers of its clones); it starts them again if used after. */
  close?(): Promise<void>;
  /**
   * Which credential `ref` is fetched with ('' = none). Refs with the same key may share one head
   * check; refs with different keys must not (a private repository's answer is not for everyone).
   */
  accessKey?(ref: RepoRef): Promise<string>;
  /**
   * Resolves when `revision` (full SHA) is signed by one of `policy.keys`; rejects with
   * COMMIT_NOT_TRUSTED when it is unsigned or signed by another key (PRODUCT.md §10).
   */
  verifyCommit(ref: RepoRef, revision: string, policy: CommitVerification): Promise<void>;
  /** The policy as a status shows it: its type and the keys' fingerprints (never the keys themselves). */
  describeVerify?(policy: CommitVerification): { type: CommitVerification['type']; keys: string[] };
}

// What the sync's read step gets from one commit (sources/desired-reader.ts implements the reader).
export interface DesiredRead {
  state: DesiredState;
  /**
   * The static files this read hashed (content ids the deployed site did not have), with a way to
   * their bytes: the blobs to store. Files with unchanged ids are in `state.static` only.
   */
  staticFiles: { entry: StaticFileEntry; read(): Promise<Uint8Array> }[];
  /**
   * Build inputs of docker functions, by function path: the Dockerfile's and the context's paths in
   * the snapshot, the entries of each context that its content hash covers (POSIX paths relative to
   * `context`; the build sends exactly those), and `materialise`, which writes them into a temporary
   * folder when an image has to be built (dispose it after the build).
   */
  docker: {
    path: string; dockerfile: string; context: string; contextFiles: string[];
    materialise(): Promise<{ contextDir: string; dockerfilePath: string; dispose(): Promise<void> }>;
  }[];
  /** The service specs of the `apps/` folder (empty without one). */
  services: ServiceSpec[];
}

export interface DesiredReadOptions {
  path: string;
  namespace: string;
  commit: string;
  repoURL: string;
  branch: string;
  /** What is deployed now: the static files and folders whose content ids are unchanged are reused unread. */
  deployed?: DeployedState | null;
}

/** Reads one commit's snapshot into a desired state; rejects with a ZvError naming file:line. */
export interface DesiredReader {
  read(snapshot: Snapshot, opts: DesiredReadOptions): Promise<DesiredRead>;
}
