// parseServiceSpec: the text of one `apps/<name>/` spec file → ServiceSpec, or every problem at
// once as `file:line:col: field: message` diagnostics sorted by position. Three passes: the format
// (Erlang terms, YAML or JSON: formats.ts), the one JSON Schema for all three (schema.ts), then the
// rules across fields.
//
// Decisions: atoms, binaries and strings are all strings; `undefined`/`nil` (Erlang) and empty
// values (YAML) mean "not set" (a required field set to them is missing). git accepts `branch` or `tag` as aliases of
// `ref` (exactly one of the three); release needs an http(s) `url` and a 64-hex `sha256` (stored
// lower-case; a sha256 on another source is ignored with a warning, as bc_gitops does); `hex` and
// `mesh` are refused by name. env keys are upper-cased (`pool_size` → POOL_SIZE) and values
// stringified (`true` → "true"; a list or map, which bc_gitops specs carry, → its JSON text,
// Erlang tuples being lists); two keys equal once upper-cased are an error. `port` or
// env PORT pins the port (both given: they must agree). health defaults: type http, path `/` (http
// only), interval 30000 ms, timeout 5000 ms; durations may also be written 30s, 5m. Unknown fields
// are warnings.
import type { Diagnostic } from './core.js';
import type { HealthSpec, ServiceSource, ServiceSpec } from '../types.js';
import { parseDuration, validateFunctionPath } from './core.js';
import { fieldName } from './core.js';
import type { FieldPath, Position } from './core.js';
import { readSpecText } from './formats.js';
import type { SpecFormat, SpecLocator } from './formats.js';
import { specSchemaProblems } from './schema-errors.js';
import type { FieldProblem } from './schema-errors.js';
import { DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_HEALTH_TIMEOUT_MS } from './schema.js';

/** The spec files of an `apps/<name>/` folder, in precedence order (the first found wins). */
export const SPEC_FILES = ['app.config', 'app.yaml', 'app.yml', 'app.json', 'config.yaml', 'config.yml', 'config.json', 'config'] as const;

/** Positions of fields later checks talk about: `name`, `depends_on`, `depends_on[0]`, … */
export type SpecLocations = Record<string, Position>;

export type SpecParseResult =
  | { spec: ServiceSpec; warnings: Diagnostic[]; locations: SpecLocations }
  /** `code` is set when a limit of SPEC_LIMITS was crossed (the error code to report). */
  | { errors: Diagnostic[]; code?: 'SERVICE_SPEC_TOO_LARGE' };

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const SOURCE_FIELDS: Record<string, string[]> = {
  npm: ['package'],
  git: ['url', 'ref', 'branch', 'tag'],
  release: ['url', 'sha256'],
};
const GIT_REFS = ['ref', 'branch', 'tag'] as const;

export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of list) {
    const key = `${d.file}:${d.line}:${d.col}:${d.field ?? ''}:${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || (a.field ?? '').localeCompare(b.field ?? '') || a.message.localeCompare(b.message));
}

/** Map keys whose value is null (`undefined`/`nil`, an empty YAML value) are "not set": dropped. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  const o = obj(v);
  if (!o) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(o)) {
    if (x !== null) Object.defineProperty(out, k, { value: withoutNulls(x), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

interface Ctx {
  errors: FieldProblem[];
  warnings: FieldProblem[];
}

function buildSource(ctx: Ctx, src: Obj): ServiceSource | undefined {
  const type = str(src.type);
  const fields = type === undefined ? undefined : SOURCE_FIELDS[type];
  if (!fields) return undefined; // Unknown, hex or mesh: the schema said so.
  for (const k of ['package', 'url', 'ref', 'branch', 'tag', 'sha256']) {
    if (src[k] !== undefined && !fields.includes(k)) ctx.warnings.push({ path: ['source', k], message: `is not used by a ${String(type)} source (ignored)` });
  }
  if (type === 'npm') {
    const pkg = str(src.package);
    return pkg === undefined ? { type: 'npm' } : { type: 'npm', package: pkg };
  }
  const url = str(src.url);
  if (type === 'git') {
    const refs = GIT_REFS.filter((k) => typeof src[k] === 'string');
    if (refs.length > 1) {
      ctx.errors.push({ path: ['source', refs[1] as string], message: `give one of ref, branch or tag, not both ${refs[0] as string} and ${refs[1] as string}` });
      return undefined;
    }
    const ref = refs[0] && str(src[refs[0]]);
    if (ref === undefined) {
      ctx.errors.push({ path: ['source'], message: 'a git source needs ref (a branch, tag or commit; branch or tag also work)' });
      return undefined;
    }
    return url === undefined ? undefined : { type: 'git', url, ref };
  }
  const sha256 = str(src.sha256);
  if (url !== undefined && !/^https?:\/\/./i.test(url)) {
    ctx.errors.push({ path: ['source', 'url'], message: `"${url}" must be an http:// or https:// URL of a .tgz` });
    return undefined;
  }
  return url === undefined || sha256 === undefined ? undefined : { type: 'release', url, sha256: sha256.toLowerCase() };
}

