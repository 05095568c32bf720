// A Snapshot over a plain folder: what unit tests, `zerverless validate` and anything else reading a
// local folder hand the tree reader. A file's or link's id is git's blob id (sha1 of
// `blob <size>\0<bytes>`), so unchanged files are recognised across snapshots. A folder's id is, by
// default, unique to this snapshot (never equal to another's, so a reader never skips a folder of
// it: nothing is read beyond the folders a reader lists); with `gitIds` it is the tree id git would
// compute, which hashes the whole subtree once per instance (tests of folder skipping use it).
//
// The folder is read as it is now: make a new FsSnapshot after changing it. Like a git tree, it
// never shows `.git`, sockets, FIFOs or devices; nothing is followed through symlinks.
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError } from '../errors/registry.js';
import type { Snapshot, SnapshotEntry, SnapshotKind } from './snapshot.js';

const MODES: Record<SnapshotKind, string> = { file: '100644', exec: '100755', symlink: '120000', dir: '40000', submodule: '160000' };

function gitHash(type: 'blob' | 'tree', data: Buffer): string {
  return createHash('sha1').update(`${type} ${data.byteLength}\0`).update(data).digest('hex');
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export class FsSnapshot implements Snapshot {
  private readonly dirs = new Map<string, Promise<SnapshotEntry[]>>();
  private readonly ids = new Map<string, Promise<string>>();
  private static made = 0;
  private readonly gitIds: boolean;
  private readonly instance = `fs-${process.pid}-${++FsSnapshot.made}-${Date.now()}`;

  /** `commit` is what the snapshot says it is the tree of (a placeholder for a folder that is no commit). */
  constructor(readonly root: string, readonly commit: string = '0'.repeat(40), opts: { gitIds?: boolean } = {}) {
    this.gitIds = opts.gitIds ?? false;
  }

  private abs(path: string): string {
    return path === '' ? this.root : join(this.root, ...path.split('/'));
  }

  private static valid(path: string): boolean {
    return path === '' || path.split('/').every((s) => s !== '' && s !== '.' && s !== '..' && s !== '.git');
  }

  private async entryAt(path: string): Promise<SnapshotEntry | null> {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const st = await lstat(this.abs(path)).catch(() => null);
    if (!st) return null;
    let kind: SnapshotKind;
    if (st.isDirectory()) kind = 'dir';
    else if (st.isSymbolicLink()) kind = 'symlink';
    else if (st.isFile()) kind = st.mode & 0o111 ? 'exec' : 'file';
    else return null;
    if (kind === 'dir') return { path, name, kind, id: await this.treeId(path) };
    const data = await this.bytes(path, kind);
    return { path, name, kind, id: gitHash('blob', data), size: data.byteLength };
  }

  private bytes(path: string, kind: SnapshotKind): Promise<Buffer> {
    return kind === 'symlink' ? readlink(this.abs(path), { encoding: 'buffer' }) : readFile(this.abs(path));
  }

  private treeId(path: string): Promise<string> {
    if (!this.gitIds) return Promise.resolve(`${this.instance}:${path}`);
    let id = this.ids.get(path);
    if (!id) {
      id = this.list(path).then((entries) => {
        // git sorts a folder's entries as if folder names ended in '/'.
        const key = (e: SnapshotEntry): string => (e.kind === 'dir' ? `${e.name}/` : e.name);
        const sorted = [...entries].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
        const parts = sorted.map((e) => Buffer.concat([Buffer.from(`${MODES[e.kind]} ${e.name}\0`), Buffer.from(e.id, 'hex')]));
        return gitHash('tree', Buffer.concat(parts));
      });
      this.ids.set(path, id);
    }
    return id;
  }

  async lstat(path: string): Promise<SnapshotEntry | null> {
    if (!FsSnapshot.valid(path)) return null;
    if (path === '') return { path: '', name: '', kind: 'dir', id: await this.treeId('') };
    // Links on the way are not followed: every folder above must be a folder.
    const i = path.lastIndexOf('/');
    const parent = i < 0 ? '' : path.slice(0, i);
    if (parent !== '') {
      const p = await this.lstat(parent);
      if (p?.kind !== 'dir') return null;
    }
    return this.entryAt(path);
  }

  readdir(path: string): Promise<SnapshotEntry[]> {
    return this.list(path);
  }

  private list(path: string): Promise<SnapshotEntry[]> {
    let list = this.dirs.get(path);
    if (!list) {
      list = (async () => {
        const st = FsSnapshot.valid(path) ? await lstat(this.abs(path)).catch(() => null) : null;
        if (!st?.isDirectory()) throw new ZvError('INTERNAL', `snapshot: "${path}" is not a folder`);
        const names = (await readdir(this.abs(path))).filter((n) => n !== '.git');
        const entries = await Promise.all(names.map((n) => this.entryAt(path === '' ? n : `${path}/${n}`)));
        return entries.filter((e): e is SnapshotEntry => e !== null).sort(byName);
      })();
      this.dirs.set(path, list);
    }
    return list;
  }

  async read(entry: SnapshotEntry, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    if (entry.kind === 'dir' || entry.kind === 'submodule') throw new ZvError('INTERNAL', `snapshot: "${entry.path}" is not a file`);
    if (opts.maxBytes !== undefined && (entry.size ?? 0) > opts.maxBytes) {
      throw new ZvError('FILE_TOO_LARGE', `${entry.path}: is ${entry.size} bytes, over the limit of ${opts.maxBytes}`);
    }
    return this.bytes(entry.path, entry.kind);
  }
}
