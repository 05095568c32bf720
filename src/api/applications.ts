// The management API of PRODUCT.md §6 under /api/gitops/applications, as a Hono sub-app.
// Bodies are validated at the edge (ajv); every error answer has the registry's shape.
import { Hono, type Context } from 'hono';
import { Ajv } from 'ajv';
import { describeAjv, readJsonBody } from './body.js';
import { NOTIFY_EVENTS, notifyAad, type NotifyEventName } from '../core/notify.js';
import { WEBHOOK_SECRET_MAX, WEBHOOK_SECRET_MIN, webhookSecretAad } from '../core/webhooks.js';
import { allows, mayDeployServices, readableNamespaces, type Action } from '../core/access.js';
import { forbidden, principalOf, requireAccess } from './auth-context.js';
import { ZvError } from '../errors/registry.js';
import { validateAppName, validateNamespace } from '../core/names.js';
import { MAX_GLOB_LENGTH, MAX_PATH_GLOBS, checkPathGlobs } from '../core/globs.js';
import type { AppRecord, CommitVerification, NotifyTarget, Store } from '../store/types.js';
import { checkVerifyPolicy, verifySchema } from '../sources/git/verify-policy.js';
import type { Reconciler } from '../reconciler/reconciler.js';
import { errorResponse } from '../errors/respond.js';
import { inlineAuthSchema, publicRepoUrl, registerWithCredential, type InlineAuth } from '../credentials/registration.js';
import type { CredentialService } from '../credentials/service.js';
import type { AppLogs, LogEntry } from '../logs/types.js';

/** Per-application notification targets (PRODUCT.md §11): at most 10, each an http(s) URL. */
const notifySchema = {
  type: 'array',
  maxItems: 10,
  items: {
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: {
      url: { type: 'string', minLength: 1, maxLength: 2048 },
      events: { type: 'array', minItems: 1, maxItems: NOTIFY_EVENTS.length, uniqueItems: true, items: { enum: [...NOTIFY_EVENTS] } },
      format: { enum: ['json', 'slack'] },
      secret: { type: 'string', minLength: 1, maxLength: 256 },
    },
  },
} as const;

interface NotifyInput { url: string; events?: NotifyEventName[]; format?: 'json' | 'slack'; secret?: string }

const suspendBody = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 500 } },
} as const;

/** Monorepo globs (PRODUCT.md §11): repository paths whose changes sync the application; checked further by checkPaths. */
const pathsSchema = { type: 'array', maxItems: MAX_PATH_GLOBS, items: { type: 'string', minLength: 1, maxLength: MAX_GLOB_LENGTH } } as const;

/** A `paths` list as kept: checked, without duplicates; undefined when empty. */
function checkPaths(paths: string[] | undefined): string[] | undefined {
  if (!paths?.length) return undefined;
  const problem = checkPathGlobs(paths);
  if (problem) throw new ZvError('VALIDATION_FAILED', `source.${problem}`);
  return [...new Set(paths)];
}

const createBody = {
  type: 'object',
  required: ['name', 'namespace', 'source'],
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    namespace: { type: 'string' },
    source: {
      type: 'object',
      required: ['repoURL'],
      additionalProperties: false,
      properties: {
        repoURL: { type: 'string', minLength: 1 },
        branch: { type: 'string', minLength: 1 },
        path: { type: 'string' },
        subdir: { type: 'string' },
        verify: verifySchema,
        paths: pathsSchema,
      },
    },
    auth: inlineAuthSchema,
    notify: notifySchema,
    webhookSecret: { type: 'string', minLength: WEBHOOK_SECRET_MIN, maxLength: WEBHOOK_SECRET_MAX },
  },
} as const;

interface CreateBody {
  name: string;
  namespace: string;
  source: { repoURL: string; branch?: string; path?: string; subdir?: string; verify?: CommitVerification; paths?: string[] };
  /** Credentials for the repository (stored as a credential named after the application). */
  auth?: InlineAuth;
  notify?: NotifyInput[];
  /** This application's own webhook secret (sealed; never shown). */
  webhookSecret?: string;
}

const rollbackBody = {
  type: 'object',
  required: ['revision'],
  additionalProperties: false,
  properties: { revision: { type: 'string', minLength: 4, maxLength: 64, pattern: '^[0-9a-fA-F]+$' } },
} as const;

