// Signed commits (PRODUCT.md §10): a commit is trusted only when it carries a good signature by one
// of the application's keys. git itself checks the signature against the shared bare clone:
//   ssh: `git -c gpg.ssh.allowedSignersFile=<file> log -1 --format=%G?…` with an allowed signers
//        file of lines `* namespaces="git" <key>`;
//   gpg: the same with GNUPGHOME = a keyring that holds exactly the application's keys (imported
//        once, `trust-model always`: trust comes from the fingerprint allowlist, not the web of
//        trust, and no gpg-agent is ever started).
// The signature's format is read from the commit first, so an ssh policy never runs gpg and the
// other way round. Anything but a good signature whose fingerprint is in the allowlist throws
// COMMIT_NOT_TRUSTED, saying whether the commit was unsigned or which key signed it.
//
// Keyrings and signer files live under <keysDir>/<hash of type and keys>/ (0700), shared by the
// applications with the same policy, created in a temp folder and renamed into place.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError } from '../../errors/registry.js';
import type { CommitVerification } from '../../core/commit-policy.js';
import { trimMessage, type GitResult } from '../../git-cli/exec.js';
import { SingleFlight } from './lock.js';
import { parseSshPublicKey, pgpPrimaryFingerprints, summariseVerify } from './verify-policy.js';

/** Runs git in mode 'local' on our own data (GitSource.run, or runGit in tests). */
export type LocalGit = (r: { args: string[]; mode: 'local'; timeoutMs: number; env?: Record<string, string>; okCodes?: number[]; what?: string }) => Promise<GitResult>;

export interface VerifyCommitOptions {
  /** The bare clone that holds `revision`. */
  repoDir: string;
  /** Full commit SHA. */
  revision: string;
  policy: CommitVerification;
  /** Folder under the data dir for keyrings and allowed signers files. */
  keysDir: string;
  git: LocalGit;
  timeoutMs: number;
  /** The gpg binary (default `gpg`). */
  gpg?: string;
  /** The ssh-keygen binary git runs for ssh signatures (default `ssh-keygen`). */
  sshKeygen?: string;
}

type SignatureKind = 'ssh' | 'gpg' | 'x509';

interface TrustMaterial {
  dir: string;
  /** ssh: SHA256:… per key; gpg: fingerprints of every primary key and subkey in the keyring. */
  allowed: Set<string>;
}

const prepared = new SingleFlight<TrustMaterial>();
const ready = new Map<string, TrustMaterial>();

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

const short = (sha: string): string => sha.slice(0, 12);

/** The `gpgsig` header of a raw commit object (continuation lines start with one space). */
export function commitSignature(raw: string): string | null {
  const end = raw.indexOf('\n\n');
  const headers = (end === -1 ? raw : raw.slice(0, end)).split('\n');
  let sig: string[] | null = null;
  for (const line of headers) {
    if (sig !== null) {
      if (line.startsWith(' ')) { sig.push(line.slice(1)); continue; }
      break;
    }
    const m = /^gpgsig(?:-sha256)? (.*)$/.exec(line);
    if (m) sig = [m[1] ?? ''];
  }
  return sig ? sig.join('\n') + '\n' : null;
}

export function signatureKind(sig: string): SignatureKind | null {
  if (sig.startsWith('-----BEGIN SSH SIGNATURE-----')) return 'ssh';
  if (sig.startsWith('-----BEGIN PGP SIGNATURE-----') || sig.startsWith('-----BEGIN PGP MESSAGE-----')) return 'gpg';
  if (sig.startsWith('-----BEGIN SIGNED MESSAGE-----')) return 'x509';
  return null;
}

function policyHash(policy: CommitVerification): string {
  const h = createHash('sha256').update(policy.type);
  for (const k of policy.keys) h.update('\u0000').update(k);
  return h.digest('hex').slice(0, 32);
}

function toolEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANGUAGE: 'C', GNUPGHOME: home };
}

