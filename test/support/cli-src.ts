// Test helper: the `zerverless` command run from source (through tsx) in a child process, so a test
// needs no build of dist/, and the child-process runner test/e2e/cli.test.ts also uses for the built
// bin/zerverless.js. Both are asynchronous: a server under test in this process keeps answering.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = `import('./src/cli/main.ts').then((m) => m.main(process.argv.slice(1))).then((c) => process.exit(c))`;

export interface ProcessResult { code: number; stdout: string; stderr: string }

/**
 * This process's environment without ZV_TOKEN and ZV_SERVER, so a CLI under test takes its server
 * and token from its arguments (or a login), never from the environment the tests run in.
 */
export function envWithoutServer(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.ZV_TOKEN;
  delete env.ZV_SERVER;
  return env;
}

/** Runs `node ...args` in a child process (in the repository's root) and collects its output. */
export function runNode(args: string[], options: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: options.env ?? envWithoutServer(), stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeout ?? 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs `zerverless ...args` from the sources (src/cli/main.ts through tsx). */
export function cliFromSource(...args: string[]): Promise<ProcessResult> {
  return runNode(['--import', 'tsx', '-e', ENTRY, '--', ...args]);
}
