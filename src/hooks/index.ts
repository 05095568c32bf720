// Webhooks (PRODUCT.md §11): POST /hooks/{github,gitlab,gitea,bitbucket,generic}. A verified push
// starts a sync of every application on that repository and branch at once, in the background,
// under the reconciler's cap on syncs at once; the answer (202 {triggered}) does not wait for them.
//
// Authentication is the provider's signature (or token) over the exact raw body, checked against
// the server's --webhook-secret and the secrets of the applications on the repository. With no
// secret configured at all, every delivery is refused (401): webhooks are never open by default.
import { Hono, type Context } from 'hono';
import { ZvError } from '../errors/registry.js';
import { errorResponse } from '../errors/respond.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Logger } from '../telemetry/log.js';
import type { AppRecord, SyncCause } from '../store/types.js';
import { DeliveryMemory } from './replay.js';
import { normalizeRepoUrl } from './urls.js';
import { deliveryId, hasProof, parseEvent, PayloadError, PROVIDERS, verifies, type Provider, type RefChange } from './providers.js';

export { normalizeRepoUrl } from './urls.js';
export { DeliveryMemory } from './replay.js';
export { PROVIDERS, type Provider } from './providers.js';

/** Largest webhook body read (GitHub caps its payloads at 25 MB, but a push of a few commits is a few KiB). */
export const DEFAULT_MAX_HOOK_BYTES = 1024 * 1024;

export interface WebhookDeps {
  /** Every registered application (the hook matches them by repository and branch). */
  apps(): Promise<AppRecord[]>;
  /** The application's own webhook secret, opened; null when it has none (the server secret covers it). */
  appSecret?(app: AppRecord): string | null | Promise<string | null>;
  /** --webhook-secret; null when none is configured. */
  serverSecret: string | null;
  /** Starts a sync in the background (Reconciler.sync, which queues it under --max-syncs). */
  sync(appId: number, cause: SyncCause): void;
  metrics?: Metrics;
  logger?: Logger;
  /** Body limit (default 1 MiB): more answers 413 without reading further. */
  maxBodyBytes?: number;
  /** Delivery ids already acted on (default: 10,000 ids for 1 h). */
  deliveries?: DeliveryMemory;
}

interface AppRef {
  namespace: string;
  name: string;
}

const ref = (a: AppRecord): AppRef => ({ namespace: a.namespace, name: a.name });

/** Reads at most `max` bytes of the body; 413 beyond, without reading more. */
async function rawBody(req: Request, max: number): Promise<Buffer> {
  const tooLarge = () => new ZvError('PAYLOAD_TOO_LARGE', `a webhook body is at most ${max} bytes`);
  if (Number(req.headers.get('content-length') ?? '0') > max) throw tooLarge();
  if (!req.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > max) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Deepest nesting of arrays and objects a webhook body may have (real push payloads have < 10). */
export const MAX_HOOK_JSON_DEPTH = 64;

/**
 * Whether `text` nests arrays and objects deeper than `max`, by one linear scan (strings skipped).
 * The body is parsed before its signature can be checked, and JSON.parse of a 1 MiB body nested
 * 500,000 deep held the event loop for about 0.4 s: such a body is refused unparsed.
 */
function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * JSON, or GitHub's (and Gitea's) form encoding (`payload=<json>`). A form content type without a
 * `payload` field is read as JSON: `curl -d '{…}'` sends JSON under that content type.
 */
