// Metrics from the telemetry events (events.ts), rather than threaded through the code: sync
// durations from the sync's steps, git and build durations, and the removal of the per-function
// series of deleted applications and functions.
import { CHANNELS, observer, type EventMeta } from './events.js';

/** The sync's step events (CHANNELS.syncStep: `phase` start / end, `syncId`, `step`, `result`). */
const SYNC_STEP = 'zerverless:sync:step';
import type { Metrics } from './metrics.js';

export interface ObserveOptions {
  /** The function paths an application serves now (null: none, e.g. deleted). */
  functionsOf(namespace: string, app: string): Iterable<string> | null;
}

/** Syncs under way, by sync id: when the first step started and whether a step failed. */
interface Running {
  started: number;
  failed: boolean;
}

const MAX_RUNNING = 10_000;

/** Subscribes `metrics` to the events; returns the unsubscribe. */
export function observeEvents(metrics: Metrics, opts: ObserveOptions): () => void {
  const running = new Map<unknown, Running>();
  const subs = observer();
  const on = subs.on;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const seconds = (m: EventMeta): number => (typeof m.duration === 'number' ? m.duration / 1000 : 0);

  on(SYNC_STEP, (m) => {
    const id = m.syncId;
    if (m.phase === 'start') {
      if (!running.has(id)) {
        if (running.size >= MAX_RUNNING) running.clear();
        running.set(id, { started: performance.now(), failed: false });
      }
      return;
    }
    const r = running.get(id);
    if (!r) return;
    if (m.result === 'error' && m.step !== 'finish') r.failed = true;
    if (m.step !== 'finish') return;
    running.delete(id);
    const namespace = str(m.namespace);
    const app = str(m.app);
    metrics.syncDuration.observe({ namespace, app, result: r.failed ? 'error' : 'success' }, (performance.now() - r.started) / 1000);
    // Functions the application no longer serves lose their series.
    const now = opts.functionsOf(namespace, app);
    metrics.functions.retain(namespace, app, new Set(now ?? []));
  });
  on(CHANNELS.gitPull, (m) => metrics.gitDuration.observe({ op: 'fetch', result: str(m.result) || 'ok' }, seconds(m)));
  on(CHANNELS.gitLsRemote, (m) => metrics.gitDuration.observe({ op: 'ls-remote', result: str(m.result) || 'ok' }, seconds(m)));
  on(CHANNELS.buildStop, (m) => {
    // A docker function's build names its dockerfile; a service version's names its version.
    const kind = 'dockerfile' in m ? 'docker' : 'service';
    metrics.buildDuration.observe({ kind, result: str(m.result) || 'ok' }, seconds(m));
  });
  on(CHANNELS.removeStop, (m) => {
    // An application deleted (the services' remove events name a service and carry no namespace).
    if (typeof m.namespace !== 'string' || 'version' in m || 'from_version' in m) return;
    const namespace = m.namespace;
    const app = str(m.app);
    metrics.functions.removeApp(namespace, app);
    // its sync duration series go too
    for (const result of ['success', 'error']) metrics.syncDuration.remove({ namespace, app, result });
  });
  return () => subs.close();
}
