// Notifications (PRODUCT.md §11): an application's status transitions (synced, error, degraded,
// recovered) and rollbacks are POSTed to the server's --notify URLs and the application's own
// `notify` targets. Each URL has a bounded queue of its own and one delivery at a time: a POST has a
// time limit, is retried with backoff (1 s doubling, 5 tries by default), never follows a redirect,
// and its answer is not read beyond the status. Nothing here blocks or fails a sync: `emit` only
// queues. JSON bodies are signed with `X-Zerverless-Signature: sha256=<hex HMAC-SHA256 of the body>`
// (the target's secret, else the server's --notify-secret); `format: slack` sends Slack's
// incoming-webhook `{text}`.
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { notifyAad, type NotifyEventName } from '../core/notify.js';

export { notifyAad };
import { toZvError } from '../errors/registry.js';
import type { Logger } from '../telemetry/log.js';
import type { AppRecord, NotifyTarget } from '../store/types.js';

/** What is posted (format json). */
export interface NotificationBody {
  event: NotifyEventName;
  application: { namespace: string; name: string };
  commit: string | null;
  status: string;
  message: string;
  at: string;
}

export interface NotifyPolicy {
  /** Tries per notification (default 5). */
  tries: number;
  /** Wait before the second try, doubled after each (default 1 s). */
  firstDelayMs: number;
  /** Time limit of one POST, answer included (default 10 s). */
  timeoutMs: number;
  /** Notifications waiting per URL; the oldest is dropped beyond it (default 100). */
  queueLimit: number;
}

export const DEFAULT_NOTIFY_POLICY: NotifyPolicy = { tries: 5, firstDelayMs: 1000, timeoutMs: 10_000, queueLimit: 100 };

export interface NotifierDeps {
  /** The server's --notify URLs: every application's events, format json. */
  urls?: readonly string[];
  /** The server's --notify-secret: signs what has no secret of its own. */
  secret?: string | null;
  /** Opens a target's sealed secret (the master key); `aad` is `notifyAad(app, url)`. */
  unseal?: (sealed: string, aad: string) => string;
  logger: Logger;
  /** Counts deliveries: sent, failed (every try failed), dropped (queue full). */
  count?: (result: 'sent' | 'failed' | 'dropped') => void;
  policy?: Partial<NotifyPolicy>;
}

/** The signature header's value for `body` under `secret`. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const ICON: Record<NotifyEventName, string> = {
  synced: ':white_check_mark:', recovered: ':white_check_mark:', error: ':x:', degraded: ':warning:', rolledBack: ':rewind:',
};

/** Slack's incoming-webhook text of a notification. */
export function slackText(b: NotificationBody): string {
  const commit = b.commit ? ` at ${b.commit.slice(0, 12)}` : '';
  const what = b.event === 'rolledBack' ? 'rolled back' : b.event;
  return `${ICON[b.event]} ${b.application.namespace}/${b.application.name} ${what}${commit}${b.message ? `: ${b.message.split('\n')[0]}` : ''}`;
}

interface Delivery {
  url: string;
  body: string;
  headers: Record<string, string>;
  event: NotifyEventName;
}

/** One URL's queue: deliveries in order, one at a time. */
class Lane {
  readonly items: Delivery[] = [];
  running: Promise<void> | null = null;
}

export class Notifier {
  private readonly policy: NotifyPolicy;
  private readonly lanes = new Map<string, Lane>();
  private closed = false;
  private readonly abort = new AbortController();

  constructor(private readonly deps: NotifierDeps) {
    this.policy = { ...DEFAULT_NOTIFY_POLICY, ...deps.policy };
  }

