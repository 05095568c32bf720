// Waiting for a service to be ready before its dependents start: the runtime's own report
// (getCurrentState) is polled until the service runs the wanted version and is healthy.
import type { ServiceRuntime, ServiceSpec, ServiceState } from '../../core/services/types.js';

/**
 * Ready: running the spec's version and healthy. A spec without a health check has nothing to
 * wait for beyond running, so there `unknown` health is enough (but `unhealthy` is not).
 */
export function isReady(state: ServiceState | undefined, spec: ServiceSpec): boolean {
  if (!state || state.status !== 'running' || state.version !== spec.version) return false;
  return state.health === 'healthy' || (spec.health === null && state.health !== 'unhealthy');
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  /** Checked between polls; true ends the wait early. */
  cancelled?: () => boolean;
}

export type WaitResult = { ok: true } | { ok: false; reason: string };

function describe(state: ServiceState | undefined, spec: ServiceSpec): string {
  if (!state) return 'not known to the runtime';
  const parts = [`status ${state.status}`, `health ${state.health}`];
  if (state.version !== spec.version) parts.push(`version ${state.version} (want ${spec.version})`);
  if (state.message) parts.push(state.message);
  return parts.join(', ');
}

export async function waitReady(runtime: ServiceRuntime, spec: ServiceSpec, opts: WaitOptions): Promise<WaitResult> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const state = (await runtime.getCurrentState()).find((s) => s.name === spec.name);
    if (isReady(state, spec)) return { ok: true };
    if (opts.cancelled?.()) return { ok: false, reason: `${spec.name}: the reconciler is stopping` };
    const left = deadline - Date.now();
    if (left <= 0) return { ok: false, reason: `${spec.name} not healthy after ${opts.timeoutMs} ms (${describe(state, spec)})` };
    await new Promise((r) => setTimeout(r, Math.min(opts.pollMs, left)));
  }
}
