// parseManifest: zerverless.yaml text → Manifest, or every problem at once as `file:line:col`
// diagnostics sorted by position. Three passes: YAML syntax, the JSON Schema (schema.ts), then the
// rules across fields (one code source per function, path rules, duplicates, durations, paths that
// must stay inside the repository lexically). Files on disk are checked later by sources/tree.
//
// Decisions: env values may be strings, numbers or booleans and are stringified (`true` → "true");
// runtime javascript → js, typescript/ts → js + language typescript, and js with a .ts/.mts/.cts
// codeFile is typescript; docker `context` defaults to the Dockerfile's folder; a docker function without `port` keeps none
// (the runtime then uses the port its image EXPOSEs, else 8080);
// docker `capabilities` defaults to [] (all dropped) and keeps the manifest's order;
// codeFile/dockerfile/context/envFrom are stored normalised (`./a/b.py` → `a/b.py`) while static.dir is
// kept as written (it is shown back in the status); two paths that differ only by a trailing `/`
// are duplicates.
import { isNode, isSeq } from 'yaml';
import type { CodeLanguage, Diagnostic, FunctionDecl, FunctionRuntimeKind, Manifest } from '../desired.js';
import { normalizeRelPath, parseDuration, validateFunctionPath, validateNamespace } from '../names.js';
import { fieldName, Locator } from './locate.js';
import type { FieldPath, Position } from './locate.js';
import { schemaProblems } from './schema-errors.js';
import type { FieldProblem } from './schema-errors.js';
import { RUNTIMES, TIMEOUT_MAX_MS } from './schema.js';
import { composeYaml, MANIFEST_LIMITS, positionAt } from './bounds.js';

export const MANIFEST_FILES = ['zerverless.yaml', 'zerverless.yml'] as const;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MEMORY_MB = 128;
export const DEFAULT_DOCKER_PORT = 8080;

/** Positions of the fields later checks talk about (`spec.functions[0].codeFile`, `spec.static.dir`, `metadata.namespace`). */
export type ManifestLocations = Record<string, Position>;

export type ParseResult =
  | { manifest: Manifest; warnings: Diagnostic[]; locations: ManifestLocations }
  /** `code` is set when a limit of MANIFEST_LIMITS was crossed (the error code to report). */
  | { errors: Diagnostic[]; code?: 'MANIFEST_TOO_LARGE' };

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const EXTENSIONS: Record<string, string[]> = {
  lua: ['.lua'],
  python: ['.py'],
  js: ['.js', '.mjs', '.cjs', '.jsx', '.ts', '.mts', '.cts', '.tsx'],
};

