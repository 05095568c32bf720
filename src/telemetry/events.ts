// Telemetry events on node:diagnostics_channel (PRODUCT.md §8). Channel names are stable API.
// `traced` publishes `…:start` then `…:stop` (or `…:error`) with `duration` in milliseconds.
import diagnostics_channel from 'node:diagnostics_channel';

export const CHANNELS = {
  reconcileStart: 'zerverless:reconcile:start',
  reconcileStop: 'zerverless:reconcile:stop',
  reconcileError: 'zerverless:reconcile:error',
  deployStart: 'zerverless:deploy:start',
  deployStop: 'zerverless:deploy:stop',
  upgradeStart: 'zerverless:upgrade:start',
  upgradeStop: 'zerverless:upgrade:stop',
  removeStart: 'zerverless:remove:start',
  removeStop: 'zerverless:remove:stop',
  gitPull: 'zerverless:git:pull',
  /** Each `git ls-remote` of a branch head: `repo`, `branch`, `duration`, `result`. */
  gitLsRemote: 'zerverless:git:ls-remote',
  buildStart: 'zerverless:build:start',
  buildStop: 'zerverless:build:stop',
  healthCheck: 'zerverless:health:check',
  /** One drift repair (PRODUCT.md §11): a container, service process or static blob put back, or not. */
  driftRepair: 'zerverless:drift:repair',
  /** One step of a sync (head, snapshot, read, …, finish): `phase` start, then end with `duration` and `result`. */
  syncStep: 'zerverless:sync:step',
  /** An application's automatic syncs suspended, resumed, or its deployment rolled back (GET /api/events). */
  appSuspend: 'zerverless:app:suspend',
  appResume: 'zerverless:app:resume',
  appRollback: 'zerverless:app:rollback',
} as const;

export type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS];
export type EventMeta = Record<string, unknown>;

/**
 * Subscriptions of one observer (metrics, traces): each handler is kept from throwing into the work
 * that published the event; `close()` unsubscribes them all.
 */
export function observer(): { on(name: string, fn: (m: EventMeta) => void): void; close(): void } {
  const subs: [string, (m: unknown) => void][] = [];
  return {
    on(name, fn) {
      const h = (m: unknown): void => {
        try {
          fn(m as EventMeta);
        } catch {
          // telemetry never breaks the work it observes
        }
      };
      diagnostics_channel.subscribe(name, h);
      subs.push([name, h]);
    },
    close() {
      for (const [name, h] of subs.splice(0)) diagnostics_channel.unsubscribe(name, h);
    },
  };
}

export function publish(name: ChannelName, meta: EventMeta): void {
  const ch = diagnostics_channel.channel(name);
  if (ch.hasSubscribers) ch.publish(meta);
}

type Phase = 'reconcile' | 'deploy' | 'upgrade' | 'remove' | 'build';

/**
 * Runs `fn` between `zerverless:<phase>:start` and `:stop` events. The stop event carries `duration`
 * and `result` (`ok` or `error`); for `reconcile`, a failure publishes `:error` instead of `:stop`.
 * `more` may add metadata known only at the end (e.g. the commit).
 */
export async function traced<T>(phase: Phase, meta: EventMeta, fn: (more: EventMeta) => Promise<T>): Promise<T> {
  const started = performance.now();
  const more: EventMeta = {};
  publish(`zerverless:${phase}:start` as ChannelName, { ...meta });
  try {
    const out = await fn(more);
    publish(`zerverless:${phase}:stop` as ChannelName, { ...meta, ...more, result: 'ok', duration: performance.now() - started });
    return out;
  } catch (e) {
    const end = { ...meta, ...more, result: 'error', error: e instanceof Error ? e.message : String(e), duration: performance.now() - started };
    publish((phase === 'reconcile' ? CHANNELS.reconcileError : `zerverless:${phase}:stop`) as ChannelName, end);
    throw e;
  }
}
