// The plan preview (PRODUCT.md §11, "Plan preview"): what a sync of a commit would do, computed by
// the sync's own steps (head → snapshot → read → plan, from sync.ts) against what is deployed, and
// nothing more. No store write, no blob, no function loaded, no image built, no serving change, no
// sync record: the only thing it may leave behind is the commit fetched into the source's clone.
//
// A commit the sync would refuse (a manifest error, an unsigned commit, a path another application
// owns) is the point of a preview: it is an answer with `errors` filled (file:line when the reader
// knows them), not a failure. A revision that cannot be read at all (unknown branch or commit, git
// down) rejects with the source's error.
import { ZvError, isCommitFault, isZvError, toZvError } from '../errors/registry.js';
import type { Diagnostic } from '../core/desired.js';
import type { Plan } from '../core/plan/index.js';
import type { CommitSnapshot, RepoRef } from '../sources/types.js';
import type { AppRecord } from '../store/types.js';
import { checkOwnership, identity, planAgainstDeployed, readDesired, readSnapshot, type SyncEnv } from './sync.js';

/** At most this many paths of each kind of static change are listed (all are counted). */
export const STATIC_SAMPLE = 20;

export interface PreviewError {
  /** The file of the commit the problem is in (relative to the repository root), or null when it is not about one file. */
  file: string | null;
  line: number | null;
  col?: number;
  code: string;
  message: string;
}

export interface PlanPreview {
  /** What was asked for (a branch or a commit), or the application's branch by default. */
  revision: string;
  commit: { sha: string; message: string; author: string; time: string | null };
  /** The commit served now (null before the first sync). */
  fromCommit: string | null;
  functions: { create: string[]; update: { path: string; changes: string[] }[]; delete: string[] };
  static: {
    added: number; changed: number; removed: number; unchanged: number;
    sample: { added: string[]; changed: string[]; removed: string[] };
  };
  services: { create: string[]; update: { name: string; action: string; changes: string[] }[]; delete: string[] };
  warnings: string[];
  errors: PreviewError[];
}

const FULL_SHA = /^[0-9a-f]{40}$/i;

