// How a Python worker process is started: probing the interpreter on the host and building the
// bubblewrap (bwrap) command line that confines it.
//
// The boundary, per worker (PRODUCT.md §4):
// - Files: a fresh mount namespace whose root is an empty read-only tmpfs holding only /usr
//   (read-only), the /bin, /lib… links of a merged-/usr host, the interpreter's own prefix when it
//   lives outside /usr (pyenv, venv), /etc/ld.so.cache, a private /proc, a minimal read-only /dev
//   and a private size-capped tmpfs /tmp. No /etc/passwd, /home, /root, /work, data dir or other
//   functions' code. The user code itself is never written to disk: it arrives over the pipe.
// - Processes: the worker installs a seccomp filter before user code runs (see worker-source.ts):
//   execve/execveat/fork/vfork and non-thread clone fail with EPERM; threads still work. bwrap adds
//   a pid namespace, so even the worker sees only itself, and --die-with-parent/PDEATHSIG kill it
//   with the host.
// - Identity and privileges: a user namespace, uid/gid 65534 inside, every capability dropped,
//   no_new_privs, a new session (no TIOCSTI on the host terminal), an empty environment.
// - Network: a new, empty network namespace (loopback only); IPC, UTS and cgroup are unshared too.
// - Resources: address space via RLIMIT_AS (memoryMb + the interpreter's baseline), /tmp capped at
//   memoryMb, wall-clock (and so CPU) time bounded by the per-invocation timeout, after which the
//   whole sandbox is killed.
// Not covered: CPU used by threads the function leaves running between invocations, the rate of
// log output, kernel bugs reachable from the allowed syscalls, and reading world-readable package
// files under /usr (which are not secrets). With `sandbox: false` none of this applies.
import { execFile } from 'node:child_process';
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';

export interface InterpreterInfo {
  /** The real interpreter binary (not a pyenv shim). */
  executable: string;
  version: string;
  /** sys.prefix, sys.base_prefix, sys.exec_prefix… (deduplicated, real paths). */
  prefixes: string[];
}

const PROBE = 'import sys, json; print(json.dumps({"executable": sys.executable, "version": sys.version.split()[0], "major": sys.version_info[0], "prefixes": [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]}))';

/** Python flags for every worker: isolated mode (no PYTHON* env, no user site), UTF-8, no .pyc writes. */
export const PYTHON_FLAGS = ['-I', '-X', 'utf8', '-B'];

function run(file: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr: String(stderr) }));
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function errorText(e: unknown): string {
  const stderr = (e as { stderr?: string }).stderr?.trim();
  const msg = e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e);
  return stderr ? `${msg}: ${stderr.split('\n').slice(-3).join(' ')}` : msg;
}

export async function probeInterpreter(python: string): Promise<InterpreterInfo> {
  let out: string;
  try {
    // The probe (our code only) gets the host env so PATH lookups and pyenv-style shims resolve to
    // the real binary; workers then run that binary directly with an empty env.
    out = (await run(python, ['-I', '-c', PROBE], 15000, process.env)).stdout;
  } catch (e) {
    throw new Error(`cannot run ${python}: ${errorText(e)}`);
  }
  const info = JSON.parse(out) as { executable: string; version: string; major: number; prefixes: string[] };
  if (info.major !== 3) throw new Error(`${python} is Python ${info.version}, not Python 3`);
  if (!info.executable) throw new Error(`${python} does not know its own executable`);
  const real = (p: string): string => {
    try { return realpathSync(p); } catch { return p; }
  };
  return { executable: real(info.executable), version: info.version, prefixes: [...new Set(info.prefixes.filter(Boolean).map(real))] };
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** The read-only view of the host a worker gets. */
function rootBinds(info: InterpreterInfo): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const top of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    let st;
    try { st = lstatSync(top); } catch { continue; }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else if (st.isDirectory()) args.push('--ro-bind', top, top);
  }
  const extra: string[] = [];
  for (const p of [...info.prefixes, info.executable]) {
    if (p === '/' || under(p, '/usr') || extra.some((x) => under(p, x))) continue;
    extra.push(p);
  }
  for (const p of extra) args.push('--ro-bind', p, p);
  args.push('--ro-bind-try', '/etc/ld.so.cache', '/etc/ld.so.cache');
  return args;
}

export interface SandboxOptions {
  memoryMb: number;
}

/** bwrap arguments up to and including `--`; the interpreter command line follows. */
export function bwrapArgs(info: InterpreterInfo, opts: SandboxOptions): string[] {
  const tmpBytes = Math.max(1, Math.ceil(opts.memoryMb)) * 1024 * 1024;
  return [
    '--unshare-all', '--die-with-parent', '--new-session', '--clearenv',
    '--cap-drop', 'ALL', '--uid', '65534', '--gid', '65534', '--hostname', 'zerverless',
    ...rootBinds(info),
    '--proc', '/proc',
    '--dev', '/dev', '--remount-ro', '/dev',
    '--perms', '1777', '--size', String(tmpBytes), '--tmpfs', '/tmp',
    '--remount-ro', '/',
    '--chdir', '/tmp',
    // glibc reads it at start-up: one malloc arena (threads share it; the GIL serialises them
    // anyway) instead of 64 MiB of address space per thread arena, which RLIMIT_AS would count.
    // The worker replaces the environment with the function's env before user code runs.
    '--setenv', 'MALLOC_ARENA_MAX', '1',
    '--',
  ];
}

/** Starts a throw-away sandbox to prove bwrap works here (namespaces may be forbidden in containers). */
export async function checkSandbox(bwrap: string, info: InterpreterInfo): Promise<void> {
  try {
    await run(bwrap, [...bwrapArgs(info, { memoryMb: 16 }), info.executable, ...PYTHON_FLAGS, '-c', 'import ctypes, asyncio'], 15000);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT') throw new Error(`bubblewrap (${bwrap}) is not installed; install the 'bubblewrap' package`);
    throw new Error(`bubblewrap cannot start a sandbox here: ${errorText(e)}`);
  }
}
