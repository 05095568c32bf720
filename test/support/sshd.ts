// Test helper: a real OpenSSH server on 127.0.0.1 with its own host key and config, key-only login
// as the current user (root here), serving git repositories by path: ssh://root@127.0.0.1:PORT/abs/path.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const SSHD = '/usr/sbin/sshd';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function keygen(file: string, comment: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'ignore' });
}

export class TestSshd {
  private proc: ChildProcess | null = null;
  private log = '';

  private constructor(readonly dir: string, readonly port: number) {}

  static async start(): Promise<TestSshd> {
    const dir = await mkdtemp(join(tmpdir(), 'zv-sshd-'));
    const d = new TestSshd(dir, await freePort());
    keygen(join(dir, 'host_key'), 'host');
    keygen(join(dir, 'client_key'), 'zv-test-client');
    await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client_key.pub')));
    await d.writeConfig();
    await d.launch();
    return d;
  }

  /** The user name git logs in as. */
  get user(): string {
    return userInfo().username;
  }

  url(repoPath: string): string {
    return `ssh://${this.user}@127.0.0.1:${this.port}${repoPath}`;
  }

  /** The client private key the server accepts. */
  clientKey(): Promise<string> {
    return readFile(join(this.dir, 'client_key'), 'utf8');
  }

  /** A known_hosts line for the server's current host key. */
  async knownHosts(): Promise<string> {
    const pub = (await readFile(join(this.dir, 'host_key.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    return `[127.0.0.1]:${this.port} ${pub}`;
  }

  /** Another private key (not authorized). */
  async otherKey(): Promise<string> {
    const file = join(this.dir, `other_${Date.now()}`);
    keygen(file, 'other');
    return readFile(file, 'utf8');
  }

  /** Replaces the host key and restarts on the same port (a changed or impersonated server). */
  async rotateHostKey(): Promise<void> {
    await this.stop();
    await rm(join(this.dir, 'host_key'), { force: true });
    await rm(join(this.dir, 'host_key.pub'), { force: true });
    keygen(join(this.dir, 'host_key'), 'host2');
    await this.launch();
  }

  output(): string {
    return this.log;
  }

  private async writeConfig(): Promise<void> {
    const conf = [
      `Port ${this.port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(this.dir, 'host_key')}`,
      `PidFile ${join(this.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'PrintMotd no',
      'X11Forwarding no',
      'AllowTcpForwarding no',
      'LogLevel VERBOSE',
      // Each test run makes many short connections.
      'MaxStartups 100',
    ].join('\n');
    await writeFile(join(this.dir, 'sshd_config'), conf + '\n');
  }

  private async launch(): Promise<void> {
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    const proc = spawn(SSHD, ['-D', '-e', '-f', join(this.dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr?.on('data', (b: Buffer) => {
      this.log += b.toString();
      if (this.log.length > 1_000_000) this.log = this.log.slice(-500_000);
    });
    const deadline = Date.now() + 60_000; // generous: sshd starts slowly on a loaded machine
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`sshd exited: ${this.log}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect(this.port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`sshd did not listen on ${this.port}: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    await exited;
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