/** A branch name as a revision: the same rules the registration applies to `source.branch`. */
function checkRevision(revision: string): void {
  if (revision.length === 0 || revision.length > 255 || revision.startsWith('-') || /[\s~^:?*[\\\0]|\.\.|@\{/.test(revision)) {
    throw new ZvError('BAD_REQUEST', `revision: '${revision.slice(0, 80)}' is neither a full commit SHA nor a branch name`);
  }
}

/** Hex digits only, but not 40 of them: most likely an abbreviated SHA, which is not resolved. */
const HEX_NOT_FULL = /^[0-9a-f]+$/i;

/**
 * Head and snapshot of a preview: a full commit SHA must be on the application's branch (or
 * fetchable: the source's rules); anything else is a branch of the application's repository,
 * resolved with the source's head (GIT_REF_NOT_FOUND when there is none; for a string of hex
 * digits the message says that a commit must be given in full).
 */
async function resolve(env: SyncEnv, app: AppRecord, revision: string | undefined): Promise<{ ref: RepoRef; commit: string }> {
  const ref: RepoRef = { ...app.source, namespace: app.namespace };
  if (revision === undefined) return { ref, commit: await env.source.head(ref, { maxAgeMs: 0 }) };
  if (FULL_SHA.test(revision)) return { ref, commit: revision.toLowerCase() };
  checkRevision(revision);
  const other: RepoRef = { ...ref, branch: revision };
  try {
    return { ref: other, commit: await env.source.head(other, { maxAgeMs: 0 }) };
  } catch (e) {
    if (isZvError(e, 'GIT_REF_NOT_FOUND') && HEX_NOT_FULL.test(revision)) {
      throw new ZvError('GIT_REF_NOT_FOUND',
        `${e.message}, and revision '${revision}' is no commit either: a commit must be given as its full SHA (40 hex digits; ${revision.length} given), abbreviated SHAs are not resolved`);
    }
    throw e;
  }
}

/**
 * A full SHA the repository does not have (the source fetched the branch and asked for the commit
 * itself, and the remote had neither) is the request's fault: REVISION_NOT_FOUND, naming the commit,
 * the branch and its tip. Git failing for any other reason stays the source's error (GIT_ERROR 502).
 */
function commitNotFound(e: ZvError): ZvError {
  if (e.code !== 'GIT_ERROR' || typeof e.details?.['missingCommit'] !== 'string') return e;
  return new ZvError('REVISION_NOT_FOUND',
    `${e.message}, and the repository does not serve it: preview a commit of the branch (GET …/revisions lists the deployed ones), or another branch by name (?revision=<branch>)`,
    undefined, { cause: e });
}

/** A refusal of the sync as preview errors: one per diagnostic (file:line), or one for the whole commit. */
function previewErrors(e: ZvError): PreviewError[] {
  const diagnostics = e.details?.['diagnostics'] as Diagnostic[] | undefined;
  if (Array.isArray(diagnostics) && diagnostics.length) {
    return diagnostics.map((d) => ({ file: d.file, line: d.line, col: d.col, code: e.code, message: d.field ? `${d.field}: ${d.message}` : d.message }));
  }
  return [{ file: null, line: null, code: e.code, message: e.message }];
}

/** The refusals a preview shows as errors: those of the commit (not INTERNAL: a bug is a failure of the request). */
const shown = (e: ZvError): boolean => isCommitFault(e.code) && e.code !== 'INTERNAL';

function commitOf(snap: CommitSnapshot): PlanPreview['commit'] {
  const info = snap.commitInfo;
  return { sha: snap.revision, message: info.message, author: info.author, time: info.time ?? info.committedAt };
}

/** The plan as a preview lists it: functions and services by action, static files counted with a sample. */
export function describePlan(plan: Plan, staticTotal: number): Pick<PlanPreview, 'functions' | 'static' | 'services'> {
  const fns = plan.functions;
  const st = plan.static;
  const pick = (action: string): string[] => st.filter((s) => s.action === action).map((s) => s.path);
  const added = pick('create');
  const changed = pick('update');
  const removed = pick('delete');
  const svc = plan.services ?? [];
  return {
    functions: {
      create: fns.filter((f) => f.action === 'create').map((f) => f.path),
      update: fns.filter((f) => f.action === 'update').map((f) => ({ path: f.path, changes: f.changes ?? [] })),
      delete: fns.filter((f) => f.action === 'delete').map((f) => f.path),
    },
    static: {
      added: added.length, changed: changed.length, removed: removed.length,
      unchanged: Math.max(0, staticTotal - added.length - changed.length),
      sample: { added: added.slice(0, STATIC_SAMPLE), changed: changed.slice(0, STATIC_SAMPLE), removed: removed.slice(0, STATIC_SAMPLE) },
    },
    services: {
      create: svc.filter((s) => s.action === 'deploy').map((s) => s.name),
      update: svc.filter((s) => s.action === 'upgrade' || s.action === 'reconfigure' || s.action === 'apply')
        .map((s) => ({ name: s.name, action: s.action, changes: s.changes ?? (s.action === 'upgrade' ? ['version'] : []) })),
      delete: svc.filter((s) => s.action === 'remove').map((s) => s.name),
    },
  };
}

const EMPTY: Pick<PlanPreview, 'functions' | 'static' | 'services'> = {
  functions: { create: [], update: [], delete: [] },
  static: { added: 0, changed: 0, removed: 0, unchanged: 0, sample: { added: [], changed: [], removed: [] } },
  services: { create: [], update: [], delete: [] },
};

/**
 * What a sync of `revision` (a branch or a full commit SHA; default the application's branch head)
 * would do to `app`. Changes nothing; rejects only when the revision cannot be read.
 */
export async function previewPlan(env: SyncEnv, app: AppRecord, revision?: string): Promise<PlanPreview> {
  const { ref, commit } = await resolve(env, app, revision);
  const base = { revision: revision ?? app.source.branch, fromCommit: app.commit };
  let snap: CommitSnapshot;
  try {
    snap = await readSnapshot(env, app, ref, commit);
  } catch (e) {
    const err = toZvError(e);
    // An unsigned commit is a refusal of that commit (shown); a commit that cannot be read is an error of the request.
    if (!shown(err)) throw commitNotFound(err);
    const info = await env.source.snapshot(ref, commit).then(commitOf, () => ({ sha: commit, message: '', author: '', time: null }));
    return { ...base, commit: info, ...EMPTY, warnings: [], errors: previewErrors(err) };
  }
  try {
    const { read, routes } = await readDesired(env, app, snap);
    const errors: PreviewError[] = [];
    try {
      checkOwnership(env.serving, identity(app), read.state, routes);
    } catch (e) {
      errors.push(...previewErrors(toZvError(e)));
    }
    // The host the application has, never a new one: a preview creates nothing.
    const plan = planAgainstDeployed(env, app, read, env.host(app, false));
    return { ...base, commit: commitOf(snap), ...describePlan(plan, read.state.static?.files.length ?? 0), warnings: read.state.warnings, errors };
  } catch (e) {
    const err = toZvError(e);
    if (!shown(err)) throw err;
    return { ...base, commit: commitOf(snap), ...EMPTY, warnings: [], errors: previewErrors(err) };
  }
}
