// The tree reader: a validated Manifest + one commit's snapshot → DesiredState. Reads code files,
// hashes static files (only those with new content ids, see static.ts) and docker contexts
// (.dockerignore applied, see context.ts), fills each docker function's `build`, and checks that
// every manifest path resolves inside the repository (resolveInSnapshot, so symlinks count). All
// problems are collected, each with the manifest position of the field at fault; readDesiredState
// throws them as one ZvError.
import { createHash } from 'node:crypto';
import type { DesiredFunction, DesiredState, Diagnostic, DockerBuild, FunctionDecl, Manifest, SecretEnvFile, StaticSite } from '../../core/desired.js';
import { MAX_SECRET_FILE_BYTES, type SecretsKeyring } from '../../core/secrets.js';
import { sniffSecretFile } from '../../secrets/keyring-formats.js';
import { formatDiagnostic } from '../../core/desired.js';
import type { ManifestLocations } from '../../core/manifest/index.js';
import { normalizeRelPath } from '../../core/names.js';
import { ZvError, isZvError } from '../../errors/registry.js';
import type { ErrorCode } from '../../errors/registry.js';
import { posixJoin, resolveInside } from './resolve.js';
import type { TreeProblem } from './resolve.js';
import { materialiseContext, readContext } from './context.js';
import type { MaterialisedContext } from './context.js';
import { walkStatic } from './static.js';
import type { HashFn, StaticFileSource } from './static.js';
import type { Snapshot, SnapshotEntry } from '../snapshot.js';

export interface ReadOptions {
  /** The commit the tree holds (copied into the state). */
  commit: string;
  /** The manifest's path relative to the repository root, for messages: default `zerverless.yaml`. */
  manifestFile?: string;
  /** Field positions from parseManifest, so messages point at `line:col` of the field. */
  locations?: ManifestLocations;
  /** sha256 hex; default node:crypto. */
  hash?: HashFn;
  /**
   * Decrypts `envFrom` files (their digests then enter the function hash). Without it (`zerverless
   * validate`), the files are only checked to exist, stay inside the tree and be encrypted.
   */
  secrets?: SecretsKeyring;
  /**
   * The static site as deployed (with content ids): files and folders whose ids are unchanged reuse
   * its entries unread (static.ts).
   */
  previousStatic?: StaticSite | null;
}

export interface DockerBuildSource {
  /** The function's path. */
  path: string;
  /** Real paths in the snapshot (links resolved) of the Dockerfile and the context folder. */
  dockerfile: string;
  context: string;
  /** Equals the function's `build.contextHash`. */
  contextHash: string;
  /**
   * Every entry of the context the hash covers (files, folders, links), POSIX paths relative to
   * `context`, sorted: what the build may send, and all it may send.
   */
  contextFiles: string[];
  /** Writes the context's entries and the Dockerfile from the snapshot into a temporary folder, for a build. */
  materialise(): Promise<MaterialisedContext>;
}

export interface TreeReadResult {
  state: DesiredState;
  staticFiles: StaticFileSource[];
  docker: DockerBuildSource[];
}

export const sha256: HashFn = (data) => createHash('sha256').update(data).digest('hex');

/** JSON with object keys sorted at every level and undefined fields dropped. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Hash over everything that changes a function's behaviour: for docker functions the whole `build`
 * (context and Dockerfile content via contextHash, paths, capabilities) besides env, port and limits.
 */
export function functionHash(fn: Omit<DesiredFunction, 'hash' | 'filename' | 'lineOffset' | 'path'>, hash: HashFn = sha256): string {
  return hash(canonicalJson({
    runtime: fn.runtime, language: fn.language, code: fn.code, timeoutMs: fn.timeoutMs,
    memoryMb: fn.memoryMb, env: fn.env, port: fn.port, build: fn.build,
    // Secret values enter through their keyed digests only (never the values, nor the ciphertext:
    // the same values encrypted again are not a change).
    secrets: fn.secrets?.map((s) => ({ file: s.file, digests: s.digests })),
  }));
}

export function sortProblems(list: TreeProblem[]): TreeProblem[] {
  return list.sort((a, b) => a.diagnostic.line - b.diagnostic.line || a.diagnostic.col - b.diagnostic.col);
}

/** Throws the collected problems as one ZvError (code of the first; every line in the message). */
export function throwProblems(problems: TreeProblem[]): never {
  const sorted = sortProblems([...problems]);
  const first = sorted[0];
  if (!first) throw new ZvError('INTERNAL', 'throwProblems called without problems');
  const diagnostics = sorted.map((p) => p.diagnostic);
  throw new ZvError(first.code, diagnostics.map(formatDiagnostic).join('\n'), { diagnostics });
}

/** Contexts hashed lately, by their folder's tree id and the Dockerfile's path and id (see contextOf). */
const contexts = new Map<string, { contextHash: string; contextFiles: string[] }>();
const MAX_CONTEXTS = 256;

