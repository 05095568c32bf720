// Test helper: a real git repository in a temp dir, written and committed by the test.
import { mkdtemp, mkdir, rm, writeFile, symlink, unlink } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
};

export class TestRepo {
  private constructor(readonly dir: string) {}

  static async create(files: Record<string, string> = {}, branch = 'main'): Promise<TestRepo> {
    const dir = await mkdtemp(join(tmpdir(), 'zv-repo-'));
    const repo = new TestRepo(dir);
    repo.git('init', '-q', '-b', branch);
    if (Object.keys(files).length) await repo.commit(files, 'initial');
    return repo;
  }

  get url(): string {
    return `file://${this.dir}`;
  }

  git(...args: string[]): string {
    return execFileSync('git', args, { cwd: this.dir, env: GIT_ENV, encoding: 'utf8' }).trim();
  }

  /** Writes files (null deletes one), commits everything, returns the new commit SHA. */
  async commit(files: Record<string, string | null>, message = 'change'): Promise<string> {
    for (const [rel, content] of Object.entries(files)) {
      const p = join(this.dir, rel);
      if (content === null) await rm(p, { force: true, recursive: true });
      else {
        await mkdir(dirname(p), { recursive: true });
        await writeFile(p, content);
      }
    }
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.head();
  }

  async link(rel: string, target: string): Promise<void> {
    const p = join(this.dir, rel);
    await mkdir(dirname(p), { recursive: true });
    await unlink(p).catch(() => undefined);
    await symlink(target, p);
  }

  head(): string {
    return this.git('rev-parse', 'HEAD');
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
