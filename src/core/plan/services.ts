// Diff of desired service specs vs the last applied ones → a plan of service actions (PRODUCT.md §8).
// Pure data, like the function plan: printable as JSON, applied by the service reconciler.
//
// Everything in a spec counts. Per service the strongest change wins, and `changes` lists all:
//   version or source changed          → upgrade (fromVersion, toVersion)
//   env keys added, changed or removed → reconfigure (changes: env.<KEY>)
//   health, depends_on, route or port  → apply (changes: health | depends_on | route | port)
// A name only in `desired` is a deploy, a name only in `current` a remove. `file` (where the spec
// was read from) is not part of what runs and does not count.
import type { ServiceAction, ServiceChange, ServiceSpec } from '../services/types.js';

/** JSON with sorted keys and no undefined members: equal values give equal strings. */
export function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonical(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}

function sameDeps(a: readonly string[], b: readonly string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** The env keys that were added, changed or removed, sorted, as `env.<KEY>`. */
export function envChanges(from: Record<string, string>, to: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(from), ...Object.keys(to)]);
  const out: string[] = [];
  for (const k of keys) {
    const has = Object.prototype.hasOwnProperty;
    const a = has.call(from, k) ? from[k] : undefined;
    const b = has.call(to, k) ? to[k] : undefined;
    if (a !== b) out.push(`env.${k}`);
  }
  return out.sort();
}

/** What differs between two specs of the same name, in a fixed order. Empty: nothing. */
export function specChanges(from: ServiceSpec, to: ServiceSpec): string[] {
  const out: string[] = [];
  if (from.version !== to.version) out.push('version');
  if (canonical(from.source) !== canonical(to.source)) out.push('source');
  out.push(...envChanges(from.env, to.env));
  if (canonical(from.health) !== canonical(to.health)) out.push('health');
  if (!sameDeps(from.dependsOn, to.dependsOn)) out.push('depends_on');
  if ((from.route ?? null) !== (to.route ?? null)) out.push('route');
  if ((from.port ?? null) !== (to.port ?? null)) out.push('port');
  return out;
}

function actionFor(changes: readonly string[]): ServiceAction {
  if (changes.length === 0) return 'unchanged';
  if (changes.includes('version') || changes.includes('source')) return 'upgrade';
  if (changes.some((c) => c.startsWith('env.'))) return 'reconfigure';
  return 'apply';
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The plan that takes the services from `current` (last applied) to `desired`, sorted by name.
 * Dependency order is the reconciler's business; the plan is only what changes.
 */
export function planServices(desired: readonly ServiceSpec[], current: readonly ServiceSpec[]): ServiceChange[] {
  const before = new Map(current.map((s) => [s.name, s]));
  const after = new Map(desired.map((s) => [s.name, s]));
  const plan: ServiceChange[] = [];
  for (const spec of after.values()) {
    const old = before.get(spec.name);
    if (!old) {
      plan.push({ name: spec.name, action: 'deploy', toVersion: spec.version });
      continue;
    }
    const changes = specChanges(old, spec);
    const action = actionFor(changes);
    const change: ServiceChange = { name: spec.name, action, fromVersion: old.version, toVersion: spec.version };
    if (changes.length) change.changes = changes;
    plan.push(change);
  }
  for (const old of before.values()) {
    if (!after.has(old.name)) plan.push({ name: old.name, action: 'remove', fromVersion: old.version });
  }
  return plan.sort(byName);
}

export type ServicePlanSummary = Record<ServiceAction, number>;

export function summarizeServicePlan(plan: readonly ServiceChange[]): ServicePlanSummary {
  const out: ServicePlanSummary = { deploy: 0, upgrade: 0, reconfigure: 0, apply: 0, remove: 0, unchanged: 0 };
  for (const c of plan) out[c.action]++;
  return out;
}

/** True when applying the plan calls nothing. */
export function isServicePlanNoop(plan: readonly ServiceChange[]): boolean {
  return plan.every((c) => c.action === 'unchanged');
}