function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of list) {
    const key = `${d.line}:${d.col}:${d.field ?? ''}:${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out.sort((a, b) => a.line - b.line || a.col - b.col || a.message.localeCompare(b.message));
}

function normalizeRuntime(raw: string, codeFile: string | undefined): { runtime: FunctionRuntimeKind; language?: CodeLanguage } {
  switch (raw) {
    case 'lua':
    case 'python':
    case 'docker':
      return { runtime: raw };
    case 'typescript':
    case 'ts':
      return { runtime: 'js', language: 'typescript' };
    default: {
      const ts = codeFile !== undefined && /\.(ts|mts|cts|tsx)$/i.test(codeFile);
      return { runtime: 'js', language: ts ? 'typescript' : 'javascript' };
    }
  }
}

interface Ctx {
  loc: Locator;
  problems: FieldProblem[];
  warnings: FieldProblem[];
  locations: ManifestLocations;
}

function relPath(ctx: Ctx, path: FieldPath, value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const r = normalizeRelPath(value);
  if ('error' in r) {
    ctx.problems.push({ path, message: r.error });
    return undefined;
  }
  ctx.locations[fieldName(path)] = ctx.loc.locate(path);
  return r.path;
}

function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '.' : p.slice(0, i);
}

function buildFunction(ctx: Ctx, fn: Obj, at: FieldPath, seen: Map<string, FieldPath>): FunctionDecl | undefined {
  const { problems } = ctx;
  const line = ctx.loc.locate(at).line;
  const has = (k: string): boolean => fn[k] !== undefined;

  const path = str(fn.path);
  if (path !== undefined) {
    const err = validateFunctionPath(path);
    if (err) problems.push({ path: [...at, 'path'], message: err.replace(/^path /, '') });
    const key = path.length > 1 ? path.replace(/\/$/, '') : path;
    const first = seen.get(key);
    if (first) {
      const firstLine = ctx.loc.locate(first).line;
      problems.push({ path: [...at, 'path'], message: `duplicate path "${path}": already declared by ${fieldName(first)} (line ${firstLine})` });
    } else {
      seen.set(key, at);
    }
  }

  const rt = str(fn.runtime);
  const rawRuntime = rt !== undefined && (RUNTIMES as readonly string[]).includes(rt) ? rt : undefined;
  const code = str(fn.code);
  if (code !== undefined && code.trim() === '') problems.push({ path: [...at, 'code'], message: 'is empty' });
  const codeFile = relPath(ctx, [...at, 'codeFile'], fn.codeFile);
  const dockerfile = relPath(ctx, [...at, 'dockerfile'], fn.dockerfile);
  const context = relPath(ctx, [...at, 'context'], fn.context);

  if (rawRuntime === 'docker') {
    for (const k of ['code', 'codeFile']) {
      if (has(k)) problems.push({ path: [...at, k], message: 'a docker function is built from dockerfile and context, not from code or codeFile' });
    }
    if (!has('dockerfile')) problems.push({ path: [...at, 'dockerfile'], message: 'is required for runtime docker' });
  } else if (rawRuntime !== undefined) {
    for (const k of ['dockerfile', 'context', 'port', 'capabilities']) {
      if (has(k)) problems.push({ path: [...at, k], message: `only docker functions take ${k} (runtime is ${rawRuntime})` });
    }
    if (has('code') && has('codeFile')) {
      problems.push({ path: at, message: 'has both code and codeFile; give exactly one code source' });
    } else if (!has('code') && !has('codeFile')) {
      problems.push({ path: at, message: 'has no code source; give code or codeFile' });
    }
  }

  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (typeof fn.timeout === 'string' || typeof fn.timeout === 'number') {
    const ms = parseDuration(fn.timeout);
    // Malformed values and out-of-range numbers are reported by the schema; strings are checked here.
    if (ms !== null && typeof fn.timeout === 'string') {
      if (ms < 1) problems.push({ path: [...at, 'timeout'], message: 'must be at least 1ms' });
      if (ms > TIMEOUT_MAX_MS) problems.push({ path: [...at, 'timeout'], message: `must be at most 1h (${TIMEOUT_MAX_MS} ms)` });
    }
    if (ms !== null) timeoutMs = ms;
  }

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(fn.env) ?? {})) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') env[k] = String(v);
  }

  let envFrom: string[] | undefined;
  if (Array.isArray(fn.envFrom)) {
    envFrom = [];
    const firstAt = new Map<string, number>();
    fn.envFrom.forEach((item, j) => {
      const p = relPath(ctx, [...at, 'envFrom', j], item);
      if (p === undefined) return;
      const first = firstAt.get(p);
      if (first !== undefined) problems.push({ path: [...at, 'envFrom', j], message: `"${String(item)}" is already listed as envFrom[${first}]` });
      else firstAt.set(p, j);
      envFrom?.push(p);
    });
  }

  if (path === undefined || rawRuntime === undefined) return undefined;
  const { runtime, language } = normalizeRuntime(rawRuntime, codeFile);
  const exts = EXTENSIONS[runtime];
  if (codeFile && exts && !exts.some((e) => codeFile.toLowerCase().endsWith(e))) {
    ctx.warnings.push({ path: [...at, 'codeFile'], message: `"${codeFile}" does not look like ${runtime} code (expected ${exts.join(', ')})` });
  }

  const decl: FunctionDecl = {
    path,
    runtime,
    timeoutMs,
    memoryMb: typeof fn.memory === 'number' ? fn.memory : DEFAULT_MEMORY_MB,
    env,
    line,
  };
  if (envFrom) decl.envFrom = envFrom;
  if (language && runtime === 'js') decl.language = language;
  if (code !== undefined) {
    decl.code = code;
    decl.codeLine = ctx.loc.contentLine([...at, 'code']) ?? line;
  }
  if (codeFile !== undefined) decl.codeFile = codeFile;
  if (runtime === 'docker') {
    if (dockerfile !== undefined) {
      decl.dockerfile = dockerfile;
      decl.context = context ?? dirname(dockerfile);
    }
    // Without one the runtime uses the port the image EXPOSEs (else DEFAULT_DOCKER_PORT).
    if (typeof fn.port === 'number') decl.port = fn.port;
    // Items were checked against LINUX_CAPABILITIES by the schema; a bad one stops the parse.
    decl.capabilities = Array.isArray(fn.capabilities) ? fn.capabilities.filter((c): c is string => typeof c === 'string') : [];
  }
  return decl;
}

function build(ctx: Ctx, data: unknown): Manifest | undefined {
  const root = obj(data);
  if (!root) return undefined;
  const metadata = obj(root.metadata);
  const spec = obj(root.spec);

  const ns = metadata?.namespace;
  if (typeof ns === 'string') {
    ctx.locations['metadata.namespace'] = ctx.loc.locate(['metadata', 'namespace']);
    const err = validateNamespace(ns);
    if (err) ctx.problems.push({ path: ['metadata', 'namespace'], message: err.replace(/^namespace /, '') });
  } else if (metadata && ns === undefined) {
    // Optional, so that one repository can be registered in several namespaces; when set, a
    // registration in another namespace fails (NAMESPACE_MISMATCH).
    ctx.warnings.push({ path: ['metadata'], message: 'namespace is not set: the application is served in the namespace it is registered in (set metadata.namespace to refuse registrations in any other)' });
  }

  const functions: FunctionDecl[] = [];
  const seen = new Map<string, FieldPath>();
  const list = Array.isArray(spec?.functions) ? (spec.functions as unknown[]) : [];
  list.forEach((item, i) => {
    const fn = obj(item);
    const decl = fn && buildFunction(ctx, fn, ['spec', 'functions', i], seen);
    if (decl) functions.push(decl);
  });

  let staticSite: { dir: string; line: number } | undefined;
  const st = obj(spec?.static);
  if (st && typeof st.dir === 'string' && relPath(ctx, ['spec', 'static', 'dir'], st.dir) !== undefined) {
    staticSite = { dir: st.dir, line: ctx.loc.locate(['spec', 'static', 'dir']).line };
  }

  const name = str(metadata?.name);
  if (!metadata || name === undefined || !spec) return undefined;
  const manifest: Manifest = {
    apiVersion: String(root.apiVersion),
    kind: 'Application',
    metadata: { name },
    spec: { functions },
  };
  if (typeof ns === 'string') manifest.metadata.namespace = ns;
  const source = obj(spec.source);
  if (source) {
    manifest.spec.source = {};
    if (typeof source.repoURL === 'string') manifest.spec.source.repoURL = source.repoURL;
    if (typeof source.branch === 'string') manifest.spec.source.branch = source.branch;
    // Where a warning about a difference from the registered source points (sources/tree/find.ts).
    for (const k of ['repoURL', 'branch']) {
      if (typeof source[k] === 'string') ctx.locations[`spec.source.${k}`] = ctx.loc.locate(['spec', 'source', k]);
    }
  }
  if (staticSite) manifest.spec.static = staticSite;
  return manifest;
}

const WHAT = 'zerverless.yaml';

export function parseManifest(text: string, file = 'zerverless.yaml'): ParseResult {
  // Limits first, in linear time: nothing below sees a text over them (see bounds.ts).
  const y = composeYaml(text, MANIFEST_LIMITS, WHAT);
  if ('limit' in y) return { errors: [{ file, ...positionAt(text, y.limit.offset), message: y.limit.message }], code: 'MANIFEST_TOO_LARGE' };
  const lc = y.lineCounter;
  const at = (offset: number): Position => {
    const { line, col } = lc.linePos(offset);
    return { line, col };
  };
  const syntax = y.errors.map((e) => ({ file, ...at(e.offset), message: `invalid YAML: ${e.message}` }));
  const doc = y.doc;
  if (!doc || syntax.length) return { errors: sortDiagnostics(syntax.length ? syntax : [{ file, line: 1, col: 1, message: 'invalid YAML' }]) };
  const loc = new Locator(doc, lc);
  const toDiag = (p: FieldProblem): Diagnostic => {
    const d: Diagnostic = { file, ...loc.locate(p.path), message: p.message };
    if (p.path.length) d.field = fieldName(p.path);
    return d;
  };

  const fns = loc.node(['spec', 'functions']);
  if (isSeq(fns) && fns.items.length > MANIFEST_LIMITS.maxFunctions) {
    const over = fns.items[MANIFEST_LIMITS.maxFunctions];
    const pos = isNode(over) && over.range ? loc.positionOf(over.range[0]) : loc.locate(['spec', 'functions']);
    return {
      errors: [{ file, ...pos, field: 'spec.functions', message: `has ${fns.items.length} functions; zerverless.yaml may declare at most ${MANIFEST_LIMITS.maxFunctions}` }],
      code: 'MANIFEST_TOO_LARGE',
    };
  }

  const yamlWarnings: Diagnostic[] = doc.warnings.map((w) => ({ file, ...loc.positionOf(w.pos[0]), message: w.message }));

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { errors: [{ file, line: 1, col: 1, message: `invalid YAML: ${e instanceof Error ? e.message : String(e)}` }] };
  }

  const ctx: Ctx = { loc, problems: schemaProblems(data), warnings: [], locations: {} };
  if (obj(data) === undefined) {
    ctx.problems = [{ path: [], message: 'the manifest must be a mapping with apiVersion, kind, metadata and spec' }];
  }
  const manifest = build(ctx, data);
  if (ctx.problems.length || !manifest) {
    const errors = sortDiagnostics(ctx.problems.map(toDiag));
    return { errors: errors.length ? errors : [{ file, line: 1, col: 1, message: 'the manifest is incomplete' }] };
  }
  return { manifest, warnings: sortDiagnostics([...yamlWarnings, ...ctx.warnings.map(toDiag)]), locations: ctx.locations };
}
