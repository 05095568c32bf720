// Docker build contexts: which entries a build sends and a content hash over them. The context's
// `.dockerignore` is applied the way the Docker CLI applies it (matching by @balena/dockerignore, a
// port of Docker's own matcher; an ignored folder is only walked when an exception pattern starts
// with it), and `.dockerignore` and the Dockerfile are always kept even when a pattern lists them.
//
// Decisions: `.git` folders are never part of a context (they change on every fetch); symlinks are
// entries of their own (their target text counts, they are not followed); a `.dockerignore` that is
// a symlink is read only when it resolves inside `root`; the BuildKit-only `<Dockerfile>.dockerignore`
// is not read. The hash covers the Dockerfile's content even when it lives outside the context.
import dockerignore from '@balena/dockerignore';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZvError } from '../../errors/registry.js';
import { resolveInSnapshot } from '../snapshot.js';
import type { Snapshot, SnapshotEntry } from '../snapshot.js';
import { isInside } from './resolve.js';
import type { HashFn } from './static.js';

export interface ContextEntry {
  /** POSIX path inside the context, no leading slash. */
  path: string;
  /** `exec` is a file with an executable bit. */
  kind: 'file' | 'exec' | 'dir' | 'link';
  /** The entry in the snapshot (not resolved: a link is the link itself). */
  entry: SnapshotEntry;
  /** For links: the link's target text. */
  target?: string;
}

export interface ContextOptions {
  /** Snapshot path of the Dockerfile (links resolved): always hashed, and kept in the context when it lives there. */
  dockerfile?: string;
  /** A symlinked `.dockerignore` is followed only when it resolves inside this snapshot path; default the context. */
  root?: string;
}

/** A `.dockerignore` or link target larger than this is not read. */
const MAX_IGNORE_BYTES = 1024 * 1024;

interface Pattern {
  text: string;
  exclusion: boolean;
}

/** The lines of a .dockerignore as Docker reads them (comments and blanks dropped, paths cleaned). */
export function parseDockerignore(text: string): Pattern[] {
  const out: Pattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const exclusion = line.startsWith('!');
    if (exclusion) line = line.slice(1).trim();
    if (line === '') continue;
    const segs: string[] = [];
    for (const seg of line.split('/')) {
      if (seg === '' || seg === '.') continue;
      // Like Go's filepath.Clean: `..` eats the segment before it, a leading `..` stays.
      if (seg === '..' && segs.length > 0 && segs[segs.length - 1] !== '..') segs.pop();
      else segs.push(seg);
    }
    out.push({ text: segs.join('/') || '.', exclusion });
  }
  return out;
}

async function readIgnoreFile(snap: Snapshot, context: string, root: string): Promise<string | null> {
  const path = context === '' ? '.dockerignore' : `${context}/.dockerignore`;
  const e = await snap.lstat(path);
  if (!e) return null;
  if (e.kind === 'symlink') {
    const r = await resolveInSnapshot(snap, path);
    if (r.kind !== 'ok' || !isInside(root, r.path) || (r.entry.kind !== 'file' && r.entry.kind !== 'exec')) return null;
    return (await snap.read(r.entry, { maxBytes: MAX_IGNORE_BYTES })).toString('utf8');
  }
  return e.kind === 'file' || e.kind === 'exec' ? (await snap.read(e, { maxBytes: MAX_IGNORE_BYTES })).toString('utf8') : null;
}

/**
 * Every entry of the context a build sends, sorted by path: what to put in the build's tar so that
 * the image matches `hashContext`.
 */