function buildEnv(ctx: Ctx, raw: Obj): { env: Record<string, string>; keys: Map<string, string> } {
  const env: Record<string, string> = {};
  const keys = new Map<string, string>(); // UPPER → as written
  for (const [k, v] of Object.entries(raw)) {
    const upper = k.toUpperCase();
    if (!ENV_NAME.test(upper)) {
      ctx.errors.push({ path: ['env', k], message: `"${k}" is not a valid environment variable name (letters, digits and _, not starting with a digit)` });
      continue;
    }
    const prev = keys.get(upper);
    if (prev !== undefined) {
      ctx.errors.push({ path: ['env', k], message: `is the same variable as ${fieldName(['env', prev])} once upper-cased (${upper})` });
      continue;
    }
    keys.set(upper, k);
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') env[upper] = String(v);
    else if (v !== null && typeof v === 'object') env[upper] = JSON.stringify(v);
  }
  return { env, keys };
}

function duration(ctx: Ctx, path: FieldPath, v: unknown, dflt: number): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return dflt;
  const ms = parseDuration(v);
  if (ms === null) return dflt; // The schema reported the format.
  if (ms < 1) ctx.errors.push({ path, message: 'must be at least 1 ms' });
  return ms;
}

function buildHealth(ctx: Ctx, h: Obj): HealthSpec {
  const type = (str(h.type) ?? 'http') as HealthSpec['type'];
  const health: HealthSpec = {
    type,
    interval: duration(ctx, ['health', 'interval'], h.interval, DEFAULT_HEALTH_INTERVAL_MS),
    timeout: duration(ctx, ['health', 'timeout'], h.timeout, DEFAULT_HEALTH_TIMEOUT_MS),
  };
  if (typeof h.port === 'number') health.port = h.port;
  const path = str(h.path);
  if (type === 'http') health.path = path ?? '/';
  else if (path !== undefined) ctx.warnings.push({ path: ['health', 'path'], message: `is only used by http checks (ignored for ${type})` });
  const command = str(h.command);
  if (type === 'custom' && command !== undefined) health.command = command;
  else if (type !== 'custom' && command !== undefined) ctx.warnings.push({ path: ['health', 'command'], message: `is only used by custom checks (ignored for ${type})` });
  return health;
}

function build(ctx: Ctx, root: Obj, file: string): ServiceSpec | undefined {
  const source = obj(root.source) && buildSource(ctx, root.source as Obj);
  const { env, keys } = buildEnv(ctx, obj(root.env) ?? {});
  let port = typeof root.port === 'number' ? root.port : null;
  const envPort = keys.get('PORT');
  if (envPort !== undefined && env.PORT !== undefined) {
    const raw = env.PORT;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < 1 || n > 65535) {
      ctx.errors.push({ path: ['env', envPort], message: `"${raw}" is not a port number (1 to 65535); env PORT pins the service's port` });
    } else if (port !== null && port !== n) {
      ctx.errors.push({ path: ['port'], message: `is ${port} but ${fieldName(['env', envPort])} is ${n}; give one port` });
    } else port = n;
  }
  const health = obj(root.health) ? buildHealth(ctx, root.health as Obj) : null;
  const route = str(root.route) ?? null;
  if (route !== null) {
    const err = validateFunctionPath(route);
    if (err) ctx.errors.push({ path: ['route'], message: err.replace(/^path /, '') });
  }
  const name = str(root.name);
  const version = str(root.version);
  if (name === undefined || version === undefined || !source) return undefined;
  const dependsOn = Array.isArray(root.depends_on) ? root.depends_on.filter((d): d is string => typeof d === 'string') : [];
  return { name, version, source, env, health, dependsOn, route, port, file };
}

const LOCATED = ['name', 'version', 'source', 'source.type', 'env', 'health', 'depends_on', 'route', 'port'];

/**
 * Parses and validates one spec file. `file` (relative to the repository: `apps/web/app.config`)
 * names the format unless `format` is given, and goes into every diagnostic and `spec.file`.
 */
export function parseServiceSpec(text: string, file: string, format?: SpecFormat): SpecParseResult {
  const read = readSpecText(text, file, format);
  if ('errors' in read) return read.code ? { errors: sortDiagnostics(read.errors), code: read.code } : { errors: sortDiagnostics(read.errors) };
  const { data, locator } = read;
  const toDiag = (p: FieldProblem): Diagnostic => {
    const d: Diagnostic = { file, ...locator.locate(p.path), message: p.message };
    if (p.path.length) d.field = fieldName(p.path);
    return d;
  };
  const root = obj(data);
  if (!root) {
    return { errors: [{ file, ...locator.locate([]), message: 'the spec must be a map with name, version and source' }] };
  }
  const set = withoutNulls(root) as Obj;
  const ctx: Ctx = specSchemaProblems(set);
  const spec = build(ctx, set, file);
  if (ctx.errors.length || !spec) {
    const errors = sortDiagnostics(ctx.errors.map(toDiag));
    return { errors: errors.length ? errors : [{ file, ...locator.locate([]), message: 'the spec is incomplete' }] };
  }
  return { spec, warnings: sortDiagnostics([...read.warnings, ...ctx.warnings.map(toDiag)]), locations: locations(locator, set, spec) };
}

/** Positions of the fields of LOCATED that the spec has, and of each depends_on item. */
function locations(locator: SpecLocator, root: Obj, spec: ServiceSpec): SpecLocations {
  const out: SpecLocations = {};
  for (const f of LOCATED) {
    const path = f.split('.');
    const present = path.reduce<unknown>((v, k) => obj(v)?.[k], root);
    if (present !== undefined) out[f] = locator.locate(path);
  }
  spec.dependsOn.forEach((_, i) => {
    out[`depends_on[${i}]`] = locator.locate(['depends_on', i]);
  });
  return out;
}