const patchBody = {
  type: 'object',
  required: ['source'],
  additionalProperties: false,
  properties: {
    source: {
      type: 'object',
      minProperties: 1,
      additionalProperties: false,
      properties: { repoURL: { type: 'string', minLength: 1 }, branch: { type: 'string', minLength: 1 }, path: { type: 'string' }, paths: pathsSchema },
    },
  },
} as const;

interface PatchBody { source: { repoURL?: string; branch?: string; path?: string; paths?: string[] } }

const ajv = new Ajv({ allErrors: true });
const validateRollback = ajv.compile<{ revision: string }>(rollbackBody);
const validatePatch = ajv.compile<PatchBody>(patchBody);
const validateCreate = ajv.compile<CreateBody>(createBody);
const validateSuspend = ajv.compile<{ reason?: string }>(suspendBody);

/** Checks notification targets (http or https URLs without credentials) and seals their secrets. */
export function notifyTargets(input: NotifyInput[], app: { namespace: string; name: string }, seal: ((plain: string, aad: string) => string) | undefined): NotifyTarget[] {
  return input.map((t, i) => {
    let u: URL;
    try {
      u = new URL(t.url);
    } catch {
      throw new ZvError('VALIDATION_FAILED', `notify.${i}.url: not a URL`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ZvError('VALIDATION_FAILED', `notify.${i}.url: must be an http or https URL`);
    if (u.username || u.password) throw new ZvError('VALIDATION_FAILED', `notify.${i}.url: must not carry a user or password (use secret to sign)`);
    const out: NotifyTarget = { url: t.url, format: t.format ?? 'json' };
    if (t.events) out.events = t.events;
    if (t.secret !== undefined) {
      if (!seal) throw new ZvError('VALIDATION_FAILED', `notify.${i}.secret: this server cannot keep secrets`);
      out.secret = seal(t.secret, notifyAad(app, t.url));
    }
    return out;
  });
}

/** A URL as shown to who may not change it: scheme and host only. */
function urlHost(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return '(invalid URL)';
  }
}

/** A target as the API shows it: never its secret. */
const notifyView = (t: NotifyTarget): Omit<NotifyTarget, 'secret'> & { secret?: true } => ({ url: t.url, format: t.format, ...(t.events ? { events: t.events } : {}), ...(t.secret ? { secret: true as const } : {}) });

function checkBranch(branch: string): void {
  if (branch.startsWith('-') || /[\s~^:?*[\\\0]|\.\.|@\{/.test(branch)) throw new ZvError('VALIDATION_FAILED', `source.branch: '${branch}' is not a valid branch name`);
}

function cleanSourcePath(p: string): string {
  const trimmed = p.replace(/^\.?\/+/, '').replace(/\/+$/, '');
  if (trimmed.split('/').some((seg) => seg === '..') || p.startsWith('/') || p.includes('\\') || p.includes('\0')) {
    throw new ZvError('VALIDATION_FAILED', `source.path: '${p}' must be a folder inside the repository`);
  }
  return trimmed === '.' ? '' : trimmed;
}

export interface ApiDeps {
  store: Store;
  reconciler: Reconciler;
  checkRepoUrl: (url: string) => void;
  /** Stores the credential a registration carries (auth, or user:password@ in the URL). */
  credentials: CredentialService;
  /** Seals a notification target's secret (the master key); without it targets may not carry one. */
  sealSecret?: (plain: string, aad: string) => string;
  /** The kept output of functions (src/logs/); without it GET …/logs serves services only. */
  logs?: AppLogs;
}

/** Lines a follower may have waiting beyond the first answer before it is dropped as too slow. */
const FOLLOW_MAX_QUEUED = 1000;
const FOLLOW_HEARTBEAT_MS = 15_000;

/** One line of the answer: a function's (`function`) or a service's (`service`). */
interface OutLine {
  at: string;
  stream: string;
  line: string;
  function?: string;
  service?: string;
}

interface LogQueryParams {
  function?: string;
  service?: string;
  since?: number;
  tail?: number;
  follow: boolean;
}

/** `10s`, `10m`, `2h`, `1d` or an ISO time → ms since the epoch. */
function parseSince(raw: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(raw);
  if (m) return Date.now() - Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  const t = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isNaN(t)) throw new ZvError('BAD_REQUEST', `since must be a duration (10s, 10m, 2h, 1d) or an ISO time, not '${raw}'`);
  return t;
}

function parseLogQuery(fn?: string, service?: string, since?: string, tail?: string, follow?: string): LogQueryParams {
  if (fn !== undefined && service !== undefined) throw new ZvError('BAD_REQUEST', 'pass function or service, not both');
  if (fn !== undefined && !fn.startsWith('/')) throw new ZvError('BAD_REQUEST', `function must be a path starting with '/', not '${fn}'`);
  if (service === '') throw new ZvError('BAD_REQUEST', 'service must not be empty');
  const n = tail === undefined ? undefined : Number(tail);
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw new ZvError('BAD_REQUEST', 'tail must be a non-negative integer');
  if (follow !== undefined && follow !== 'true' && follow !== 'false') throw new ZvError('BAD_REQUEST', 'follow must be true or false');
  return { function: fn, service, since: since === undefined ? undefined : parseSince(since), tail: n, follow: follow === 'true' };
}

/** A kept service line (`<ISO time> <stream> <text>`, node-service/log.ts) as a log entry. */
function serviceEntry(l: string, service: string): OutLine {
  const m = /^(\S+) (\S+) (.*)$/s.exec(l);
  return m ? { at: m[1]!, stream: m[2]!, line: m[3]!, service } : { at: new Date(0).toISOString(), stream: 'system', line: l, service };
}

/**
 * The answer of a followed log: the lines so far, then each new one, an empty line as a heartbeat;
 * ends when the store ends it (shutdown), and drops a client that reads too slowly.
 */
function followStream(initial: OutLine[], subscribe: (push: (e: OutLine) => void, end: () => void) => () => void): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let stop = (): void => undefined;
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      for (const e of initial) ctrl.enqueue(encoder.encode(`${JSON.stringify(e)}\n`));
      let ended = false;
      const limit = FOLLOW_MAX_QUEUED + initial.length;
      const end = (): void => {
        if (ended) return;
        ended = true;
        clearInterval(heartbeat);
        unsubscribe();
        try { ctrl.close(); } catch { /* already cancelled */ }
      };
      const send = (text: string): void => {
        if (ended) return;
        // highWaterMark 0: desiredSize is minus the chunks the client has not taken yet.
        if (-(ctrl.desiredSize ?? 0) > limit) return end();
        ctrl.enqueue(encoder.encode(text));
      };
      const unsubscribe = subscribe((e) => send(`${JSON.stringify(e)}\n`), end);
      const heartbeat = setInterval(() => send('\n'), FOLLOW_HEARTBEAT_MS);
      heartbeat.unref();
      stop = end;
    },
    cancel() {
      stop();
    },
  }, { highWaterMark: 0 });
}

