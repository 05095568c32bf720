// A rollback (PRODUCT.md §11, "History and rollback"): switches an application back to one of its
// kept revisions from the Store alone, without git, with the steps of a sync after its read:
//
//   ownership → plan → prepare (lazy: nothing compiles) → commit (the atomic switch) → services → finish
//
// Static blobs of kept revisions are never collected, so nothing has to be read or stored; Lua, JS
// and Python functions load on their first call as after a restart. Services go through the normal
// health-gated upgrade. The finish records the sync (trigger `rollback`) and suspends automatic
// syncs until a resume or an explicit sync, in one write.
//
// A blob missing anyway (removed by hand, a disk fault) is read again from the revision's commit
// before anything switches, in the repository the revision was deployed from (the application may
// sync from another one since a PATCH); each file must hash to what was deployed. When git cannot
// give it, the rollback is refused with REVISION_INCOMPLETE (409) and nothing changes.
import { createHash } from 'node:crypto';
import { ZvError, isZvError, toZvError } from '../errors/registry.js';
import type { Plan } from '../core/plan/index.js';
import type { StaticFileEntry } from '../core/desired.js';
import { resolveInSnapshot } from '../sources/snapshot.js';
import type { CommitSnapshot, DesiredRead, RepoRef } from '../sources/types.js';
import type { AppRecord, AppStatusPatch, BlobStore, Revision, RevisionSource, SyncCause } from '../store/types.js';
import type { Prepared } from '../apply/functions.js';
import { checkOwnership, identity, planAgainstDeployed, readDesired, readSnapshot, type SyncEnv, type SyncResult } from './sync.js';

/** The reason a rollback's suspension gives. */
export function rollbackReason(rev: Revision): string {
  const msg = rev.commitInfo?.message ? ` (${rev.commitInfo.message.slice(0, 120)})` : '';
  return `rolled back to ${rev.commit.slice(0, 12)}${msg}`;
}

export async function runRollback(env: SyncEnv, blobs: BlobStore, app: AppRecord, rev: Revision, syncId: number, cause: SyncCause): Promise<SyncResult> {
  const id = identity(app);
  const state = rev.state;
  const services = rev.services ?? [];
  let plan: Plan | null = null;
  let committed = false;
  try {
    if (services.length && !app.allowServices) throw new ZvError('FORBIDDEN', 'the revision has services and the application may not deploy services');
    const before = env.deployed.get(app.id) ?? null;
    // Kept revisions' blobs are never collected; one missing anyway is read again from git before anything switches.
    const served = new Set((before?.static?.files ?? []).map((f) => f.hash));
    const missing: StaticFileEntry[] = [];
    for (const f of state.static?.files ?? []) {
      if (!served.has(f.hash) && !(await blobs.has(f.hash))) missing.push(f);
      served.add(f.hash);
    }
    if (missing.length) await restoreBlobs(env, blobs, app, rev, missing);
    const host = env.host(app, services.length > 0);
    const routes = services.filter((s) => s.route).map((s) => s.route as string);
    checkOwnership(env.serving, id, state, routes);
    const read: DesiredRead = { state, staticFiles: [], docker: [], services };
    // Functions that cannot take requests now (a stopped container) count as changed: they are reloaded.
    plan = planAgainstDeployed(env, app, read, host);
    const prepare = (r: DesiredRead): Promise<Prepared> => env.deployer.prepare(id, r, plan as Plan, host ? host.routes(services) : new Map(), { lazy: true });
    let prepared: Prepared;
    try {
      prepared = await prepare(read);
    } catch (e) {
      // A docker function uses the image kept for it; one the engine no longer has is built again
      // from the revision's commit, the one case a rollback reads git.
      const docker = plan.functions.some((c) => c.runtime === 'docker' && c.action !== 'unchanged' && c.action !== 'delete');
      if (!docker || toZvError(e).code !== 'RUNTIME_UNAVAILABLE') throw e;
      env.log.info({ namespace: app.namespace, app: app.name, commit: rev.commit }, 'rollback: a docker image is gone; reading its build context from git');
      const snap = await readSnapshot(env, app, revisionRef(app, rev), rev.commit);
      prepared = await prepare({ ...read, docker: (await readDesired(env, app, snap)).read.docker });
    }
    await env.namespaceLock.after(app.namespace, async () => {
      try {
        checkOwnership(env.serving, id, state, routes);
        await env.store.commitDeployed(app.id, state);
      } catch (e) {
        await env.deployer.abandon(prepared);
        throw e;
      }
      env.deployed.set(app.id, state);
      env.deployer.commit(id, prepared);
    });
    committed = true;
    let problems = '';
    if (host) {
      await host.apply(services, rev.commit);
      if (services.length === 0 && host.appliedSpecs().length === 0) await env.dropHost(app);
      problems = host.problems();
    }
    const finishedAt = env.now().toISOString();
    const reason = rollbackReason(rev);
    const message = problems ? `${reason}; ${problems}` : reason;
    const status: AppStatusPatch = {
      ...(problems ? { status: 'degraded', message: problems } : { status: 'synced', message: '' }),
      lastSync: finishedAt,
      suspended: { at: finishedAt, by: cause.actor, reason, untilSync: true },
    };
    const record = await env.store.finishSync(syncId, { commit: rev.commit, finishedAt, result: 'success', message, plan, commitInfo: rev.commitInfo }, status);
    env.log.info({ namespace: app.namespace, app: app.name, commit: rev.commit, by: cause.actor, plan: plan.summary }, 'rolled back');
    return { record, outcome: { ok: true, commit: rev.commit, plan, problems } };
  } catch (e) {
    const error = toZvError(e, 'INTERNAL');
    const finishedAt = env.now().toISOString();
    const message = `${error.code}: rollback to ${rev.commit.slice(0, 12)} failed: ${error.message}`;
    // Before the switch nothing changed: the status stays as it was. After it, the state is the revision's.
    const record = await env.store.finishSync(syncId, { commit: rev.commit, finishedAt, result: 'error', message, plan, commitInfo: rev.commitInfo },
      committed ? { status: 'error', message, lastSync: finishedAt } : {});
    env.log.warn({ namespace: app.namespace, app: app.name, commit: rev.commit, code: error.code }, `rollback failed: ${error.message}`);
    return { record, outcome: { ok: false, error, commit: rev.commit, plan } };
  }
}