  /** Queues the event for every target of the application that wants it; returns at once. */
  emit(app: Pick<AppRecord, 'namespace' | 'name' | 'notify'>, n: Omit<NotificationBody, 'application'>): void {
    if (this.closed) return;
    const body: NotificationBody = { event: n.event, application: { namespace: app.namespace, name: app.name }, commit: n.commit, status: n.status, message: n.message, at: n.at };
    const targets: NotifyTarget[] = [...(this.deps.urls ?? []).map((url) => ({ url, format: 'json' as const })), ...(app.notify ?? [])];
    for (const t of targets) {
      if (t.events && !t.events.includes(n.event)) continue;
      let secret = this.deps.secret ?? null;
      if (t.secret !== undefined) {
        try {
          secret = this.deps.unseal ? this.deps.unseal(t.secret, notifyAad(app, t.url)) : null;
        } catch (e) {
          this.deps.logger.warn({ namespace: app.namespace, app: app.name, err: toZvError(e).message }, 'notification secret cannot be opened; sent unsigned');
          secret = null;
        }
      }
      const text = JSON.stringify(t.format === 'slack' ? { text: slackText(body) } : body);
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'zerverless-notify', 'x-zerverless-event': n.event };
      if (secret) headers['x-zerverless-signature'] = signature(secret, text);
      this.enqueue({ url: t.url, body: text, headers, event: n.event });
    }
  }

  private enqueue(d: Delivery): void {
    let lane = this.lanes.get(d.url);
    if (!lane) {
      lane = new Lane();
      this.lanes.set(d.url, lane);
    }
    lane.items.push(d);
    while (lane.items.length > this.policy.queueLimit) {
      const dropped = lane.items.shift() as Delivery;
      this.deps.count?.('dropped');
      this.deps.logger.warn({ url: redact(dropped.url), event: dropped.event }, 'notification dropped: too many waiting for this URL');
    }
    if (!lane.running) {
      const l = lane;
      l.running = this.drain(l).finally(() => {
        l.running = null;
        if (l.items.length === 0 && this.lanes.get(d.url) === l) this.lanes.delete(d.url);
      });
    }
  }

  private async drain(lane: Lane): Promise<void> {
    for (let d = lane.items.shift(); d !== undefined && !this.closed; d = lane.items.shift()) await this.deliver(d);
  }

  private async deliver(d: Delivery): Promise<void> {
    let delay = this.policy.firstDelayMs;
    let last = '';
    for (let attempt = 1; attempt <= this.policy.tries && !this.closed; attempt++) {
      last = await this.post(d);
      if (last === '') {
        this.deps.count?.('sent');
        return;
      }
      if (attempt < this.policy.tries) {
        await this.sleep(delay);
        delay *= 2;
      }
    }
    if (this.closed) return;
    this.deps.count?.('failed');
    this.deps.logger.warn({ url: redact(d.url), event: d.event, tries: this.policy.tries, err: last }, 'notification not delivered');
  }

  /**
   * One POST; '' when it was accepted (2xx), else why not. node:http with a timer of our own, not
   * fetch: fetch follows its signal only through weak references (nodejs/undici#4068), so after a
   * garbage collection a POST to a receiver that never answers was never aborted and its URL's
   * queue stopped for good. No connection is kept or reused; the answer's body is never read.
   */
  private post(d: Delivery): Promise<string> {
    return new Promise((resolve) => {
      let url: URL;
      try {
        url = new URL(d.url);
      } catch {
        resolve('invalid URL');
        return;
      }
      const signal = this.abort.signal;
      let settled = false;
      const done = (why: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onClose);
        req.destroy();
        resolve(why);
      };
      const onClose = (): void => done('the notifier was closed');
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, { method: 'POST', agent: false, headers: { ...d.headers, 'content-length': String(Buffer.byteLength(d.body)) } });
      // Held by this closure and the timer list: nothing weak between the deadline and the socket.
      const timer = setTimeout(() => done(`no answer within ${this.policy.timeoutMs} ms`), this.policy.timeoutMs);
      timer.unref();
      signal.addEventListener('abort', onClose, { once: true });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) done('');
        else if (status >= 300 && status < 400) done(`answered ${status} (redirects are not followed)`);
        else done(`answered ${status}`);
      });
      req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      req.end(d.body);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      const signal = this.abort.signal;
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Resolves when every queue is empty (tests). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.lanes.values()].map((l) => l.running).filter((r) => r !== null);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  /** Stops: queued notifications are dropped, a POST under way is aborted. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await Promise.all([...this.lanes.values()].map((l) => l.running));
    this.lanes.clear();
  }
}

/** A URL as logged: scheme, host and path only (a Slack webhook's path is its secret, so not even that). */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return '(invalid URL)';
  }
}