/**
 * A docker context's hash and entries (readContext), kept by the context folder's content id and the
 * Dockerfile's path and content id: a sync of a commit whose context did not change reads none of
 * its files. Not kept when the context's `.dockerignore` is a symlink (its rules may come from
 * outside the folder), nor for a custom hash function; an FsSnapshot's folder ids never repeat.
 */
async function contextOf(snap: Snapshot, context: string, contextId: string, dockerfile: string, dockerfileId: string, hash: HashFn): Promise<{ contextHash: string; contextFiles: string[] }> {
  const key = `${contextId}\0${context}\0${dockerfile}\0${dockerfileId}`;
  const kept = hash === sha256 ? contexts.get(key) : undefined;
  if (kept) {
    contexts.delete(key);
    contexts.set(key, kept); // most recently used last
    return kept;
  }
  const { contextHash, entries } = await readContext(snap, context, hash, { dockerfile });
  const out = { contextHash, contextFiles: entries.map((e) => e.path) };
  const ignore = await snap.lstat(context === '' ? '.dockerignore' : `${context}/.dockerignore`);
  if (hash === sha256 && ignore?.kind !== 'symlink') {
    contexts.set(key, out);
    if (contexts.size > MAX_CONTEXTS) contexts.delete(contexts.keys().next().value as string);
  }
  return out;
}

function dirOf(file: string): string {
  const i = file.lastIndexOf('/');
  return i < 0 ? '.' : file.slice(0, i);
}

/**
 * Reads what `manifest` (in folder `base` of the snapshot: '' for the root) asks for; never throws
 * for problems in the tree, it collects them.
 */
