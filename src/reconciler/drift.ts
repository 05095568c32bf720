// Drift repair of one application (PRODUCT.md §11): every `--drift-interval` the loop asks what runs
// to be put back where it was deployed — docker containers removed or stopped by hand (the
// function runtime), service processes the runtime no longer runs (ServiceHost), static blobs that
// are missing or no longer hash to their name (restored from a snapshot of the deployed commit,
// read from the git objects). Each repair is published on `zerverless:drift:repair`; the loop records a pass that
// repaired something in the history (trigger `drift`, message from `describeRepairs`).
//
// The caller runs `repairDrift` in the application's sync queue: never beside a sync, a rollback or
// a removal of the same application.
import type { DeployedState, StaticFileEntry } from '../core/desired.js';
import { ZvError, toZvError } from '../errors/registry.js';
import type { AppIdentity, Deployer } from '../apply/functions.js';
import type { ServiceHost } from '../apply/services/host.js';
import type { DriftRepair } from '../apply/drift.js';
import type { CommitSnapshot, Source } from '../sources/types.js';
import { resolveInSnapshot } from '../sources/snapshot.js';
import type { AppSource } from '../store/types.js';
import { CHANNELS, publish } from '../telemetry/events.js';
import type { Logger } from '../telemetry/log.js';

export type { DriftRepair };

export interface DriftDeps {
  deployer: Deployer;
  /** The application's services (null: it has none). */
  host: ServiceHost | null;
  /** Where restored static files come from: the snapshot of the deployed commit. */
  source: Source;
  /** What was deployed (store.getDeployed): its commit and static site locate the files to restore. */
  deployed: DeployedState | null;
  logger?: Logger;
}

/** The application: its identity (as the Deployer knows it) and where its code comes from. */
export type DriftApp = AppIdentity & { source: Pick<AppSource, 'repoURL' | 'branch' | 'path'> };

/**
 * Checks and repairs one application's functions, static blobs and services; resolves with every
 * repair made or tried (empty: nothing drifted). Never rejects for a failed repair (it is reported
 * with `result: 'failed'`); a part that cannot even be checked is logged and skipped.
 */
export async function repairDrift(app: DriftApp, deps: DriftDeps): Promise<DriftRepair[]> {
  const out: DriftRepair[] = [];
  const restore = blobRestorer(app, deps);
  try {
    out.push(...(await deps.deployer.repairDrift(app, restore)));
  } catch (e) {
    deps.logger?.warn({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'drift check of functions and static files failed');
  }
  if (deps.host) {
    try {
      out.push(...(await deps.host.repairDrift()));
    } catch (e) {
      deps.logger?.warn({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'drift check of services failed');
    }
  }
  for (const r of out) {
    publish(CHANNELS.driftRepair, {
      app: app.name, namespace: app.namespace, kind: r.kind, target: r.target, problem: r.problem, result: r.result,
      ...(r.message ? { error: r.message } : {}),
    });
    const line = `drift: ${describeRepair(r)}`;
    if (r.result === 'repaired') deps.logger?.info({ namespace: app.namespace, app: app.name, kind: r.kind, target: r.target }, line);
    else deps.logger?.warn({ namespace: app.namespace, app: app.name, kind: r.kind, target: r.target }, line);
  }
  return out;
}

const KIND: Record<DriftRepair['kind'], string> = { function: 'function', static: 'static file', service: 'service' };

function describeRepair(r: DriftRepair): string {
  const what = `${KIND[r.kind]} ${r.target}: ${r.problem}`;
  return r.result === 'repaired' ? `${what}, repaired` : `${what}, repair failed${r.message ? `: ${r.message}` : ''}`;
}

/**
 * The history message of a drift pass: one clause per repair, repaired ones first, e.g.
 * `drift repaired 2: function /api/hello: container removed, repaired; static file logo.svg: blob
 * corrupt, repaired`. Pure.
 */
export function describeRepairs(repairs: readonly DriftRepair[]): string {
  if (repairs.length === 0) return 'drift: nothing to repair';
  const ok = repairs.filter((r) => r.result === 'repaired');
  const failed = repairs.filter((r) => r.result === 'failed');
  const head = [ok.length ? `repaired ${ok.length}` : '', failed.length ? `failed ${failed.length}` : ''].filter(Boolean).join(', ');
  return `drift ${head}: ${[...ok, ...failed].map(describeRepair).join('; ')}`;
}

/**
 * Reads a static file's bytes from the snapshot of the deployed commit (made once per pass, only
 * when a blob needs restoring; fetched again if the clone lost the commit). The path is resolved in
 * the snapshot as when the site was read (resolveInSnapshot: symlinks followed lexically, never
 * out of the repository).
 */
function blobRestorer(app: DriftApp, deps: DriftDeps): (entry: StaticFileEntry) => Promise<Uint8Array> {
  let snapshot: Promise<CommitSnapshot> | undefined;
  return async (entry) => {
    const deployed = deps.deployed;
    if (!deployed?.static || !deployed.commit) {
      throw new ZvError('INTERNAL', `static file ${entry.path}: no deployed commit to restore it from`);
    }
    snapshot ??= deps.source.snapshot({ repoURL: app.source.repoURL, branch: app.source.branch, namespace: app.namespace }, deployed.commit);
    const snap = await snapshot;
    const rel = [app.source.path, deployed.static.dir, entry.path].filter((p) => p && p !== '.').join('/');
    const r = await resolveInSnapshot(snap, rel);
    if (r.kind === 'escape' || r.kind === 'loop') {
      throw new ZvError('PATH_ESCAPE', `static file ${entry.path}: resolves outside the repository (or through a link loop)`);
    }
    if (r.kind === 'missing' || (r.entry.kind !== 'file' && r.entry.kind !== 'exec')) {
      throw new ZvError('INTERNAL', `static file ${entry.path}: not a file in commit ${deployed.commit.slice(0, 12)} (${rel})`);
    }
    return snap.read(r.entry);
  };
}
