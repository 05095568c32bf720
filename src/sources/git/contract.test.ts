// GitSource against the shared source contract (../contract.ts), with real git repositories in temp
// dirs (test/support/repo.ts) read over file://. What only the git source does (local paths, URL and
// branch-name refusal, fetch counting, shared clones, remotes that never answer) is in git.test.ts.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TestRepo } from '../../../test/support/repo.js';
import { sourceContract } from '../contract.js';
import type { ContractFiles, ContractRepo } from '../contract.js';
import { GitSource } from './git-source.js';

const base = await mkdtemp(join(tmpdir(), 'zv-source-contract-'));
const repos: TestRepo[] = [];
let n = 0;

/**
 * Writes `files` into the work tree: symlinks as symlinks, executables with their bit, null deletes;
 * a submodule is recorded in the index (an empty folder stands for it in the work tree).
 */
async function write(repo: TestRepo, files: ContractFiles): Promise<void> {
  for (const [rel, f] of Object.entries(files)) {
    const p = join(repo.dir, rel);
    await rm(p, { force: true, recursive: true });
    if (f === null) continue;
    await mkdir(dirname(p), { recursive: true });
    if (typeof f === 'string') await writeFile(p, f);
    else if ('link' in f) await repo.link(rel, f.link);
    else if ('submodule' in f) {
      await mkdir(p);
      repo.git('update-index', '--add', '--cacheinfo', `160000,${f.submodule},${rel}`);
    }
    else {
      await writeFile(p, f.exec);
      await chmod(p, 0o755);
    }
  }
}

sourceContract<GitSource>({
  name: 'git',
  create: ({ headCacheMs }) => new GitSource({ dataDir: join(base, `data-${++n}`), allowFileRepos: true, headCacheMs }),
  repo: async (files) => {
    const repo = await TestRepo.create();
    repos.push(repo);
    await write(repo, files);
    await repo.commit({}, 'initial');
    const r: ContractRepo = {
      url: repo.url,
      commit: async (change, branch = 'main', message = 'change') => {
        const current = repo.git('rev-parse', '--abbrev-ref', 'HEAD');
        if (current !== branch) {
          const exists = repo.git('branch', '--list', branch) !== '';
          repo.git('checkout', '-q', ...(exists ? [branch] : ['-b', branch]));
        }
        await write(repo, change);
        return repo.commit({}, message);
      },
      resetBranch: async (branch, sha) => {
        repo.git('checkout', '-q', branch);
        repo.git('reset', '-q', '--hard', sha);
      },
    };
    return r;
  },
  missingRepoUrl: () => `file://${join(base, 'no-such-repository')}`,
  headAsks: (src) => src.stats.lsRemote,
  killReader: async (src, ref) => {
    const pid = src.readers.peek(src.repoDir(ref.repoURL))?.pid;
    if (pid === undefined) return false;
    process.kill(pid, 'SIGKILL');
    return true;
  },
  cleanup: async () => {
    for (const r of repos) await r.remove();
    await rm(base, { recursive: true, force: true });
  },
});