export function applicationsApi(deps: ApiDeps): Hono {
  const { store, reconciler } = deps;
  const api = new Hono({ strict: false });

  /**
   * The application a `{name}` route means, among those the caller may read. With ?namespace= a
   * namespace the token does not cover is FORBIDDEN; without it, other namespaces are not searched
   * (so a scoped token learns nothing about them).
   */
  const findApp = async (c: Context, action: Action): Promise<AppRecord> => {
    const p = principalOf(c);
    const name = c.req.param('name') ?? '';
    const namespace = c.req.query('namespace');
    if (namespace !== undefined) {
      if (!allows(p, action, namespace)) throw forbidden(p, action, namespace);
      const app = await store.getApp(namespace, name);
      if (!app) throw new ZvError('APP_NOT_FOUND', `application '${name}' not found in namespace '${namespace}'`);
      return app;
    }
    const apps = (await store.findAppsByName(name)).filter((a) => allows(p, 'read', a.namespace));
    if (apps.length === 0) throw new ZvError('APP_NOT_FOUND', `application '${name}' not found`);
    if (apps.length > 1) {
      throw new ZvError('APP_AMBIGUOUS', `application '${name}' exists in namespaces ${apps.map((a) => `'${a.namespace}'`).join(', ')}; pass ?namespace=`);
    }
    const app = apps[0] as AppRecord;
    if (!allows(p, action, app.namespace)) throw forbidden(p, action, app.namespace);
    return app;
  };

  api.onError((err) => errorResponse(err));

  api.post('/', async (c) => {
    const body = await readJsonBody(c, validateCreate);
    const nameErr = validateAppName(body.name);
    if (nameErr) throw new ZvError('VALIDATION_FAILED', `name: ${nameErr}`);
    const nsErr = validateNamespace(body.namespace);
    if (nsErr) throw new ZvError('INVALID_NAMESPACE', `namespace: ${nsErr}`);
    const principal = requireAccess(c, 'write', body.namespace);
    const branch = body.source.branch ?? 'main';
    checkBranch(branch);
    deps.checkRepoUrl(body.source.repoURL);
    if (body.source.path !== undefined && body.source.subdir !== undefined && cleanSourcePath(body.source.path) !== cleanSourcePath(body.source.subdir)) {
      throw new ZvError('VALIDATION_FAILED', 'source.path and source.subdir differ; send one of them');
    }
    const path = cleanSourcePath(body.source.path ?? body.source.subdir ?? '');
    const verify = body.source.verify ? await checkVerifyPolicy(body.source.verify) : undefined;
    const paths = checkPaths(body.source.paths);
    const notify = body.notify?.length ? notifyTargets(body.notify, body, deps.sealSecret) : undefined;
    if (body.webhookSecret !== undefined && !deps.sealSecret) throw new ZvError('VALIDATION_FAILED', 'webhookSecret: this server cannot keep secrets');
    const webhookSecret = body.webhookSecret !== undefined && deps.sealSecret ? deps.sealSecret(body.webhookSecret, webhookSecretAad(body)) : undefined;
    const reg = { name: body.name, namespace: body.namespace, repoURL: body.source.repoURL, auth: body.auth, createdBy: principal.name };
    const app = await registerWithCredential({ store, credentials: deps.credentials }, reg, (repoURL) => reconciler.register(
      { name: body.name, namespace: body.namespace, source: { repoURL, branch, path, ...(verify ? { verify } : {}), ...(paths ? { paths } : {}) }, allowServices: mayDeployServices(principal), createdBy: principal.name, ...(notify ? { notify } : {}), ...(webhookSecret ? { webhookSecret } : {}) },
      { trigger: 'register', actor: principal.name },
    ));
    return c.json(await reconciler.status(app), 201);
  });

  api.get('/', async (c) => {
    const p = principalOf(c);
    const namespace = c.req.query('namespace');
    if (namespace !== undefined && !allows(p, 'read', namespace)) throw forbidden(p, 'read', namespace);
    const namespaces = readableNamespaces(p) ?? undefined;
    const num = (v: string | undefined, name: string, def: number): number => {
      if (v === undefined) return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new ZvError('BAD_REQUEST', `${name} must be a non-negative integer`);
      return n;
    };
    const limit = Math.min(num(c.req.query('limit'), 'limit', 100), 1000);
    const offset = num(c.req.query('offset'), 'offset', 0);
    const { apps, total } = await store.listApps({ namespace, namespaces, limit, offset });
    return c.json({ applications: await Promise.all(apps.map((a) => reconciler.status(a))), total });
  });

  api.get('/:name', async (c) => {
    const app = await findApp(c, 'read');
    return c.json(await reconciler.status(app));
  });

  api.get('/:name/syncs', async (c) => {
    const app = await findApp(c, 'read');
    const raw = c.req.query('limit');
    const limit = raw === undefined ? 20 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1) throw new ZvError('BAD_REQUEST', 'limit must be a positive integer');
    const syncs = await store.listSyncs(app.id, Math.min(limit, 100));
    return c.json({ syncs: syncs.map(({ id: _id, appId: _app, ...rest }) => rest) });
  });

  // Plan preview (PRODUCT.md §11): what a sync of ?revision= (a branch or a full commit SHA; default
  // the branch head) would do. Changes nothing, so a reader may ask; a commit the sync would refuse
  // is a 200 answer with `errors` (file:line), an unreadable revision the source's error.
  api.get('/:name/plan', async (c) => {
    const app = await findApp(c, 'read');
    const revision = c.req.query('revision');
    return c.json(await reconciler.preview(app, revision === undefined || revision === '' ? undefined : revision));
  });

  api.get('/:name/services/:service/logs', async (c) => {
    const app = await findApp(c, 'read');
    const lines = await reconciler.serviceLogs(app, c.req.param('service'));
    const raw = c.req.query('tail');
    const tail = raw === undefined ? lines.length : Number(raw);
    if (!Number.isInteger(tail) || tail < 0) throw new ZvError('BAD_REQUEST', 'tail must be a non-negative integer');
    return c.json({ service: c.req.param('service'), lines: tail === 0 ? [] : lines.slice(-tail) });
  });

  // Kept output (PRODUCT.md §12): of one function (?function=/path), one service (?service=name) or
  // every function; newline-delimited JSON; ?follow=true keeps the answer open and streams new lines
  // (an empty line every 15 s as a heartbeat). A reader may read it, like a service's logs
  // (docs/security.md says why); values of secret env vars are never kept.
  api.get('/:name/logs', async (c) => {
    const app = await findApp(c, 'read');
    const q = parseLogQuery(c.req.query('function'), c.req.query('service'), c.req.query('since'), c.req.query('tail'), c.req.query('follow'));
    let initial: OutLine[];
    let subscribe: ((push: (e: OutLine) => void, end: () => void) => () => void) | null = null;
    // An unknown service is 404 APP_NOT_FOUND.
    const memory = q.service !== undefined ? await reconciler.serviceLogs(app, q.service) : [];
    const kept = q.service !== undefined && deps.logs ? await deps.logs.read(app.namespace, app.name, q.service, { since: q.since, tail: q.tail }) : [];
    if (q.service !== undefined && deps.logs && (kept.length > 0 || memory.length === 0)) {
      // A service's lines kept on disk by the server (src/logs/).
      const logs = deps.logs;
      const service = q.service;
      initial = kept.map((e) => ({ ...e }));
      subscribe = (push, end) => logs.follow(app.namespace, app.name, service, (e) => push({ ...e }), end);
    } else if (q.service !== undefined) {
      // Without kept lines (a runtime that does not report them): the service's in-memory log.
      const service = q.service;
      const since = q.since;
      const toEntries = (lines: string[]): OutLine[] => lines.map((l) => serviceEntry(l, service)).filter((e) => since === undefined || Date.parse(e.at) >= since);
      const all = toEntries(memory);
      initial = q.tail === undefined ? all : q.tail === 0 ? [] : all.slice(-q.tail);
      // Services keep their output in memory (node-service/log.ts): followed by looking once a second.
      subscribe = (push, end) => {
        let last = all.at(-1);
        const timer = setInterval(() => {
          reconciler.serviceLogs(app, service).then((lines) => {
            const now = toEntries(lines);
            const i = last ? now.findLastIndex((e) => e.at === last!.at && e.line === last!.line) : -1;
            const fresh = i >= 0 ? now.slice(i + 1) : now.filter((e) => !last || e.at > last.at);
            for (const e of fresh) push(e);
            last = now.at(-1) ?? last;
          }, () => end());
        }, 1000);
        return () => clearInterval(timer);
      };
    } else {
      const logs = deps.logs;
      if (!logs) throw new ZvError('BAD_REQUEST', 'this server keeps no function logs; pass ?service=');
      const fn = q.function ?? null;
      initial = (await logs.read(app.namespace, app.name, fn, { since: q.since, tail: q.tail })).map((e: LogEntry) => ({ ...e }));
      subscribe = (push, end) => logs.follow(app.namespace, app.name, fn, (e) => push({ ...e }), end);
    }
    const headers = { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' };
    if (!q.follow) return c.body(initial.map((e) => `${JSON.stringify(e)}\n`).join(''), 200, headers);
    return c.body(followStream(initial, subscribe), 200, headers);
  });

  api.post('/:name/sync', async (c) => {
    const app = await findApp(c, 'write');
    const run = reconciler.sync(app.id, { cause: { trigger: 'api', actor: principalOf(c).name } });
    if (c.req.query('async') === 'true') {
      run.catch(() => undefined);
      const now = (await store.getAppById(app.id)) ?? app;
      return c.json({ ...(await reconciler.status(now)), status: 'syncing' }, 202);
    }
    return c.json(await reconciler.status(await run, { settled: true }));
  });

  // Suspend / resume (PRODUCT.md §11): polls, webhooks, retries and drift repair leave a suspended
  // application alone; an explicit sync still runs (and does not resume it).
  api.post('/:name/suspend', async (c) => {
    const app = await findApp(c, 'write');
    const raw = await c.req.text();
    let body: { reason?: string } = {};
    if (raw.trim() !== '') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new ZvError('BAD_REQUEST', 'the body must be JSON');
      }
      if (!validateSuspend(parsed)) throw new ZvError('VALIDATION_FAILED', describeAjv(validateSuspend.errors));
      body = parsed;
    }
    const reason = (body.reason ?? '').trim();
    if (/[\0\r\n]/.test(reason)) throw new ZvError('VALIDATION_FAILED', 'reason: must be one line');
    return c.json(await reconciler.status(await reconciler.suspend(app, { by: principalOf(c).name, reason })));
  });

  api.post('/:name/resume', async (c) => {
    const app = await findApp(c, 'write');
    return c.json(await reconciler.status(await reconciler.resume(app, principalOf(c).name)));
  });

  // Kept revisions and rollback without git (PRODUCT.md §11, "History and rollback").
  api.get('/:name/revisions', async (c) => {
    const app = await findApp(c, 'read');
    const revisions = await store.listRevisions(app.id);
    return c.json({
      revisions: revisions.map((r) => ({
        revision: r.commit,
        message: r.commitInfo?.message ?? null,
        author: r.commitInfo?.author ?? null,
        time: r.commitInfo?.time ?? null,
        deployedAt: r.deployedAt,
        by: r.cause.actor ?? r.cause.trigger,
        trigger: r.cause.trigger,
        functions: r.counts.functions,
        staticFiles: r.counts.staticFiles,
        services: r.counts.services,
        current: r.commit === app.commit,
      })),
    });
  });

  api.post('/:name/rollback', async (c) => {
    const app = await findApp(c, 'write');
    const body = await readJsonBody(c, validateRollback);
    const want = body.revision.toLowerCase();
    const matches = (await store.listRevisions(app.id)).filter((r) => r.commit === want || r.commit.startsWith(want));
    if (matches.length !== 1) {
      throw new ZvError('REVISION_NOT_FOUND', matches.length === 0
        ? `application '${app.name}' keeps no revision ${body.revision} (GET …/revisions lists the kept ones)`
        : `revision ${body.revision} is ambiguous: ${matches.map((r) => r.commit.slice(0, 12)).join(', ')}; give more of it`);
    }
    const record = await reconciler.rollback(app, (matches[0] as { commit: string }).commit, principalOf(c).name);
    return c.json(await reconciler.status(record, { settled: true }));
  });

  // Change where an application syncs from (PRODUCT.md §11): validated like a registration; what it
  // deployed keeps serving until a sync of the new source succeeds.
  api.patch('/:name', async (c) => {
    const app = await findApp(c, 'write');
    const body = await readJsonBody(c, validatePatch);
    const repoURL = body.source.repoURL ?? app.source.repoURL;
    if (body.source.repoURL !== undefined) {
      if (publicRepoUrl(repoURL) !== repoURL) {
        throw new ZvError('VALIDATION_FAILED', 'source.repoURL: must not carry a user or password here; store a credential for it (POST /api/credentials)');
      }
      deps.checkRepoUrl(repoURL);
    }
    const branch = body.source.branch ?? app.source.branch;
    checkBranch(branch);
    const path = body.source.path !== undefined ? cleanSourcePath(body.source.path) : app.source.path;
    // Monorepo globs: a new list replaces the old one, an empty list removes it.
    const { paths: kept, ...rest } = app.source;
    const paths = body.source.paths !== undefined ? checkPaths(body.source.paths) : kept;
    const record = await reconciler.changeSource(app, { ...rest, repoURL, branch, path, ...(paths ? { paths } : {}) }, { trigger: 'api', actor: principalOf(c).name });
    return c.json(await reconciler.status(record));
  });

  /**
   * The application's notification targets (never their secrets). A token that may not change them
   * (a reader) sees each URL's scheme and host only: a URL can be a credential (a Slack webhook's
   * path is its secret), so it is shown whole only to who may change it, as the logs never show it.
   */
  api.get('/:name/notify', async (c) => {
    const app = await findApp(c, 'read');
    const whole = allows(principalOf(c), 'write', app.namespace);
    return c.json({ notify: (app.notify ?? []).map((t) => ({ ...notifyView(t), ...(whole ? {} : { url: urlHost(t.url) }) })) });
  });

  api.delete('/:name', async (c) => {
    const app = await findApp(c, 'write');
    await reconciler.remove(app);
    // The credential an inline `auth` (or user:password@) made for this application goes with it:
    // same namespace, named after the application, for exactly its repository URL.
    const own = await store.getCredential(app.namespace, app.name);
    if (own && own.urlPrefix === app.source.repoURL) await store.deleteCredential(own.id);
    return c.body(null, 204);
  });

  return api;
}
