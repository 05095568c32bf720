// The OpenAPI 3.1 document of every route under /api and /hooks, served at GET /api/openapi.json
// (token-authenticated like the rest of /api; any role). One table below, one entry per route: its
// parameters, body, answers and error codes (statuses from the error registry). A route added to a
// Hono app without an entry here fails src/api/openapi.test.ts, which compares this table with the
// routes the apps register, both ways. docs/api.md has the prose.
import { ERRORS, type ErrorCode } from '../errors/registry.js';

type Schema = Record<string, unknown>;

interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  description: string;
  schema?: Schema;
  required?: boolean;
}

/** One route: `path` in OpenAPI form (`{name}`), from the server's root. */
export interface RouteDoc {
  method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  path: string;
  summary: string;
  /** Who may call it: a role of the token (per namespace where it names one), or a signature (webhooks). */
  access: 'any' | 'read' | 'write' | 'admin' | 'signed';
  params?: Param[];
  body?: { schema: Schema; required?: boolean; description?: string };
  /** The success answers: status → description (and schema). */
  ok: Record<number, { description: string; schema?: Schema }>;
  /** The error codes it may answer with (besides 401/403 of the guard, added for every /api route). */
  errors?: ErrorCode[];
}

const str = { type: 'string' } as const;
const int = { type: 'integer', minimum: 0 } as const;
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: 'object', properties, ...(required.length ? { required } : {}) });
const arr = (items: Schema): Schema => ({ type: 'array', items });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

const nameParam: Param = { name: 'name', in: 'path', required: true, description: "the application's name", schema: str };
const nsQuery: Param = { name: 'namespace', in: 'query', description: 'the namespace, when the name exists in several (required for a token not covering them all)', schema: str };
const app = (more: Omit<RouteDoc, 'path'> & { path?: string }): RouteDoc => ({ ...more, path: `/api/gitops/applications${more.path ?? ''}`, params: [...(more.path?.includes('{name}') ? [nameParam, nsQuery] : []), ...(more.params ?? [])] });

const sourceSchema = obj({
  repoURL: str, branch: str, path: { type: 'string', description: "folder of the repository holding zerverless.yaml / apps ('' = root)" }, subdir: { type: 'string', description: 'same as path' },
  verify: obj({ type: { enum: ['ssh', 'gpg'] }, keys: arr(str) }, ['type', 'keys']),
  paths: { type: 'array', maxItems: 20, items: { type: 'string', minLength: 1, maxLength: 200 }, description: 'monorepo globs from the repository root: a poll or webhook syncs only when a changed file matches one (or is the zerverless.yaml or under apps/ of the folder)' },
}, ['repoURL']);
const notifySchema = arr(obj({ url: str, events: arr({ enum: ['synced', 'error', 'degraded', 'recovered', 'rolledBack'] }), format: { enum: ['json', 'slack'] }, secret: str }, ['url']));
const hookAnswer = obj({ provider: str, delivery: { type: ['string', 'null'] }, branches: arr(str), triggered: arr(obj({ namespace: str, name: str })), skipped: arr(obj({ namespace: str, name: str, reason: str })), reason: str });