export async function collectDesiredState(snap: Snapshot, base: string, manifest: Manifest, opts: ReadOptions): Promise<TreeReadResult & { problems: TreeProblem[]; warnings: Diagnostic[] }> {
  const hash = opts.hash ?? sha256;
  const manifestFile = opts.manifestFile ?? 'zerverless.yaml';
  const appPrefix = dirOf(manifestFile);
  const problems: TreeProblem[] = [];
  const warnings: Diagnostic[] = [];

  const diag = (field: string, line: number, message: string): Diagnostic => {
    const pos = opts.locations?.[field] ?? { line, col: 1 };
    return { file: manifestFile, line: pos.line, col: pos.col, field, message };
  };
  const problem = (code: ErrorCode, field: string, line: number, message: string): void => {
    problems.push({ code, diagnostic: diag(field, line, message) });
  };

  /** Lexical + snapshot check of one manifest path; undefined (and a problem) when it is not usable. */
  async function resolveField(field: string, line: number, raw: string, want: 'file' | 'dir', missingCode: ErrorCode): Promise<{ real: string; rel: string; entry: SnapshotEntry } | undefined> {
    const lexical = normalizeRelPath(raw);
    if ('error' in lexical) {
      problem('PATH_ESCAPE', field, line, lexical.error);
      return undefined;
    }
    const r = await resolveInside(snap, base, lexical.path);
    if (r.kind === 'escape') {
      problem('PATH_ESCAPE', field, line, `"${raw}" resolves outside the repository`);
      return undefined;
    }
    if (r.kind === 'missing') {
      const what = want === 'file' ? 'file' : 'folder';
      problem(missingCode, field, line, r.dangling ? `"${raw}" is a symlink to a missing ${what}` : `"${raw}" does not exist in the repository`);
      return undefined;
    }
    if (want === 'file' ? !r.isFile : !r.isDir) {
      problem(missingCode, field, line, `"${raw}" is not a ${want === 'file' ? 'file' : 'folder'}`);
      return undefined;
    }
    return { real: r.real, rel: lexical.path, entry: r.entry };
  }

  const functions: DesiredFunction[] = [];
  const docker: DockerBuildSource[] = [];
  async function readFunction(decl: FunctionDecl, at: string): Promise<DesiredFunction | undefined> {
    let code: string;
    let filename: string;
    let lineOffset: number | undefined;
    let build: DockerBuild | undefined;
    if (decl.runtime === 'docker') {
      if (!decl.dockerfile) {
        problem('MANIFEST_INVALID', `${at}.dockerfile`, decl.line, 'is required for runtime docker');
        return undefined;
      }
      const df = await resolveField(`${at}.dockerfile`, decl.line, decl.dockerfile, 'file', 'CODE_FILE_MISSING');
      const ctxRaw = decl.context ?? dirOf(decl.dockerfile);
      const ctx = await resolveField(`${at}.context`, decl.line, ctxRaw, 'dir', 'MANIFEST_INVALID');
      if (!df || !ctx) return undefined;
      code = (await snap.read(df.entry)).toString('utf8');
      filename = posixJoin(appPrefix, df.rel);
      const { contextHash, contextFiles } = await contextOf(snap, ctx.real, ctx.entry.id, df.real, df.entry.id, hash);
      // Capabilities are a set: sorted, so reordering them in the manifest is not a change.
      const capabilities = [...new Set(decl.capabilities ?? [])].sort();
      build = { dockerfile: df.rel, context: ctx.rel, contextHash, capabilities };
      const [dfPath, ctxPath] = [df.real, ctx.real];
      docker.push({
        path: decl.path, dockerfile: dfPath, context: ctxPath, contextHash, contextFiles,
        materialise: () => materialiseContext(snap, ctxPath, dfPath, contextFiles),
      });
    } else if (decl.code !== undefined) {
      code = decl.code;
      filename = manifestFile;
      if (decl.codeLine !== undefined) lineOffset = decl.codeLine - 1;
    } else if (decl.codeFile !== undefined) {
      const f = await resolveField(`${at}.codeFile`, decl.line, decl.codeFile, 'file', 'CODE_FILE_MISSING');
      if (!f) return undefined;
      code = (await snap.read(f.entry)).toString('utf8');
      filename = posixJoin(appPrefix, f.rel);
    } else {
      problem('MANIFEST_INVALID', at, decl.line, 'has no code source; give code or codeFile');
      return undefined;
    }
    const fn: DesiredFunction = {
      path: decl.path, runtime: decl.runtime, code, filename,
      timeoutMs: decl.timeoutMs, memoryMb: decl.memoryMb, env: { ...decl.env }, hash: '',
    };
    if (decl.envFrom?.length) fn.secrets = await readSecrets(decl, at);
    if (decl.language) fn.language = decl.language;
    if (lineOffset !== undefined) fn.lineOffset = lineOffset;
    if (decl.port !== undefined) fn.port = decl.port;
    if (build) fn.build = build;
    fn.hash = functionHash(fn, hash);
    return fn;
  }

  /** The envFrom files of a function: contained, bounded, encrypted; decrypted to digests when a keyring is given. */
  async function readSecrets(decl: FunctionDecl, at: string): Promise<SecretEnvFile[]> {
    const out: SecretEnvFile[] = [];
    for (const [j, raw] of (decl.envFrom ?? []).entries()) {
      const field = `${at}.envFrom[${j}]`;
      const f = await resolveField(field, decl.line, raw, 'file', 'CODE_FILE_MISSING');
      if (!f) continue;
      const file = posixJoin(appPrefix, f.rel);
      const size = f.entry.size ?? 0;
      if (size > MAX_SECRET_FILE_BYTES) {
        problem('SECRET_DECRYPT_FAILED', field, decl.line, `${file}: is ${size} bytes, over the limit of ${MAX_SECRET_FILE_BYTES}`);
        continue;
      }
      const bytes = await snap.read(f.entry, { maxBytes: MAX_SECRET_FILE_BYTES });
      const entry: SecretEnvFile = { file, data: bytes.toString('base64'), digests: {} };
      if (!opts.secrets) {
        if (!sniffSecretFile(file, bytes)) {
          problem('SECRET_DECRYPT_FAILED', field, decl.line, `${file}: is not encrypted: neither an age file nor a SOPS file`);
        }
        out.push(entry);
        continue;
      }
      try {
        const { env, skipped } = await opts.secrets.decryptEnv(file, bytes);
        for (const [k, v] of Object.entries(env)) entry.digests[k] = opts.secrets.digest(k, v);
        if (skipped.length) {
          warnings.push(diag(field, decl.line, `${file}: skipped ${skipped.map((k) => JSON.stringify(k)).join(', ')}: not environment variable names`));
        }
        out.push(entry);
      } catch (e) {
        if (!isZvError(e, 'SECRET_DECRYPT_FAILED')) throw e;
        problem('SECRET_DECRYPT_FAILED', field, decl.line, e.message);
      }
    }
    return out;
  }

  for (const [i, decl] of manifest.spec.functions.entries()) {
    const at = `spec.functions[${i}]`;
    const fn = await readFunction(decl, at);
    if (fn) functions.push(fn);
  }

  let site: DesiredState['static'] = null;
  let staticFiles: StaticFileSource[] = [];
  const st = manifest.spec.static;
  if (st) {
    const field = 'spec.static.dir';
    const dirRes = await resolveField(field, st.line, st.dir, 'dir', 'MANIFEST_INVALID');
    if (dirRes) {
      const walked = await walkStatic(snap, dirRes.real, hash, opts.previousStatic);
      for (const e of walked.escapes) {
        problem('PATH_ESCAPE', field, st.line, `static file "${e.path}" is a symlink that resolves outside the repository`);
      }
      for (const w of walked.warnings) warnings.push(diag(field, st.line, w));
      staticFiles = walked.files;
      site = { dir: st.dir, files: walked.entries, ...(walked.dirs ? { dirs: walked.dirs } : {}) };
    }
  }

  const state: DesiredState = { commit: opts.commit, functions, static: site, warnings: warnings.map(formatDiagnostic) };
  return { state, staticFiles, docker, problems: sortProblems(problems), warnings };
}

/** Reads the desired state, or throws a ZvError (PATH_ESCAPE, CODE_FILE_MISSING, MANIFEST_INVALID) listing every problem. */
export async function readDesiredState(snap: Snapshot, base: string, manifest: Manifest, opts: ReadOptions): Promise<TreeReadResult> {
  const { problems, state, staticFiles, docker } = await collectDesiredState(snap, base, manifest, opts);
  if (problems.length) throwProblems(problems);
  return { state, staticFiles, docker };
}
