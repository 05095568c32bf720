// Which notification (PRODUCT.md §11) a status change is: pure decisions, no I/O. A notification
// is sent on a transition, not on every identical result: `synced` after `synced` is an event only
// when the commit changed, `error` after `error` only when the message changed.
import type { AppSyncStatus } from './desired.js';

export const NOTIFY_EVENTS = ['synced', 'error', 'degraded', 'recovered', 'rolledBack'] as const;
export type NotifyEventName = (typeof NOTIFY_EVENTS)[number];

/** The part of an application's record a transition is decided on. */
export interface StatusPoint {
  status: AppSyncStatus;
  commit: string | null;
  message: string;
}

/**
 * The event of a sync that took the application from `before` to `after`, or null. A return to
 * `synced` from `error` or `degraded` is `recovered` (one event, not `synced` as well).
 */
export function transitionEvent(before: StatusPoint, after: StatusPoint): NotifyEventName | null {
  switch (after.status) {
    case 'synced':
      if (before.status === 'error' || before.status === 'degraded') return 'recovered';
      return before.status !== 'synced' || before.commit !== after.commit ? 'synced' : null;
    case 'degraded':
      return before.status !== 'degraded' || before.commit !== after.commit || before.message !== after.message ? 'degraded' : null;
    case 'error':
      return before.status !== 'error' || before.message !== after.message ? 'error' : null;
    default:
      return null;
  }
}

/** The additional data a notification target's sealed secret is bound to (one application, one URL). */
export function notifyAad(app: { namespace: string; name: string }, url: string): string {
  return `notify\0${app.namespace}\0${app.name}\0${url}`;
}