/** Where the revision was read from: its recorded source, else (kept before sources were) the application's. */
function revisionSource(app: AppRecord, rev: Revision): RevisionSource {
  return rev.source ?? { repoURL: app.source.repoURL, branch: app.source.branch, path: app.source.path };
}

function revisionRef(app: AppRecord, rev: Revision): RepoRef {
  const src = revisionSource(app, rev);
  return { repoURL: src.repoURL, branch: src.branch, namespace: app.namespace };
}

/** A repository URL as messages show it (a stored URL carries no user or password; this is a backstop). */
const shown = (url: string): string => url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');

/**
 * Reads the static files of `rev` whose blobs are missing from the revision's commit and stores them
 * (the blob store only: nothing that serves changes). Each must hash to what was deployed. Throws
 * REVISION_INCOMPLETE naming the revision, the files and why git could not give them, with what to do.
 */
async function restoreBlobs(env: SyncEnv, blobs: BlobStore, app: AppRecord, rev: Revision, missing: StaticFileEntry[]): Promise<void> {
  const src = revisionSource(app, rev);
  const site = rev.state.static as NonNullable<Revision['state']['static']>;
  const c12 = rev.commit.slice(0, 12);
  const title = rev.commitInfo?.message ? ` (${rev.commitInfo.message.slice(0, 120)})` : '';
  const names = missing.slice(0, 5).map((f) => f.path).join(', ') + (missing.length > 5 ? `, … (${missing.length} in all)` : '');
  const what = missing.length === 1
    ? `the blob of static file ${(missing[0] as StaticFileEntry).path} (sha256 ${(missing[0] as StaticFileEntry).hash.slice(0, 12)}) is missing from the blob store`
    : `the blobs of ${missing.length} static files (${names}) are missing from the blob store`;
  const moved = src.repoURL !== app.source.repoURL || src.branch !== app.source.branch;
  const from = `${shown(src.repoURL)} (branch '${src.branch}')`;
  const other = 'or roll back to another revision (GET …/revisions)';
  const refuse = (why: string, hint: string, cause?: unknown): ZvError => new ZvError('REVISION_INCOMPLETE',
    `cannot roll back to revision ${c12}${title}: ${what}, and ${why}. Nothing was changed. ${hint}`, undefined, { cause });
  env.log.warn({ namespace: app.namespace, app: app.name, commit: rev.commit, files: missing.length, repo: shown(src.repoURL) },
    'rollback: static files of the revision are missing from the blob store; reading them from its commit');

  let snap: CommitSnapshot;
  try {
    snap = await env.source.snapshot(revisionRef(app, rev), rev.commit);
  } catch (e) {
    const err = toZvError(e);
    if (isZvError(err, 'GIT_ERROR') && typeof err.details?.['missingCommit'] === 'string') {
      if (!rev.source && !moved) {
        // Kept before sources were recorded: it may come from a repository the application left with a PATCH.
        throw refuse(`commit ${c12} is not in ${from}, which the application syncs from now`,
          `If the revision was deployed from another repository (before a PATCH of the application's source), PATCH the source back to that repository and roll back again; ${other}.`, e);
      }
      throw refuse(`commit ${c12} is no longer in ${from}, where it was deployed from`, `Roll back to another revision (GET …/revisions).`, e);
    }
    const where = moved ? `${from}, where it was deployed from (the application syncs from ${shown(app.source.repoURL)} now),` : from;
    throw refuse(`${where} could not be read to restore them (${err.code}: ${err.message.replace(/\s*\n\s*/g, ' ')})`, `Roll back again once ${shown(src.repoURL)} is reachable, ${other}.`, e);
  }

  const read = async (entry: StaticFileEntry): Promise<Uint8Array> => {
    const rel = [src.path, site.dir, entry.path].filter((p) => p && p !== '.').join('/');
    const r = await resolveInSnapshot(snap, rel);
    if (r.kind !== 'ok' || (r.entry.kind !== 'file' && r.entry.kind !== 'exec')) {
      throw refuse(`static file ${entry.path} is not a file at ${rel} in commit ${c12} of ${from}`, `Roll back to another revision (GET …/revisions).`);
    }
    const bytes = await snap.read(r.entry);
    if (createHash('sha256').update(bytes).digest('hex') !== entry.hash) {
      throw refuse(`static file ${entry.path} in commit ${c12} of ${from} is not what was deployed (its sha256 differs)`, `Roll back to another revision (GET …/revisions).`);
    }
    return bytes;
  };
  for (const entry of missing) {
    await blobs.put(await read(entry));
  }
  env.log.info({ namespace: app.namespace, app: app.name, commit: rev.commit, files: missing.length }, 'rollback: restored the missing static files from the revision\'s commit');
}