function gpgRun(gpg: string, home: string, args: string[], input: string | null, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(gpg, ['--homedir', home, '--batch', '--no-tty', '--no-autostart', ...args],
      { env: toolEnv(home), timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
        if (e?.code === 'ENOENT') { reject(new ZvError('GIT_ERROR', `cannot run ${gpg}: it is not installed, so gpg signatures cannot be checked`)); return; }
        if (e?.killed) { reject(new ZvError('GIT_TIMEOUT', `gpg took longer than ${timeoutMs} ms and was stopped`)); return; }
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
      });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

/** Writes the allowed signers file or builds the keyring of `policy`, once per policy. */
async function trustMaterial(o: VerifyCommitOptions): Promise<TrustMaterial> {
  const dir = join(o.keysDir, policyHash(o.policy));
  const known = ready.get(dir);
  // One stat per check: a data dir cleaned by hand must not turn every signature into "unknown key".
  if (known && (await exists(join(dir, 'allowed.json')))) return known;
  return prepared.do(dir, async () => {
    const allowedFile = join(dir, 'allowed.json');
    if (!(await exists(allowedFile))) await build(o, dir);
    let allowed: string[];
    try {
      allowed = JSON.parse(await readFile(allowedFile, 'utf8')) as string[];
    } catch (e) {
      throw new ZvError('GIT_ERROR', `the keyring in ${dir} cannot be read: ${e instanceof Error ? e.message : String(e)}`);
    }
    const m: TrustMaterial = { dir, allowed: new Set(allowed) };
    if (ready.size > 1000) ready.clear();
    ready.set(dir, m);
    return m;
  });
}

async function build(o: VerifyCommitOptions, dir: string): Promise<void> {
  await mkdir(o.keysDir, { recursive: true, mode: 0o700 });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(tmp, { mode: 0o700 });
    await chmod(tmp, 0o700);
    let allowed: string[];
    if (o.policy.type === 'ssh') {
      const lines: string[] = [];
      allowed = [];
      for (const k of o.policy.keys) {
        const p = parseSshPublicKey(k);
        if (typeof p === 'string') throw new ZvError('GIT_ERROR', `a trusted ssh key of this application cannot be read: ${p}`);
        // Rebuilt from the parsed parts: nothing else of the stored text reaches the file.
        lines.push(`* namespaces="git" ${p.type} ${p.blob}`);
        allowed.push(p.fingerprint);
      }
      await writeFile(join(tmp, 'allowed_signers'), lines.join('\n') + '\n', { mode: 0o600 });
    } else {
      const gpg = o.gpg ?? 'gpg';
      const home = join(tmp, 'gnupg');
      await mkdir(home, { mode: 0o700 });
      await writeFile(join(home, 'gpg.conf'), 'no-autostart\ntrust-model always\n', { mode: 0o600 });
      // gpg's exit code is not the judge: with no agent (or a home path too long for its socket) it
      // says 2 although the public keys were imported. The keyring's listing is.
      const stderr: string[] = [];
      for (const k of o.policy.keys) stderr.push((await gpgRun(gpg, home, ['--import'], k, o.timeoutMs)).stderr);
      const list = await gpgRun(gpg, home, ['--with-colons', '--fingerprint', '--fingerprint', '--list-keys'], null, o.timeoutMs);
      allowed = list.stdout.split('\n').filter((l) => l.startsWith('fpr:')).map((l) => (l.split(':')[9] ?? '').toUpperCase()).filter((f) => f !== '');
      const missing = o.policy.keys.flatMap((k) => pgpPrimaryFingerprints(k)).filter((f) => !allowed.includes(f));
      if (allowed.length === 0 || missing.length) {
        const why = stderr.join('\n').split('\n').filter((l) => /error|invalid|failed|no valid/i.test(l)).slice(0, 5).join('; ');
        throw new ZvError('GIT_ERROR', `gpg did not import the trusted key${missing.length === 1 ? '' : 's'} ${missing.join(', ') || 'of this application'}${why ? `: ${why}` : ''}`);
      }
    }
    await writeFile(join(tmp, 'allowed.json'), JSON.stringify(allowed), { mode: 0o600 });
    try {
      await rename(tmp, dir);
    } catch (e) {
      if (!(await exists(join(dir, 'allowed.json')))) throw e;
      await rm(tmp, { recursive: true, force: true }); // another process made it first
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

function notTrusted(message: string, reason: string, fingerprint?: string): ZvError {
  return new ZvError('COMMIT_NOT_TRUSTED', message, fingerprint ? { reason, fingerprint } : { reason });
}

/** The fingerprint of the key that made a gpg signature git could not check (from gpg's ERRSIG). */
async function unknownGpgSigner(o: VerifyCommitOptions, home: string, sig: string): Promise<string | null> {
  const tmp = join(o.keysDir, `.sig-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(tmp, sig, { mode: 0o600 });
    const r = await gpgRun(o.gpg ?? 'gpg', home, ['--status-fd', '1', '--verify', tmp, '-'], '', o.timeoutMs);
    for (const line of r.stdout.split('\n')) {
      const f = line.split(' ');
      // [GNUPG:] ERRSIG <keyid> <algo> <hash> <class> <time> <rc> [<fpr>]
      if (f[1] === 'ERRSIG') return (f[8] && /^[0-9A-F]{40,64}$/i.test(f[8]) ? f[8] : f[2] ?? '').toUpperCase() || null;
    }
    return null;
  } catch {
    return null;
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Resolves when `revision` is signed by one of the policy's keys; throws COMMIT_NOT_TRUSTED when it
 * is unsigned, signed by another key, badly signed, or signed by an expired or revoked key.
 */
export async function verifyCommit(o: VerifyCommitOptions): Promise<void> {
  const { policy, revision } = o;
  const trusted = summariseVerify(policy).keys;
  const trustedText = `${trusted.length === 1 ? 'its trusted' : `one of its ${trusted.length} trusted`} ${policy.type} key${trusted.length === 1 ? '' : 's'} (${trusted.join(', ')})`;
  const raw = await o.git({
    args: [`--git-dir=${o.repoDir}`, 'cat-file', 'commit', revision], mode: 'local', timeoutMs: o.timeoutMs, what: `git cat-file commit ${short(revision)}`,
  });
  const sig = commitSignature(raw.stdout);
  if (sig === null) {
    throw notTrusted(`commit ${short(revision)} is not signed; the application deploys only commits signed by ${trustedText}`, 'unsigned');
  }
  const kind = signatureKind(sig);
  if (kind !== policy.type) {
    throw notTrusted(`commit ${short(revision)} carries ${kind === null ? 'a signature of an unknown kind' : `${kind === 'gpg' ? 'a' : 'an'} ${kind} signature`}; the application deploys only commits signed by ${trustedText}`, 'wrong-type');
  }
  const material = await trustMaterial(o);
  const home = join(material.dir, 'gnupg');
  const r = await o.git({
    args: [
      '-c', `gpg.ssh.allowedSignersFile=${join(material.dir, 'allowed_signers')}`, '-c', `gpg.ssh.program=${o.sshKeygen ?? 'ssh-keygen'}`,
      '-c', `gpg.program=${o.gpg ?? 'gpg'}`, '-c', 'gpg.minTrustLevel=undefined', '-c', 'log.showSignature=false',
      `--git-dir=${o.repoDir}`, 'log', '-1', '--no-walk', '--format=%G?%x00%GK%x00%GF%x00%GP', revision, '--',
    ],
    mode: 'local', timeoutMs: o.timeoutMs, env: { GNUPGHOME: home }, what: `git log ${short(revision)} (signature check)`,
  });
  const [status = '', keyId = '', fpr = '', primary = ''] = r.stdout.trim().split('\u0000');
  const signer = (policy.type === 'gpg' ? (primary || fpr || keyId).toUpperCase() : fpr || keyId) || 'an unknown key';
  const good = policy.type === 'ssh' ? status === 'G' : status === 'G' || status === 'U';
  if (good) {
    if (material.allowed.has(policy.type === 'gpg' ? fpr.toUpperCase() : fpr) || (policy.type === 'gpg' && material.allowed.has(primary.toUpperCase()))) return;
    throw notTrusted(`commit ${short(revision)} is signed by ${policy.type} key ${signer}, which is not ${trustedText}`, 'untrusted-key', signer);
  }
  // git reports a missing ssh-keygen or gpg as a bad or absent signature: that is the server's fault,
  // not the commit's, so it is not a COMMIT_NOT_TRUSTED (which the poll would not retry).
  if (/cannot run|cannot exec|No such file or directory/i.test(r.stderr)) {
    throw new ZvError('GIT_ERROR', `the ${policy.type} signature of commit ${short(revision)} cannot be checked: ${trimMessage(r.stderr)}`);
  }
  switch (status) {
    case 'N':
      // The commit has a signature (read above) that git could not make sense of.
      throw notTrusted(`the ${policy.type} signature of commit ${short(revision)} cannot be read; the application deploys only commits signed by ${trustedText}`, 'unreadable');
    case 'U':
      throw notTrusted(`commit ${short(revision)} is signed by ssh key ${signer}, which is not ${trustedText}`, 'untrusted-key', signer);
    case 'E': {
      const who = policy.type === 'gpg' ? (await unknownGpgSigner(o, home, sig)) ?? signer : signer;
      throw notTrusted(`commit ${short(revision)} is signed by ${policy.type} key ${who}, which is not ${trustedText}`, 'untrusted-key', who);
    }
    case 'B':
      throw notTrusted(`commit ${short(revision)} has a bad signature${fpr || keyId ? ` by key ${signer}` : ''}: the commit is not what was signed`, 'bad-signature', fpr || keyId ? signer : undefined);
    case 'X':
      throw notTrusted(`commit ${short(revision)} has a signature by key ${signer} that has expired`, 'expired', signer);
    case 'Y':
      throw notTrusted(`commit ${short(revision)} is signed by key ${signer}, which has expired`, 'expired', signer);
    case 'R':
      throw notTrusted(`commit ${short(revision)} is signed by key ${signer}, which has been revoked`, 'revoked', signer);
    default:
      throw notTrusted(`the signature of commit ${short(revision)} cannot be checked (git says '${status.slice(0, 10)}')`, 'unchecked');
  }
}

