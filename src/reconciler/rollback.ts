// A rollback (PRODUCT.md §11, "History and rollback"): switches an application back to one of its
// kept revisions from the Store alone, without git, with the steps of a sync after its read:
//
//   ownership → plan → prepare (lazy: nothing compiles) → commit (the atomic switch) → services → finish
//
// Static blobs of kept revisions are never collected, so nothing has to be read or stored; Lua, JS
// and Python functions load on their first call as after a restart. Services go through the normal
// health-gated upgrade. The finish records the sync (trigger `rollback`) and suspends automatic
// syncs until a resume or an explicit sync, in one write.
import { ZvError, toZvError } from '../errors/registry.js';
import type { Plan } from '../core/plan/index.js';
import type { DesiredRead } from '../sources/types.js';
import type { AppRecord, AppStatusPatch, BlobStore, Revision, SyncCause } from '../store/types.js';
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
    // Kept revisions' blobs are never collected; a blob removed by hand is said before anything switches.
    const served = new Set((before?.static?.files ?? []).map((f) => f.hash));
    for (const f of state.static?.files ?? []) {
      if (!served.has(f.hash) && !(await blobs.has(f.hash))) {
        throw new ZvError('INTERNAL', `revision ${rev.commit.slice(0, 12)}: the blob of static file ${f.path} is missing; a sync of that commit stores it again`);
      }
      served.add(f.hash);
    }
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
      const snap = await readSnapshot(env, app, { ...app.source, namespace: app.namespace }, rev.commit);
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
