// Install and build a fetched service: the lockfile picks the package manager (package-lock.json or
// npm-shrinkwrap.json → `npm ci`, pnpm-lock.yaml → `pnpm install --frozen-lockfile`, yarn.lock →
// `yarn install --frozen-lockfile`, none but dependencies → `npm install`), then `npm run build` when
// package.json has a build script. And how the service starts: `npm start` or `node <main>`.
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serviceError } from './errors.js';
import { runCommand, which } from './exec.js';
import type { LogBuffer } from './log.js';

export interface PackageJson {
  main?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export async function readPackageJson(dir: string): Promise<PackageJson | null> {
  let text: string;
  try {
    text = await readFile(join(dir, 'package.json'), 'utf8');
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' ? (v as PackageJson) : {};
  } catch (e) {
    throw serviceError('install', `package.json is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

export interface InstallStep {
  tool: 'npm' | 'pnpm' | 'yarn';
  args: string[];
  why: string;
}

/** What installs the dependencies of `dir`, or null when there is nothing to install. */
export async function installStep(dir: string, pkg: PackageJson | null): Promise<InstallStep | null> {
  if (await exists(join(dir, 'package-lock.json'))) return { tool: 'npm', args: ['ci', '--no-audit', '--no-fund'], why: 'package-lock.json' };
  if (await exists(join(dir, 'npm-shrinkwrap.json'))) return { tool: 'npm', args: ['ci', '--no-audit', '--no-fund'], why: 'npm-shrinkwrap.json' };
  if (await exists(join(dir, 'pnpm-lock.yaml'))) return { tool: 'pnpm', args: ['install', '--frozen-lockfile'], why: 'pnpm-lock.yaml' };
  if (await exists(join(dir, 'yarn.lock'))) return { tool: 'yarn', args: ['install', '--frozen-lockfile'], why: 'yarn.lock' };
  const deps = Object.keys(pkg?.dependencies ?? {}).length + Object.keys(pkg?.devDependencies ?? {}).length;
  if (deps > 0) return { tool: 'npm', args: ['install', '--no-audit', '--no-fund'], why: 'dependencies without a lockfile' };
  return null;
}

export interface InstallOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  log: LogBuffer;
}

/** Installs dependencies and runs the build script; rejects with the tool's last output. */
export async function installAndBuild(dir: string, o: InstallOptions): Promise<void> {
  const pkg = await readPackageJson(dir);
  const step = await installStep(dir, pkg);
  if (step) {
    if (!(await which(step.tool, o.env.PATH))) {
      throw serviceError('tool-missing', `${step.why} needs ${step.tool}, which is not installed on this server`, { tool: step.tool });
    }
    await run(step.tool, step.args, dir, o, 'install', `${step.tool} ${step.args[0]} (${step.why})`);
  }
  if (pkg?.scripts?.build) await run('npm', ['run', 'build'], dir, o, 'build', 'npm run build');
}

async function run(cmd: string, args: string[], dir: string, o: InstallOptions, reason: 'install' | 'build', what: string): Promise<void> {
  o.log.add('system', `${what}`);
  const r = await runCommand({ cmd, args, cwd: dir, env: o.env, timeoutMs: o.timeoutMs, log: o.log, what: `${cmd} ${args[0] ?? ''}`.trim() });
  if (r.timedOut) throw serviceError(reason, `${what} took longer than ${o.timeoutMs} ms and was stopped`);
  if (r.code !== 0) throw serviceError(reason, `${what} failed (${r.signal ?? `exit code ${r.code}`}): ${r.tail.split('\n').slice(-15).join('\n')}`);
}

/** How the service starts: `npm start` when there is a start script, else `node <main>` (default index.js). */
export async function startCommand(dir: string, nodePath = process.execPath): Promise<{ cmd: string; args: string[]; what: string }> {
  const pkg = await readPackageJson(dir);
  if (pkg?.scripts?.start) return { cmd: 'npm', args: ['start', '--silent'], what: 'npm start' };
  const main = typeof pkg?.main === 'string' && pkg.main ? pkg.main : 'index.js';
  if (!(await exists(join(dir, main))) && !(await exists(join(dir, `${main}.js`)))) {
    throw serviceError('start', `nothing to start: package.json has no start script and '${main}' does not exist`);
  }
  return { cmd: nodePath, args: [main], what: `node ${main}` };
}