export const ROUTES: readonly RouteDoc[] = [
  app({ method: 'post', path: '', summary: 'Register an application (its first sync runs in the background)', access: 'write',
    body: { required: true, schema: obj({ name: str, namespace: str, source: sourceSchema, auth: { type: 'object', description: 'inline repository credentials (stored as a credential named after the application)' }, notify: notifySchema, webhookSecret: { type: 'string', minLength: 16, maxLength: 256 } }, ['name', 'namespace', 'source']) },
    ok: { 201: { description: 'the status', schema: ref('AppStatus') } }, errors: ['VALIDATION_FAILED', 'BAD_REQUEST', 'INVALID_NAMESPACE', 'INVALID_REPO_URL', 'APP_EXISTS', 'UNSUPPORTED_MEDIA_TYPE'] }),
  app({ method: 'get', path: '', summary: 'List applications the token may read', access: 'read',
    params: [{ name: 'namespace', in: 'query', description: 'only this namespace', schema: str }, { name: 'limit', in: 'query', description: 'at most (default 100, ≤ 1000)', schema: int }, { name: 'offset', in: 'query', description: 'skip', schema: int }],
    ok: { 200: { description: 'applications and their total', schema: obj({ applications: arr(ref('AppStatus')), total: int }) } }, errors: ['BAD_REQUEST'] }),
  app({ method: 'get', path: '/{name}', summary: "An application's status", access: 'read', ok: { 200: { description: 'the status', schema: ref('AppStatus') } }, errors: ['APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'patch', path: '/{name}', summary: 'Change the repository, branch, folder or monorepo globs; a sync of the new source starts', access: 'write',
    body: { required: true, schema: obj({ source: obj({ repoURL: str, branch: str, path: str, paths: arr(str) }) }, ['source']) },
    ok: { 200: { description: 'the status', schema: ref('AppStatus') } }, errors: ['VALIDATION_FAILED', 'BAD_REQUEST', 'INVALID_REPO_URL', 'APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'delete', path: '/{name}', summary: 'Remove an application and everything it deployed', access: 'write', ok: { 204: { description: 'removed' } }, errors: ['APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'post', path: '/{name}/sync', summary: 'Sync now (waits for the result unless async=true)', access: 'write',
    params: [{ name: 'async', in: 'query', description: 'true: answer 202 at once', schema: { enum: ['true', 'false'] } }],
    ok: { 200: { description: 'the status after the sync', schema: ref('AppStatus') }, 202: { description: 'the sync is queued', schema: ref('AppStatus') } }, errors: ['APP_NOT_FOUND', 'APP_AMBIGUOUS', 'NOT_READY'] }),
  app({ method: 'get', path: '/{name}/syncs', summary: 'Recent syncs with their plans, newest first', access: 'read',
    params: [{ name: 'limit', in: 'query', description: 'at most (default 20, ≤ 100)', schema: int }],
    ok: { 200: { description: 'the history', schema: obj({ syncs: arr({ type: 'object' }) }) } }, errors: ['BAD_REQUEST', 'APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'get', path: '/{name}/plan', summary: 'Plan preview: what a sync of a revision would do; changes nothing', access: 'read',
    params: [{ name: 'revision', in: 'query', description: 'a branch of the repository or a full commit SHA on the application branch (default: the branch head)', schema: str }],
    ok: { 200: { description: 'the plan; a commit the sync would refuse has `errors` (file:line)', schema: ref('PlanPreview') } },
    errors: ['BAD_REQUEST', 'APP_NOT_FOUND', 'APP_AMBIGUOUS', 'REVISION_NOT_FOUND', 'GIT_REF_NOT_FOUND', 'GIT_ERROR', 'GIT_TIMEOUT', 'NOT_READY'] }),
  app({ method: 'get', path: '/{name}/services/{service}/logs', summary: "A service's recent output", access: 'read',
    params: [{ name: 'service', in: 'path', required: true, description: 'the service', schema: str }, { name: 'tail', in: 'query', description: 'the last n lines', schema: int }],
    ok: { 200: { description: 'lines', schema: obj({ service: str, lines: arr(str) }) } }, errors: ['BAD_REQUEST', 'APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'get', path: '/{name}/logs', summary: 'Kept output of functions or a service (newline-delimited JSON); follow=true streams', access: 'read',
    params: [
      { name: 'function', in: 'query', description: "one function's path (/api/hello); default every function", schema: str },
      { name: 'service', in: 'query', description: 'one service instead of functions', schema: str },
      { name: 'since', in: 'query', description: 'a duration ago (10s, 10m, 2h, 1d) or an ISO time', schema: str },
      { name: 'tail', in: 'query', description: 'the last n lines', schema: int },
      { name: 'follow', in: 'query', description: 'true: stay open and stream new lines (an empty line every 15 s)', schema: { enum: ['true', 'false'] } },
    ],
    ok: { 200: { description: 'application/x-ndjson: one {at, stream, line, function|service} per line, oldest first' } }, errors: ['BAD_REQUEST', 'APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'post', path: '/{name}/suspend', summary: 'Pause automatic syncs (poll, webhooks, retries, drift repair)', access: 'write',
    body: { required: false, schema: obj({ reason: { type: 'string', maxLength: 500 } }) },
    ok: { 200: { description: 'the status with `suspended`', schema: ref('AppStatus') } }, errors: ['BAD_REQUEST', 'VALIDATION_FAILED', 'APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'post', path: '/{name}/resume', summary: 'Resume automatic syncs', access: 'write', ok: { 200: { description: 'the status', schema: ref('AppStatus') } }, errors: ['APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'get', path: '/{name}/revisions', summary: 'The kept deployed revisions, newest first', access: 'read',
    ok: { 200: { description: 'revisions', schema: obj({ revisions: arr({ type: 'object' }) }) } }, errors: ['APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  app({ method: 'post', path: '/{name}/rollback', summary: 'Switch back to a kept revision without git; suspends automatic syncs', access: 'write',
    body: { required: true, schema: obj({ revision: { type: 'string', minLength: 4, maxLength: 64, pattern: '^[0-9a-fA-F]+$' } }, ['revision']) },
    ok: { 200: { description: 'the status', schema: ref('AppStatus') } }, errors: ['VALIDATION_FAILED', 'BAD_REQUEST', 'REVISION_NOT_FOUND', 'REVISION_INCOMPLETE', 'APP_NOT_FOUND', 'APP_AMBIGUOUS', 'NOT_READY'] }),
  app({ method: 'get', path: '/{name}/notify', summary: "The application's notification targets (never their secrets)", access: 'read',
    ok: { 200: { description: 'targets', schema: obj({ notify: arr({ type: 'object' }) }) } }, errors: ['APP_NOT_FOUND', 'APP_AMBIGUOUS'] }),
  { method: 'post', path: '/api/tokens', summary: 'Create a token (its secret is shown once)', access: 'admin',
    body: { required: true, schema: obj({ name: str, role: { enum: ['admin', 'deployer', 'reader'] }, namespaces: arr(str), services: { type: 'boolean' }, expiresIn: { type: ['string', 'integer'] } }, ['name', 'role']) },
    ok: { 201: { description: 'the token with its secret', schema: { type: 'object' } } }, errors: ['VALIDATION_FAILED', 'BAD_REQUEST', 'UNSUPPORTED_MEDIA_TYPE'] },
  { method: 'get', path: '/api/tokens', summary: 'The tokens, never their secrets', access: 'admin', ok: { 200: { description: 'tokens', schema: obj({ tokens: arr({ type: 'object' }) }) } } },
  { method: 'delete', path: '/api/tokens/{id}', summary: 'Revoke a token', access: 'admin', params: [{ name: 'id', in: 'path', required: true, description: "the token's id", schema: str }],
    ok: { 204: { description: 'revoked' } }, errors: ['TOKEN_NOT_FOUND'] },
  { method: 'get', path: '/api/whoami', summary: 'What the presented token is', access: 'any', ok: { 200: { description: 'name, role, namespaces, services', schema: { type: 'object' } } } },
  { method: 'post', path: '/api/credentials', summary: 'Store a repository credential', access: 'write',
    body: { required: true, schema: { type: 'object', description: 'name, namespace, urlPrefix and username/password, token or sshKey' } },
    ok: { 201: { description: 'the credential, never its secret parts', schema: { type: 'object' } } }, errors: ['VALIDATION_FAILED', 'BAD_REQUEST', 'UNSUPPORTED_MEDIA_TYPE', 'CREDENTIAL_EXISTS', 'INVALID_NAMESPACE'] },
  { method: 'get', path: '/api/credentials', summary: 'The credentials of the namespaces the token reads', access: 'read',
    params: [{ name: 'namespace', in: 'query', description: "one namespace ('*': all, for an admin)", schema: str }],
    ok: { 200: { description: 'credentials', schema: obj({ credentials: arr({ type: 'object' }), total: int }) } } },
  { method: 'get', path: '/api/credentials/{name}', summary: 'One credential', access: 'read', params: [{ name: 'name', in: 'path', required: true, description: 'its name', schema: str }, nsQuery],
    ok: { 200: { description: 'the credential', schema: { type: 'object' } } }, errors: ['CREDENTIAL_NOT_FOUND', 'BAD_REQUEST'] },
  { method: 'delete', path: '/api/credentials/{name}', summary: 'Delete a credential', access: 'write', params: [{ name: 'name', in: 'path', required: true, description: 'its name', schema: str }, nsQuery],
    ok: { 204: { description: 'deleted' } }, errors: ['CREDENTIAL_NOT_FOUND', 'BAD_REQUEST'] },
  { method: 'get', path: '/api/secrets/recipient', summary: "The server's age recipient, to encrypt secrets files for it", access: 'any', ok: { 200: { description: 'the recipient', schema: obj({ recipient: str }) } } },
  { method: 'get', path: '/api/events', summary: 'Live events (text/event-stream): sync steps, builds, deploys, health checks, drift repairs, suspend/resume/rollback and status changes of the namespaces the token covers', access: 'read',
    params: [{ name: 'namespace', in: 'query', description: 'only this namespace', schema: str }, { name: 'app', in: 'query', description: 'only this application', schema: str },
      { name: 'Last-Event-ID', in: 'header', description: 'replay the events after this id (or a `reset` event when they are no longer kept)', schema: str },
      { name: 'ticket', in: 'query', description: 'a ticket of POST /api/events/ticket instead of the Authorization header (EventSource)', schema: str }],
    ok: { 200: { description: 'a text/event-stream: `id`, `event` (step, build, deploy, upgrade, remove, health, drift, suspend, resume, rollback, status, reset) and JSON `data` with namespace and app', schema: str } },
    errors: ['TOO_MANY_STREAMS'] },
  { method: 'post', path: '/api/events/ticket', summary: 'A single-use ticket (60 s) for GET /api/events?ticket= (browsers: EventSource sends no Authorization header)', access: 'read',
    ok: { 201: { description: 'the ticket', schema: obj({ ticket: str, expiresAt: str }) } }, errors: ['TOO_MANY_STREAMS'] },
  { method: 'get', path: '/api/openapi.json', summary: 'This document', access: 'any', ok: { 200: { description: 'OpenAPI 3.1', schema: { type: 'object' } } } },
  ...(['github', 'gitlab', 'gitea', 'bitbucket', 'generic'] as const).map((p): RouteDoc => ({
    method: 'post', path: `/hooks/${p}`, summary: `A ${p} push webhook: starts the matching applications' syncs`, access: 'signed',
    body: { required: true, schema: { type: 'object', description: p === 'generic' ? '{repoURL, branch}' : `the provider's push payload` } },
    ok: { 200: { description: 'a ping or a tag push: nothing synced', schema: hookAnswer }, 202: { description: 'the syncs are queued', schema: hookAnswer } },
    errors: ['WEBHOOK_UNAUTHORIZED', 'BAD_REQUEST', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'],
  })),
];

/** Error codes every token-authenticated route may answer with (the guard's). */
const GUARD: ErrorCode[] = ['UNAUTHENTICATED', 'FORBIDDEN'];

function responses(r: RouteDoc): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const [status, a] of Object.entries(r.ok)) out[status] = { description: a.description, ...(a.schema ? { content: { 'application/json': { schema: a.schema } } } : {}) };
  const codes = [...new Set([...(r.access === 'signed' ? [] : GUARD), ...(r.errors ?? [])])].filter((c) => c in ERRORS);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const c of codes) byStatus.set(ERRORS[c].status, [...(byStatus.get(ERRORS[c].status) ?? []), c]);
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: list.map((c) => `${c}: ${ERRORS[c].message}`).join('; '),
      content: { 'application/json': { schema: { ...ref('Error'), 'x-error-codes': list } } },
    };
  }
  return out;
}

let cached: Schema | undefined;

/** The document (built once). */
export function openApiDocument(version = '0'): Schema {
  if (cached) return cached;
  const paths: Record<string, Record<string, Schema>> = {};
  for (const r of ROUTES) {
    const op: Schema = {
      summary: r.summary,
      operationId: `${r.method}${r.path.replace(/[{}]/g, '').split(/[/._-]/).filter(Boolean).map((s) => s[0]?.toUpperCase() + s.slice(1)).join('')}`,
      'x-access': r.access,
      ...(r.access === 'signed' ? { security: [] } : {}),
      ...(r.params?.length ? { parameters: r.params.map((p) => ({ ...p, required: p.in === 'path' ? true : (p.required ?? false) })) } : {}),
      ...(r.body ? { requestBody: { required: r.body.required ?? false, content: { 'application/json': { schema: r.body.schema } } } } : {}),
      responses: responses(r),
    };
    (paths[r.path] ??= {})[r.method] = op;
  }
  cached = {
    openapi: '3.1.0',
    info: { title: 'zerverless', version, description: 'The management API (/api, bearer tokens; docs/api.md) and the webhooks (/hooks, signed by the provider). Error answers are {error: {code, message}}; x-error-codes lists the codes per status.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token (zv_…)' } },
      schemas: {
        Error: obj({ error: obj({ code: { enum: Object.keys(ERRORS) }, message: str }, ['code', 'message']) }, ['error']),
        AppStatus: obj({
          name: str, namespace: str,
          source: obj({ repoURL: str, branch: str, path: str, commit: { type: ['string', 'null'] }, seenCommit: { type: 'string', description: 'a newer head that changed nothing the application reads (monorepos)' }, paths: arr(str) }),
          lastSync: { type: ['string', 'null'] }, status: { enum: ['pending', 'syncing', 'synced', 'degraded', 'error'] }, message: str,
          functions: arr({ type: 'object' }), static: { type: ['object', 'null'] }, services: arr({ type: 'object' }), warnings: arr(str), retry: { type: 'object' }, suspended: { type: 'object' },
        }),
        PlanPreview: obj({
          revision: str, commit: obj({ sha: str, message: str, author: str, time: { type: ['string', 'null'] } }), fromCommit: { type: ['string', 'null'] },
          functions: obj({ create: arr(str), update: arr(obj({ path: str, changes: arr(str) })), delete: arr(str) }),
          static: obj({ added: int, changed: int, removed: int, unchanged: int, sample: obj({ added: arr(str), changed: arr(str), removed: arr(str) }) }),
          services: obj({ create: arr(str), update: arr(obj({ name: str, action: str, changes: arr(str) })), delete: arr(str) }),
          warnings: arr(str), errors: arr(obj({ file: { type: ['string', 'null'] }, line: { type: ['integer', 'null'] }, col: int, code: str, message: str })),
        }),
      },
    },
  };
  return cached;
}
