// SSH keys of credentials: checking a private key (ssh-keygen reads it from a 0600 temp file, only
// its path is in argv) and its SHA256 fingerprint as `ssh-keygen -lf` prints it (from the public
// key, parsed like the keys of signed-commit policies), and a light check of known_hosts text.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError } from '../errors/registry.js';
import { parseSshPublicKey } from '../sources/git/verify-policy.js';

const MAX_KNOWN_HOSTS_LINES = 100;

/** `SHA256:<base64, no padding>` of a public key line (`type base64 [comment]`), or null if it is not one. */
function fingerprintOf(line: string): string | null {
  const key = parseSshPublicKey(line);
  return typeof key === 'string' ? null : key.fingerprint;
}

/**
 * The public key of an unencrypted OpenSSH/PEM private key, by `ssh-keygen -y` on a temp file
 * (0600 in a fresh 0700 folder under `tmpRoot`, removed at once). Throws VALIDATION_FAILED (never
 * quoting the key) when it is not one or needs a passphrase.
 */
export async function publicKeyOf(privateKey: string, tmpRoot: string): Promise<{ line: string; fingerprint: string }> {
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(privateKey)) {
    throw new ZvError('VALIDATION_FAILED', 'sshPrivateKey: not a private key (expected -----BEGIN OPENSSH PRIVATE KEY----- …)');
  }
  await mkdir(tmpRoot, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(tmpRoot, 'key-'));
  try {
    const file = join(dir, 'id');
    await writeFile(file, `${privateKey.trim()}\n`, { mode: 0o600, flag: 'wx' });
    const out = await new Promise<string>((resolve, reject) => {
      execFile('ssh-keygen', ['-y', '-P', '', '-f', file], { timeout: 10_000, env: { ...process.env, SSH_ASKPASS: '', DISPLAY: '' } }, (err, stdout) => {
        if (err) reject(err);
        else resolve(stdout);
      });
    });
    const line = out.trim().split('\n')[0] ?? '';
    const fingerprint = fingerprintOf(line);
    if (!fingerprint) throw new Error('no public key');
    return { line, fingerprint };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ZvError('INTERNAL', 'ssh-keygen is not installed on the server');
    throw new ZvError('VALIDATION_FAILED', 'sshPrivateKey: not a usable private key (it must be unencrypted: no passphrase)');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Normalised known_hosts text; throws VALIDATION_FAILED naming the first line that is not `[marker] hosts type key`. */
export function checkKnownHosts(text: string): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new ZvError('VALIDATION_FAILED', 'knownHosts: no host key lines');
  if (lines.length > MAX_KNOWN_HOSTS_LINES) throw new ZvError('VALIDATION_FAILED', `knownHosts: at most ${MAX_KNOWN_HOSTS_LINES} lines`);
  lines.forEach((line, i) => {
    const fields = line.split(/\s+/);
    const rest = fields[0]?.startsWith('@') ? fields.slice(2) : fields.slice(1);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(line) || !fingerprintOf(rest.join(' '))) {
      throw new ZvError('VALIDATION_FAILED', `knownHosts: line ${i + 1} is not '[@marker] host-patterns key-type base64-key'`);
    }
  });
  return lines.join('\n');
}