export async function listContext(snap: Snapshot, context: string, opts: ContextOptions = {}): Promise<ContextEntry[]> {
  const text = await readIgnoreFile(snap, context, opts.root ?? context);
  const patterns = text === null ? [] : parseDockerignore(text);
  const lines = patterns.map((p) => (p.exclusion ? `!${p.text}` : p.text));
  let ig = dockerignore.default({ ignorecase: false }).add(lines);
  // Like the Docker CLI: a listed .dockerignore or Dockerfile is kept by an added exception.
  const keep = ['.dockerignore'];
  if (opts.dockerfile && isInside(context, opts.dockerfile) && opts.dockerfile !== context) {
    keep.push(context === '' ? opts.dockerfile : opts.dockerfile.slice(context.length + 1));
  }
  for (const k of keep) {
    if (ig.ignores(k)) {
      lines.push(`!${k}`);
      patterns.push({ text: k, exclusion: true });
    }
  }
  ig = dockerignore.default({ ignorecase: false }).add(lines);
  const exceptions = patterns.filter((p) => p.exclusion).map((p) => `${p.text}/`);
  // An ignored folder is walked only when an exception pattern starts with it (Docker's rule).
  const mayHoldExceptions = (rel: string): boolean => exceptions.some((e) => e.startsWith(`${rel}/`));

  const out: ContextEntry[] = [];
  async function walk(dir: string, prefix: string): Promise<void> {
    for (const e of await snap.readdir(dir)) {
      if (e.name === '.git') continue;
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      const ignored = ig.ignores(rel);
      if (e.kind === 'dir') {
        if (!ignored) out.push({ path: rel, kind: 'dir', entry: e });
        if (!ignored || mayHoldExceptions(rel)) await walk(e.path, rel);
        continue;
      }
      if (ignored) continue;
      if (e.kind === 'symlink') {
        out.push({ path: rel, kind: 'link', entry: e, target: (await snap.read(e, { maxBytes: 4096 })).toString('utf8') });
      } else if (e.kind === 'file' || e.kind === 'exec') {
        out.push({ path: rel, kind: e.kind, entry: e });
      }
      // Submodules are not sent (a checkout had an empty folder there).
    }
  }
  await walk(context, '');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * A content hash of a docker build: every entry `listContext` keeps (path, kind, content or link
 * target) and the Dockerfile's content. Same inputs, same hash; an ignored file changes nothing.
 */
export async function hashContext(snap: Snapshot, context: string, hash: HashFn, opts: ContextOptions = {}): Promise<string> {
  return (await readContext(snap, context, hash, opts)).contextHash;
}

/**
 * The entries of a build context and their hash (`hashContext`) from one listing: the runtime is
 * handed exactly these paths (FunctionSource's `docker.contextFiles`) and sends nothing else, so
 * the image always matches its content tag.
 */
export async function readContext(snap: Snapshot, context: string, hash: HashFn, opts: ContextOptions = {}): Promise<{ contextHash: string; entries: ContextEntry[] }> {
  const entries = await listContext(snap, context, opts);
  const lines: string[] = [];
  for (const e of entries) {
    if (e.kind === 'dir') lines.push(JSON.stringify(['d', e.path]));
    else if (e.kind === 'link') lines.push(JSON.stringify(['l', e.path, e.target ?? '']));
    else lines.push(JSON.stringify([e.kind === 'exec' ? 'x' : 'f', e.path, hash(await snap.read(e.entry))]));
  }
  if (opts.dockerfile) lines.push(JSON.stringify(['dockerfile', hash(await readDockerfile(snap, opts.dockerfile))]));
  return { contextHash: hash(lines.join('\n')), entries };
}

async function readDockerfile(snap: Snapshot, path: string): Promise<Buffer> {
  const e = await snap.lstat(path);
  if (!e || (e.kind !== 'file' && e.kind !== 'exec')) throw new ZvError('CODE_FILE_MISSING', `${path}: the Dockerfile is not a file of the commit`);
  return snap.read(e);
}

/** A build context written out of a snapshot: remove it (`dispose`) once the build has read it. */
export interface MaterialisedContext {
  contextDir: string;
  dockerfilePath: string;
  dispose(): Promise<void>;
}

/**
 * Writes `files` (the context's entries as listContext returned them: POSIX paths relative to
 * `context`) and the Dockerfile from the snapshot into a new temporary folder, for a build that needs
 * them on disk. Only when an image has to be built: a context whose image exists is never written.
 */
export async function materialiseContext(snap: Snapshot, context: string, dockerfile: string, files: readonly string[]): Promise<MaterialisedContext> {
  const top = await mkdtemp(join(tmpdir(), 'zv-context-'));
  const dispose = (): Promise<void> => rm(top, { recursive: true, force: true });
  try {
    const contextDir = join(top, 'context');
    await mkdir(contextDir);
    const at = (rel: string): string => (context === '' ? rel : `${context}/${rel}`);
    for (const rel of files) {
      if (rel === '' || rel.startsWith('/') || rel.split('/').some((s) => s === '..' || s === '.' || s === '')) {
        throw new ZvError('INTERNAL', `docker build context: "${rel}" is not a path inside the context`);
      }
      const e = await snap.lstat(at(rel));
      if (!e) throw new ZvError('INTERNAL', `docker build context: "${rel}" is not in commit ${snap.commit.slice(0, 12)}`);
      const dest = join(contextDir, ...rel.split('/'));
      if (e.kind === 'dir') {
        await mkdir(dest, { recursive: true });
        continue;
      }
      await mkdir(join(dest, '..'), { recursive: true });
      if (e.kind === 'symlink') await symlink((await snap.read(e, { maxBytes: 4096 })).toString('utf8'), dest);
      else if (e.kind === 'file' || e.kind === 'exec') {
        await writeFile(dest, await snap.read(e));
        if (e.kind === 'exec') await chmod(dest, 0o755);
      }
    }
    // The Dockerfile where the build finds it: in the context when it lives there, else beside it.
    const inside = isInside(context, dockerfile) && dockerfile !== context;
    const rel = context === '' ? dockerfile : dockerfile.slice(context.length + 1);
    const dockerfilePath = inside ? join(contextDir, ...rel.split('/')) : join(top, 'Dockerfile');
    if (!inside || !files.includes(rel)) {
      await mkdir(join(dockerfilePath, '..'), { recursive: true });
      await writeFile(dockerfilePath, await readDockerfile(snap, dockerfile));
    }
    return { contextDir, dockerfilePath, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}
