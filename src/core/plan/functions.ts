// The functions and static-site half of an application's plan: desired vs deployed state → changes.
// planApplication (./index.ts) adds the services half and is what the reconciler calls.
import type { DeployedState, DesiredFunction, DesiredState, FunctionRuntimeKind } from '../desired.js';
import { envChanges } from '../secrets.js';
import type { ServiceChange } from '../services/types.js';

export type Action = 'create' | 'update' | 'delete' | 'unchanged';

export interface FunctionChange {
  path: string;
  runtime: FunctionRuntimeKind;
  action: Action;
  /** For updates: what differs. */
  fromHash?: string;
  toHash?: string;
  /**
   * For updates: what changed, by name only — `code`, `timeout`, `memory`, `port`, `image`,
   * `runtime`, `envFrom`, `env.DB_PASSWORD changed|added|removed`. Never a value.
   */
  changes?: string[];
}

export interface StaticChange {
  path: string;
  action: Action;
}

/**
 * Counts over every kind: functions and static files by their action, services as create (deploy),
 * update (upgrade, reconfigure, apply), delete (remove) and unchanged.
 */
export interface PlanSummary {
  create: number;
  update: number;
  delete: number;
  unchanged: number;
}

export interface Plan {
  fromCommit: string | null;
  toCommit: string;
  functions: FunctionChange[];
  /** Static files created, updated or deleted (unchanged ones are only counted in `summary`; older recorded plans list them too). */
  static: StaticChange[];
  /** The static site as a whole: set up, replaced, removed or kept. */
  staticSite: Action | null;
  summary: PlanSummary;
  /**
   * The services of the apps/ folder: deploy, upgrade, reconfigure, apply, remove, unchanged.
   * Absent only in plans recorded before version 0.9 (read back from the history).
   */
  services?: ServiceChange[];
}

/** What differs between two versions of a function, by name (values of env never appear). */
export function functionChanges(before: DesiredFunction, after: DesiredFunction): string[] {
  const out: string[] = [];
  if (before.runtime !== after.runtime || before.language !== after.language) out.push('runtime');
  if (before.code !== after.code) out.push(after.runtime === 'docker' ? 'dockerfile' : 'code');
  if (before.timeoutMs !== after.timeoutMs) out.push('timeout');
  if (before.memoryMb !== after.memoryMb) out.push('memory');
  if (before.port !== after.port) out.push('port');
  if (JSON.stringify(before.build ?? null) !== JSON.stringify(after.build ?? null)) out.push('image');
  const files = (f: DesiredFunction): string => JSON.stringify((f.secrets ?? []).map((s) => s.file));
  if (files(before) !== files(after)) out.push('envFrom');
  out.push(...envChanges(before, after));
  return out;
}

function byPath<T extends { path: string }>(a: T, b: T): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** The plan of the functions and the static site only (services: see planApplication). */
export function planFunctions(desired: DesiredState, deployed: DeployedState | null): Plan {
  const summary: PlanSummary = { create: 0, update: 0, delete: 0, unchanged: 0 };
  const count = <T extends { action: Action }>(c: T): T => {
    summary[c.action]++;
    return c;
  };

  const before = new Map((deployed?.functions ?? []).map((f) => [f.path, f]));
  const after = new Map(desired.functions.map((f) => [f.path, f]));
  const functions: FunctionChange[] = [];
  for (const f of desired.functions) {
    const old = before.get(f.path);
    if (!old) functions.push(count({ path: f.path, runtime: f.runtime, action: 'create', toHash: f.hash }));
    else if (old.hash !== f.hash) functions.push(count({ path: f.path, runtime: f.runtime, action: 'update', fromHash: old.hash, toHash: f.hash, changes: functionChanges(old, f) }));
    else functions.push(count({ path: f.path, runtime: f.runtime, action: 'unchanged', toHash: f.hash }));
  }
  for (const f of deployed?.functions ?? []) {
    if (!after.has(f.path)) functions.push(count({ path: f.path, runtime: f.runtime, action: 'delete', fromHash: f.hash }));
  }
  functions.sort(byPath);

  // Unchanged static files are counted, not listed: a plan (kept in every sync record) of a one-file
  // change in a 20,000-file site lists one file. The same array on both sides (the tree reader hands
  // back the deployed one when no static path changed) is not even compared.
  const staticChanges: StaticChange[] = [];
  const oldList = deployed?.static?.files ?? [];
  const newList = desired.static?.files ?? [];
  if (oldList === newList) summary.unchanged += newList.length;
  else {
    const oldFiles = new Map(oldList.map((f) => [f.path, f.hash]));
    const newFiles = new Map(newList.map((f) => [f.path, f.hash]));
    for (const [path, hash] of newFiles) {
      const old = oldFiles.get(path);
      if (old === hash) summary.unchanged++;
      else staticChanges.push(count({ path, action: old === undefined ? 'create' : 'update' }));
    }
    for (const path of oldFiles.keys()) if (!newFiles.has(path)) staticChanges.push(count({ path, action: 'delete' }));
    staticChanges.sort(byPath);
  }

  let staticSite: Action | null = null;
  const had = deployed?.static ?? null;
  const has = desired.static;
  if (had && !has) staticSite = 'delete';
  else if (!had && has) staticSite = 'create';
  else if (had && has) {
    const changed = had.dir !== has.dir || staticChanges.length > 0;
    staticSite = changed ? 'update' : 'unchanged';
  }

  return { fromCommit: deployed?.commit ?? null, toCommit: desired.commit, functions, static: staticChanges, staticSite, summary };
}

/** True when applying the plan changes nothing that is served. */
export function isNoop(plan: Plan): boolean {
  return plan.summary.create === 0 && plan.summary.update === 0 && plan.summary.delete === 0 && plan.staticSite !== 'create' && plan.staticSite !== 'delete';
}
