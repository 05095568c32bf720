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
import { lstat, readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { isInside } from './resolve.js';
import type { HashFn } from './static.js';

export interface ContextEntry {
  /** POSIX path inside the context, no leading slash. */
  path: string;
  /** `exec` is a file with an executable bit. */
  kind: 'file' | 'exec' | 'dir' | 'link';
  /** Absolute path on disk (not resolved: a link is the link itself). */
  abs: string;
  /** For links: the link's target text. */
  target?: string;
}

export interface ContextOptions {
  /** Real path of the Dockerfile: always hashed, and kept in the context when it lives there. */
  dockerfile?: string;
  /** A symlinked `.dockerignore` is followed only when it resolves inside this real path; default the context. */
  root?: string;
}

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

async function readIgnoreFile(contextReal: string, root: string): Promise<string | null> {
  const file = join(contextReal, '.dockerignore');
  const st = await lstat(file).catch(() => null);
  if (!st) return null;
  if (st.isSymbolicLink()) {
    const real = await realpath(file).catch(() => null);
    if (!real || !isInside(root, real) || !(await stat(real)).isFile()) return null;
    return readFile(real, 'utf8');
  }
  return st.isFile() ? readFile(file, 'utf8') : null;
}

function toPosix(p: string): string {
  return sep === '/' ? p : p.split(sep).join('/');
}

/**
 * Every entry of the context a build sends, sorted by path: what to put in the build's tar so that
 * the image matches `hashContext`.
 */
export async function listContext(contextReal: string, opts: ContextOptions = {}): Promise<ContextEntry[]> {
  const text = await readIgnoreFile(contextReal, opts.root ?? contextReal);
  const patterns = text === null ? [] : parseDockerignore(text);
  const lines = patterns.map((p) => (p.exclusion ? `!${p.text}` : p.text));
  let ig = dockerignore.default({ ignorecase: false }).add(lines);
  // Like the Docker CLI: a listed .dockerignore or Dockerfile is kept by an added exception.
  const keep = ['.dockerignore'];
  if (opts.dockerfile && isInside(contextReal, opts.dockerfile) && opts.dockerfile !== contextReal) {
    keep.push(toPosix(relative(contextReal, opts.dockerfile)));
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
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      if (e.name === '.git') continue;
      const abs = join(dir, e.name);
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      const ignored = ig.ignores(rel);
      if (e.isDirectory()) {
        if (!ignored) out.push({ path: rel, kind: 'dir', abs });
        if (!ignored || mayHoldExceptions(rel)) await walk(abs, rel);
        continue;
      }
      if (ignored) continue;
      if (e.isSymbolicLink()) {
        out.push({ path: rel, kind: 'link', abs, target: await readlink(abs) });
      } else if (e.isFile()) {
        const st = await stat(abs);
        out.push({ path: rel, kind: st.mode & 0o111 ? 'exec' : 'file', abs });
      }
      // Sockets, FIFOs and devices are not sent.
    }
  }
  await walk(contextReal, '');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * A content hash of a docker build: every entry `listContext` keeps (path, kind, content or link
 * target) and the Dockerfile's content. Same inputs, same hash; an ignored file changes nothing.
 */
export async function hashContext(contextReal: string, hash: HashFn, opts: ContextOptions = {}): Promise<string> {
  return (await readContext(contextReal, hash, opts)).contextHash;
}

/**
 * The entries of a build context and their hash (`hashContext`) from one listing: the runtime is
 * handed exactly these paths (FunctionSource's `docker.contextFiles`) and sends nothing else, so
 * the image always matches its content tag.
 */
export async function readContext(contextReal: string, hash: HashFn, opts: ContextOptions = {}): Promise<{ contextHash: string; entries: ContextEntry[] }> {
  const entries = await listContext(contextReal, opts);
  const lines: string[] = [];
  for (const e of entries) {
    if (e.kind === 'dir') lines.push(JSON.stringify(['d', e.path]));
    else if (e.kind === 'link') lines.push(JSON.stringify(['l', e.path, e.target ?? '']));
    else lines.push(JSON.stringify([e.kind === 'exec' ? 'x' : 'f', e.path, hash(await readFile(e.abs))]));
  }
  if (opts.dockerfile) lines.push(JSON.stringify(['dockerfile', hash(await readFile(opts.dockerfile))]));
  return { contextHash: hash(lines.join('\n')), entries };
}
