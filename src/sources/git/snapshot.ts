// GitSnapshot: one commit's tree read straight from the objects of the shared bare clone, through
// the clone's long-lived `git cat-file --batch-command` (objects.ts). Nothing is checked out.
//
// Tree objects are parsed here (`<mode> <name>\0<binary id>` per entry) and cached by tree id
// (bounded, least recently used dropped first): a tree id is the hash of the whole subtree, so the
// next commit re-reads only the folders that changed. Each file's and symlink's size comes from
// `info` answers asked for a whole folder at once and is cached with the folder.
//
// Entry names follow git fsck's rules: a name that is empty, `.`, `..`, `.git` (in any case, or as
// NTFS/HFS spell it), or holds a `/` or `\` is refused with PATH_ESCAPE — such a tree could only
// have been written by hand, and git's own checkout refuses it too.
import { ZvError } from '../../errors/registry.js';
import type { SnapshotEntry, SnapshotKind } from '../snapshot.js';
import type { CommitInfo, CommitSnapshot } from '../types.js';
import { tooLarge, type BatchReader } from './objects.js';


interface TreeItem {
  name: string;
  kind: SnapshotKind;
  id: string;
  size?: number;
}

const MODES: Record<string, SnapshotKind> = {
  '100644': 'file', '100664': 'file', '100755': 'exec', '120000': 'symlink', '40000': 'dir', '040000': 'dir', '160000': 'submodule',
};
const MAX_MESSAGE_BYTES = 2048;
const MAX_AUTHOR = 256;
// Zero-width code points HFS+ ignores in names (git's is_hfs_dotgit).
const HFS_IGNORED = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/** Why git fsck would refuse `name` as a tree entry name, or null when it is fine. */
export function badEntryName(name: string): string | null {
  if (name === '' || name === '.' || name === '..') return 'is empty, . or ..';
  if (name.includes('/') || name.includes('\\') || name.includes('\0')) return 'holds a path separator';
  const lower = name.toLowerCase();
  if (lower === '.git' || lower.replace(HFS_IGNORED, '') === '.git') return 'is .git';
  const ntfs = lower.replace(/[ .]+$/, '');
  if (ntfs === '.git' || ntfs === 'git~1' || /^\.git:/.test(lower)) return 'is .git (as NTFS spells it)';
  return null;
}

/** Parses a tree object; throws PATH_ESCAPE on a name git fsck refuses, GIT_ERROR on a malformed tree. */
export function parseTree(data: Buffer, idBytes: number, where: string): TreeItem[] {
  const out: TreeItem[] = [];
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    const nul = sp < 0 ? -1 : data.indexOf(0, sp + 1);
    if (sp < 0 || nul < 0 || nul + 1 + idBytes > data.length) throw new ZvError('GIT_ERROR', `tree ${where || '/'} is malformed`);
    const mode = data.toString('latin1', i, sp);
    const name = data.toString('utf8', sp + 1, nul);
    const id = data.toString('hex', nul + 1, nul + 1 + idBytes);
    i = nul + 1 + idBytes;
    const path = where ? `${where}/${name}` : name;
    const bad = badEntryName(name);
    if (bad) throw new ZvError('PATH_ESCAPE', `the commit's tree has an entry ${JSON.stringify(path.slice(0, 200))} whose name ${bad}; git refuses such trees`);
    const kind = MODES[mode];
    if (!kind) throw new ZvError('GIT_ERROR', `tree entry ${JSON.stringify(path.slice(0, 200))} has an unknown mode ${mode.slice(0, 10)}`);
    out.push({ name, kind, id });
  }
  // git stores trees sorted with folders compared as `name/`; the port wants plain name order.
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Parsed trees by id, shared by every snapshot of a source; bounded by the number of entries held. */
export class TreeCache {
  private readonly trees = new Map<string, TreeItem[]>();
  private entries = 0;
  constructor(private readonly maxEntries = 500_000) {}

  get(id: string): TreeItem[] | undefined {
    const t = this.trees.get(id);
    if (t) { this.trees.delete(id); this.trees.set(id, t); }
    return t;
  }

  set(id: string, items: TreeItem[]): void {
    if (this.trees.has(id)) return;
    this.trees.set(id, items);
    this.entries += items.length + 1;
    for (const [k, v] of this.trees) {
      if (this.entries <= this.maxEntries || k === id) break;
      this.trees.delete(k);
      this.entries -= v.length + 1;
    }
  }

  get size(): number {
    return this.trees.size;
  }
}

/** Removes control characters (keeping \n when asked) and bidi overrides. */
function clean(s: string, keepNewlines: boolean): string {
  const t = s.replace(/\r\n?/g, '\n').replace(/\t/g, ' ');
  // eslint-disable-next-line no-control-regex
  return t.replace(keepNewlines ? /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g : /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '');
}