function parseBody(raw: Buffer, contentType: string | null, provider: Provider): unknown {
  let text = raw.toString('utf8');
  if ((provider === 'github' || provider === 'gitea') && (contentType ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload !== null) text = payload;
  }
  if (text.trim() === '') throw new PayloadError('the body is empty; expected the JSON payload');
  if (nestedDeeperThan(text, MAX_HOOK_JSON_DEPTH)) throw new PayloadError(`the body is nested deeper than ${MAX_HOOK_JSON_DEPTH} levels; not a push payload`);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new PayloadError(`the body is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Whether automatic syncs of the application are paused (the suspend feature; absent before it). */
const isSuspended = (app: AppRecord): boolean => Boolean((app as { suspended?: unknown }).suspended);

export class Webhooks {
  private readonly deliveries: DeliveryMemory;
  private readonly max: number;

  constructor(private readonly deps: WebhookDeps) {
    this.deliveries = deps.deliveries ?? new DeliveryMemory();
    this.max = deps.maxBodyBytes ?? DEFAULT_MAX_HOOK_BYTES;
  }

  /** The Hono app to mount at /hooks. */
  routes(): Hono {
    const app = new Hono({ strict: false });
    for (const p of PROVIDERS) app.post(`/${p}`, (c) => this.handle(p, c));
    app.all('*', () => errorResponse(new ZvError('NOT_FOUND', `webhooks are POST /hooks/{${PROVIDERS.join(',')}}`)));
    return app;
  }

  private count(provider: Provider, result: string): void {
    this.deps.metrics?.webhooks.inc({ provider, result });
  }

  private refuse(provider: Provider, result: string, e: ZvError): Response {
    this.count(provider, result);
    this.deps.logger?.info({ provider, result }, `webhook refused: ${e.message}`);
    return errorResponse(e);
  }

  async handle(provider: Provider, c: Context): Promise<Response> {
    const req = c.req.raw;
    let raw: Buffer;
    try {
      raw = await rawBody(req, this.max);
    } catch (e) {
      return this.refuse(provider, 'too_large', e instanceof ZvError ? e : new ZvError('BAD_REQUEST', 'the body could not be read'));
    }
    const h = req.headers;
    let event;
    try {
      event = parseEvent(provider, h, parseBody(raw, h.get('content-type'), provider));
    } catch (e) {
      if (!(e instanceof PayloadError)) throw e;
      return this.refuse(provider, 'bad_request', new ZvError('BAD_REQUEST', `${provider} webhook: ${e.message}`));
    }
    const delivery = deliveryId(provider, h);

    // Applications on the repository (any branch): their secrets may authenticate the delivery.
    const wanted = new Set(event.kind === 'push' ? event.repoUrls.map(normalizeRepoUrl).filter((u): u is string => u !== null) : []);
    const all = await this.deps.apps();
    const onRepo = wanted.size === 0 ? [] : all.filter((a) => {
      const n = normalizeRepoUrl(a.source.repoURL);
      return n !== null && wanted.has(n);
    });

    // Which secrets the delivery proves: the server's, and each application's own.
    const proven = new Map<string, boolean>();
    const proves = (secret: string): boolean => {
      let ok = proven.get(secret);
      if (ok === undefined) proven.set(secret, (ok = verifies(provider, h, raw, secret)));
      return ok;
    };
    const server = this.deps.serverSecret;
    const serverOk = server !== null && proves(server);
    const authorized: AppRecord[] = [];
    let anySecret = server !== null;
    let anyOk = serverOk;
    for (const app of onRepo) {
      const own = (await this.deps.appSecret?.(app)) ?? null;
      if (own !== null) {
        anySecret = true;
        if (proves(own)) {
          anyOk = true;
          authorized.push(app);
        }
      } else if (serverOk) authorized.push(app);
    }
    if (!anySecret) {
      return this.refuse(provider, 'unauthorized', new ZvError('WEBHOOK_UNAUTHORIZED',
        'no webhook secret is configured for this repository: set the server\'s --webhook-secret or the application\'s webhookSecret (webhooks are closed without one)'));
    }
    if (!anyOk) {
      return this.refuse(provider, 'unauthorized', new ZvError('WEBHOOK_UNAUTHORIZED',
        hasProof(provider, h) ? `the ${provider} signature does not match the webhook secret` : `the ${provider} delivery carries no signature or token`));
    }

    const base = { provider, delivery };
    if (delivery !== null && this.deliveries.check(`${provider}\u0000${delivery}`)) {
      this.count(provider, 'duplicate');
      return c.json({ ...base, duplicate: true, triggered: [], reason: 'this delivery id was already received; nothing was triggered again' }, 200);
    }
    if (event.kind === 'ping') {
      this.count(provider, 'ping');
      return c.json({ ...base, ping: true, triggered: [] }, 200);
    }
    if (event.kind === 'other') {
      this.count(provider, 'ignored');
      return c.json({ ...base, triggered: [], reason: `the ${event.event} event is not a push; nothing to do` }, 200);
    }

    const branches = event.changes.filter((ch) => ch.kind === 'branch');
    if (branches.length === 0) {
      this.count(provider, 'tag');
      const tags = event.changes.filter((ch) => ch.kind === 'tag').map((t) => t.name);
      return c.json({ ...base, triggered: [], reason: tags.length ? `a tag push (${tags.join(', ')}); applications follow branches` : 'the push names no branch' }, 200);
    }
    const pushed = branches.filter((b) => !b.deleted);
    const deleted = branches.filter((b) => b.deleted).map((b) => b.name);
    const byBranch = new Map<string, RefChange>(pushed.map((b) => [b.name, b]));
    const triggered: AppRef[] = [];
    const skipped: (AppRef & { reason: string })[] = [];
    const cause: SyncCause = { trigger: 'webhook', actor: delivery === null ? provider : `${provider}:${delivery}` };
    for (const app of authorized) {
      if (!byBranch.has(app.source.branch)) continue;
      if (isSuspended(app)) {
        skipped.push({ ...ref(app), reason: 'suspended' });
        continue;
      }
      this.deps.sync(app.id, cause);
      triggered.push(ref(app));
    }
    const result = triggered.length ? 'triggered' : pushed.length === 0 ? 'deleted' : 'no_match';
    this.count(provider, result);
    this.deps.logger?.info({ provider, delivery, branches: [...byBranch.keys()], triggered: triggered.length, skipped: skipped.length }, 'webhook received');
    const body: Record<string, unknown> = { ...base, branches: [...byBranch.keys()], triggered };
    if (skipped.length) body['skipped'] = skipped;
    if (deleted.length) body['deleted'] = deleted;
    if (pushed.length === 0) body['reason'] = `the branch ${deleted.join(', ')} was deleted; nothing is synced (the applications keep serving what they have)`;
    else if (triggered.length === 0 && skipped.length === 0) body['reason'] = 'no application follows this repository and branch';
    return c.json(body, 202);
  }
}

export function webhooksApp(deps: WebhookDeps): Hono {
  return new Webhooks(deps).routes();
}
