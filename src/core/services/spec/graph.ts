// The `depends_on` graph of a set of service specs: deploy order (dependencies first, ties by
// name), removal order (dependents first), a cycle (an error, named: `depends_on: cycle a → b →
// a`) and dependencies on a name no spec declares (a warning, as in bc_gitops: the name is left
// out of the order and nothing waits for it). Pure.
import type { Diagnostic } from './core.js';
import type { Position } from './core.js';
import type { ServiceSpec } from '../types.js';

export interface GraphOptions {
  /**
   * Where a message about `field` of `spec` points (`depends_on`, `depends_on[1]`), e.g. from
   * parseServiceSpec's locations. Default 1:1.
   */
  locate?: (spec: ServiceSpec, field: string) => Position | undefined;
}

export interface GraphCheck {
  /** Dependencies first; names in a cycle are left out; unknown dependencies are ignored. */
  order: string[];
  /** Dependencies on a name no spec declares: warnings (bc_gitops starts the service anyway). */
  missing: Diagnostic[];
  cycles: Diagnostic[];
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Kahn's algorithm over `nodes`, where `before(n)` lists the nodes that must come before `n`;
 * among the nodes that are ready, the smallest name goes first. Nodes left over are in (or behind)
 * a cycle.
 */
function kahn(nodes: string[], before: (n: string) => string[]): { order: string[]; rest: string[] } {
  const set = new Set(nodes);
  const waiting = new Map<string, number>();
  const after = new Map<string, string[]>();
  for (const n of set) {
    const deps = [...new Set(before(n))].filter((d) => set.has(d));
    waiting.set(n, deps.length);
    for (const d of deps) after.set(d, [...(after.get(d) ?? []), n]);
  }
  const ready = [...set].filter((n) => waiting.get(n) === 0).sort(byName);
  const order: string[] = [];
  while (ready.length) {
    const n = ready.shift() as string;
    order.push(n);
    for (const m of after.get(n) ?? []) {
      const left = (waiting.get(m) ?? 0) - 1;
      waiting.set(m, left);
      if (left === 0) {
        ready.push(m);
        ready.sort(byName);
      }
    }
  }
  const done = new Set(order);
  return { order, rest: [...set].filter((n) => !done.has(n)).sort(byName) };
}

/** One cycle through `start` inside `within`, as a path start → … → start (depth-first, by name). */
function cycleFrom(start: string, deps: Map<string, string[]>, within: Set<string>): string[] | undefined {
  const onPath = new Set<string>();
  const dead = new Set<string>();
  const path: string[] = [];
  const visit = (n: string): boolean => {
    path.push(n);
    onPath.add(n);
    for (const d of [...(deps.get(n) ?? [])].sort(byName)) {
      if (d === start) {
        path.push(d);
        return true;
      }
      if (within.has(d) && !onPath.has(d) && !dead.has(d) && visit(d)) return true;
    }
    path.pop();
    onPath.delete(n);
    dead.add(n);
    return false;
  };
  return visit(start) ? path : undefined;
}

export function checkServiceGraph(specs: ServiceSpec[], opts: GraphOptions = {}): GraphCheck {
  const byNameMap = new Map(specs.map((s) => [s.name, s]));
  const deps = new Map(specs.map((s) => [s.name, s.dependsOn]));
  const diag = (spec: ServiceSpec, field: string, fallback: string, message: string): Diagnostic => {
    const pos = opts.locate?.(spec, field) ?? opts.locate?.(spec, fallback) ?? { line: 1, col: 1 };
    return { file: spec.file, line: pos.line, col: pos.col, field: 'depends_on', message };
  };
  const missing: Diagnostic[] = [];
  for (const s of specs) {
    s.dependsOn.forEach((d, i) => {
      if (!byNameMap.has(d)) {
        missing.push(diag(s, `depends_on[${i}]`, 'depends_on', `${s.name} depends on "${d}", which no service spec declares (ignored)`));
      }
    });
  }
  const { order, rest } = kahn([...byNameMap.keys()], (n) => deps.get(n) ?? []);
  // Left over: nodes on a cycle and nodes that depend on one. Report each cycle once, from the
  // smallest name on it; nodes only behind a cycle have no cycle of their own.
  const cycles: Diagnostic[] = [];
  const within = new Set(rest);
  const reported = new Set<string>();
  for (const n of rest) {
    if (reported.has(n)) continue;
    const cycle = cycleFrom(n, deps, within);
    if (!cycle) continue;
    for (const m of cycle) reported.add(m);
    const spec = byNameMap.get(n) as ServiceSpec;
    const i = spec.dependsOn.indexOf(cycle[1] as string);
    cycles.push(diag(spec, `depends_on[${i}]`, 'depends_on', `cycle ${cycle.join(' → ')}`));
  }
  return { order, missing, cycles };
}

/**
 * Deploy order, dependencies first (ties by name), with the unknown dependencies as `warnings`; or
 * every cycle. A dependency no spec declares is not waited for.
 */
export function orderServices(specs: ServiceSpec[], opts: GraphOptions = {}): { order: string[]; warnings: Diagnostic[] } | { errors: Diagnostic[] } {
  const dup = new Set<string>();
  for (const s of specs) {
    if (dup.has(s.name)) throw new Error(`orderServices: duplicate service name ${s.name}`);
    dup.add(s.name);
  }
  const { order, missing, cycles } = checkServiceGraph(specs, opts);
  return cycles.length ? { errors: cycles } : { order, warnings: missing };
}

/**
 * The order to remove `names` in: dependents first, per the `depends_on` of `specs` (the specs
 * they were deployed with); ties by name. Only dependents that are themselves removed are waited
 * for. Names on a cycle go last, by name.
 */
export function removalOrder(names: string[], specs: ServiceSpec[]): string[] {
  const wanted = [...new Set(names)];
  const dependents = new Map<string, string[]>();
  for (const s of specs) {
    for (const d of s.dependsOn) dependents.set(d, [...(dependents.get(d) ?? []), s.name]);
  }
  const { order, rest } = kahn(wanted, (n) => dependents.get(n) ?? []);
  return [...order, ...rest];
}