function identTime(line: string): string | null {
  const m = /> (\d{1,15}) [+-]\d{4}$/.exec(line);
  if (!m) return null;
  const d = new Date(Number(m[1]) * 1000);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** The tree id and the sanitised info of a commit object. */
export function parseCommit(data: Buffer): { tree: string; info: CommitInfo } {
  const end = data.indexOf('\n\n');
  const header = data.toString('utf8', 0, end < 0 ? data.length : end);
  let tree = '';
  let author = '';
  let time: string | null = null;
  let committedAt: string | null = null;
  for (const line of header.split('\n')) {
    if (line.startsWith('tree ') && !tree) tree = line.slice(5).trim();
    else if (line.startsWith('author ') && !author) {
      const ident = line.slice(7);
      author = clean(ident.replace(/ \d+ [+-]\d{4}$/, ''), false).slice(0, MAX_AUTHOR);
      time = identTime(ident);
    } else if (line.startsWith('committer ') && committedAt === null) committedAt = identTime(line.slice(10));
  }
  if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(tree)) throw new ZvError('GIT_ERROR', 'the commit object has no tree');
  let raw = end < 0 ? Buffer.alloc(0) : data.subarray(end + 2, end + 2 + MAX_MESSAGE_BYTES);
  // Do not cut a UTF-8 character in two.
  if (end >= 0 && data.length > end + 2 + MAX_MESSAGE_BYTES) {
    let cut = raw.length;
    while (cut > 0 && ((raw[cut - 1] as number) & 0xc0) === 0x80) cut--;
    if (cut > 0 && ((raw[cut - 1] as number) & 0x80) !== 0) cut--;
    raw = raw.subarray(0, cut);
  }
  const message = clean(raw.toString('utf8'), true).replace(/\s+$/, '');
  return { tree, info: { message, author, time, committedAt } };
}

function normalisePath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ZvError('PATH_ESCAPE', `path ${JSON.stringify(path.slice(0, 200))} leaves the snapshot`);
  return parts;
}

export class GitSnapshot implements CommitSnapshot {
  constructor(
    readonly repoURL: string,
    readonly branch: string,
    readonly commit: string,
    private readonly rootTree: string,
    private readonly objects: BatchReader,
    private readonly cache: TreeCache,
    readonly commitInfo: CommitInfo,
  ) {}

  get revision(): string {
    return this.commit;
  }

  /** The commit's root tree id. */
  get treeId(): string {
    return this.rootTree;
  }

  async lstat(path: string): Promise<SnapshotEntry | null> {
    const parts = normalisePath(path);
    if (parts.length === 0) return { path: '', name: '', kind: 'dir', id: this.rootTree };
    let tree = this.rootTree;
    for (let i = 0; i < parts.length; i++) {
      const items = await this.tree(tree, parts.slice(0, i).join('/'));
      const item = find(items, parts[i] as string);
      if (!item) return null;
      if (i === parts.length - 1) return entryOf(parts.join('/'), item);
      if (item.kind !== 'dir') return null;
      tree = item.id;
    }
    return null;
  }

  async readdir(path: string): Promise<SnapshotEntry[]> {
    const entry = await this.lstat(path);
    if (!entry) throw new ZvError('INTERNAL', `${path || '/'}: no such folder in commit ${this.commit.slice(0, 12)}`);
    if (entry.kind !== 'dir') throw new ZvError('INTERNAL', `${path || '/'}: not a folder in commit ${this.commit.slice(0, 12)}`);
    const items = await this.tree(entry.id, entry.path);
    return items.map((it) => entryOf(entry.path ? `${entry.path}/${it.name}` : it.name, it));
  }

  async read(entry: SnapshotEntry, opts?: { maxBytes?: number }): Promise<Buffer> {
    if (entry.kind === 'dir' || entry.kind === 'submodule') {
      throw new ZvError('INTERNAL', `${entry.path}: a ${entry.kind === 'dir' ? 'folder' : 'submodule'} has no bytes to read`);
    }
    const max = opts?.maxBytes;
    if (max !== undefined && entry.size !== undefined && entry.size > max) throw tooLarge(entry.path, entry.size, max);
    const r = await this.objects.contents(entry.id, { ...(max !== undefined && entry.size === undefined ? { maxBytes: max } : {}), what: entry.path });
    if (!r) throw new ZvError('GIT_ERROR', `${entry.path}: blob ${entry.id} is missing from the clone`);
    if (r.info.type !== 'blob') throw new ZvError('GIT_ERROR', `${entry.path}: object ${entry.id} is a ${r.info.type}, not a blob`);
    return r.data;
  }

  /** The parsed tree `id` (cached), with the sizes of its files and symlinks. */
  private async tree(id: string, where: string): Promise<TreeItem[]> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const r = await this.objects.contents(id);
    if (!r) throw new ZvError('GIT_ERROR', `tree ${id} (${where || '/'}) is missing from the clone of commit ${this.commit.slice(0, 12)}`);
    if (r.info.type !== 'tree') throw new ZvError('GIT_ERROR', `object ${id} (${where || '/'}) is a ${r.info.type}, not a tree`);
    const items = parseTree(r.data, id.length / 2, where);
    // All sizes of the folder asked at once: the requests are pipelined through the one process.
    await Promise.all(items.map(async (it) => {
      if (it.kind === 'dir' || it.kind === 'submodule') return;
      const info = await this.objects.info(it.id);
      if (!info) throw new ZvError('GIT_ERROR', `blob ${it.id} (${where ? `${where}/` : ''}${it.name}) is missing from the clone`);
      it.size = info.size;
    }));
    this.cache.set(id, items);
    return items;
  }
}

function find(items: TreeItem[], name: string): TreeItem | undefined {
  let lo = 0;
  let hi = items.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const it = items[mid] as TreeItem;
    if (it.name === name) return it;
    if (it.name < name) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

function entryOf(path: string, it: TreeItem): SnapshotEntry {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return { path, name, kind: it.kind, id: it.id, ...(it.size !== undefined ? { size: it.size } : {}) };
}
