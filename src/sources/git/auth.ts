// Credentials for one remote git run, without the secret ever reaching argv, a URL or a log line.
//
// HTTPS: GIT_ASKPASS names a fixed script (<data>/git/askpass) that prints the user name or the
// password from files named by environment variables; the files live in a fresh 0700 directory
// under <data>/git/tmp and are removed as soon as git has ended. Other credential helpers are
// switched off for the run (config through GIT_CONFIG_COUNT, not argv). A credential's caCert is
// added to the trusted CAs (GIT_SSL_CAINFO or the system bundle, plus the PEM).
// SSH: GIT_SSH_COMMAND runs ssh with only our files: the private key (0600), a known_hosts file
// (the credential's, or empty with accept-new: the first key seen is pinned and handed back), no
// agent, no user config, batch mode.
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError, isZvError } from '../../errors/registry.js';
import { redactUrl } from '../../git-cli/url.js';

/** A resolved credential for one repository URL, secret included; lives only for one git run. */
export interface GitAuth {
  /** Identity of the credential (stable while it exists): clones, artifacts and head answers are kept apart per identity. */
  id: string;
  /** The credential's name and namespace, for messages. */
  name: string;
  namespace: string;
  type: 'ssh' | 'https';
  username?: string | null;
  password?: string;
  privateKey?: string;
  /** known_hosts lines the server's key must match; null = none yet (pin the first key seen). */
  knownHosts?: string | null;
  /** PEM of a CA trusted for this server, besides the system's. */
  caCert?: string | null;
  /** Receives the known_hosts line(s) pinned on first use. */
  pin?: (knownHosts: string) => Promise<void>;
}

export type CredentialResolver = (ref: { repoURL: string; namespace: string }) => Promise<GitAuth | null>;

// Answers only prompts for the credential's own server: after a redirect to another host git asks
// again, naming that host, and gets nothing.
const ASKPASS = `#!/bin/sh
# Written by zerverless: answers git's credential prompts from files named in the environment.
case "$1" in
  "Username for '$ZV_ASKPASS_ORIGIN': ") exec cat -- "$ZV_ASKPASS_USERNAME_FILE" ;;
  "Password for '$ZV_ASKPASS_ORIGIN': "|"Password for '$ZV_ASKPASS_SCHEME"*"@$ZV_ASKPASS_HOST': ") exec cat -- "$ZV_ASKPASS_PASSWORD_FILE" ;;
esac
exit 1
`;

/** `https://host[:port]` of a URL as written (git names the server that way in its prompts). */
function origin(url: string): { scheme: string; host: string } {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)/.exec(url);
  const authority = m?.[2] ?? '';
  return { scheme: m?.[1] ?? '', host: authority.slice(authority.lastIndexOf('@') + 1) };
}

// Where a system CA bundle usually is (Debian/Ubuntu, RHEL/Fedora, Alpine/openSUSE, macOS).
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/ca-bundle.pem', '/etc/ssl/cert.pem'];
const STALE_TEMP_MS = 10 * 60_000;

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** One git run's credential files and environment; `close()` removes the files. */
export interface AuthSession {
  env: Record<string, string>;
  /** After the run: pins the host key seen (SSH trust on first use), then removes the files. */
  close(): Promise<void>;
}

export class GitAuthFiles {
  private readonly tmpRoot: string;
  private readonly askpass: string;
  private ready: Promise<void> | undefined;

  /** `root` is <data>/git. */
  constructor(root: string) {
    this.tmpRoot = join(root, 'tmp');
    this.askpass = join(root, 'askpass');
  }

  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.tmpRoot, { recursive: true, mode: 0o700 });
      await chmod(this.tmpRoot, 0o700);
      // Leftovers of runs killed with the server (normally each run removes its own at once).
      for (const name of await readdir(this.tmpRoot)) {
        const p = join(this.tmpRoot, name);
        const s = await stat(p).catch(() => null);
        if (s && Date.now() - s.mtimeMs > STALE_TEMP_MS) await rm(p, { recursive: true, force: true });
      }
      const tmp = `${this.askpass}.tmp-${process.pid}`;
      await writeFile(tmp, ASKPASS, { mode: 0o700 });
      await chmod(tmp, 0o700);
      await rename(tmp, this.askpass);
    })().catch((e: unknown) => {
      this.ready = undefined;
      throw new ZvError('GIT_ERROR', `cannot prepare the git credential files: ${e instanceof Error ? e.message : String(e)}`);
    });
    return this.ready;
  }

  /** The files and environment for one run of git against `url` with `auth` (null: no credential, nothing to do). */
  async open(auth: GitAuth | null, url: string): Promise<AuthSession> {
    if (!auth) return { env: {}, close: async () => undefined };
    await this.prepare();
    const dir = await mkdtemp(join(this.tmpRoot, 'auth-'));
    const file = async (name: string, content: string): Promise<string> => {
      const p = join(dir, name);
      await writeFile(p, content, { mode: 0o600, flag: 'wx' });
      return p;
    };
    const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
    try {
      if (auth.type === 'https') return await this.https(auth, url, file, remove);
      return await this.ssh(auth, file, remove);
    } catch (e) {
      await remove();
      throw e;
    }
  }

  private async https(auth: GitAuth, url: string, file: (n: string, c: string) => Promise<string>, remove: () => Promise<void>): Promise<AuthSession> {
    const { scheme, host } = origin(url);
    const env: Record<string, string> = {
      GIT_ASKPASS: this.askpass,
      ZV_ASKPASS_ORIGIN: `${scheme}${host}`, ZV_ASKPASS_SCHEME: scheme, ZV_ASKPASS_HOST: host,
      ZV_ASKPASS_USERNAME_FILE: await file('username', `${auth.username ?? ''}\n`),
      ZV_ASKPASS_PASSWORD_FILE: await file('password', `${auth.password ?? ''}\n`),
      // Only our answer: no credential helper of the host's git config is asked or told.
      GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'credential.helper', GIT_CONFIG_VALUE_0: '',
    };
    if (auth.caCert) {
      const base = await this.baseBundle();
      env.GIT_SSL_CAINFO = await file('ca.pem', `${base}\n${auth.caCert.trim()}\n`);
    }
    return { env, close: remove };
  }

  /** The CAs git trusts without us: GIT_SSL_CAINFO of the server's environment, else the system bundle. */
  private async baseBundle(): Promise<string> {
    const candidates = [process.env.GIT_SSL_CAINFO, ...SYSTEM_BUNDLES].filter((p): p is string => !!p);
    for (const p of candidates) {
      try {
        return (await readFile(p, 'utf8')).trim();
      } catch {
        // try the next one
      }
    }
    return '';
  }

  private async ssh(auth: GitAuth, file: (n: string, c: string) => Promise<string>, remove: () => Promise<void>): Promise<AuthSession> {
    const key = await file('id', `${(auth.privateKey ?? '').trim()}\n`);
    const given = auth.knownHosts?.trim() ? `${auth.knownHosts.trim()}\n` : '';
    const known = await file('known_hosts', given);
    const ssh = [
      'ssh', '-F', '/dev/null', '-i', shellQuote(key), '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none',
      '-o', 'BatchMode=yes', '-o', 'PasswordAuthentication=no', '-o', 'KbdInteractiveAuthentication=no',
      // ssh splits this option's value at spaces itself, hence the inner double quotes.
      '-o', shellQuote(`UserKnownHostsFile="${known}"`), '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'HashKnownHosts=no',
      '-o', 'UpdateHostKeys=no', '-o', `StrictHostKeyChecking=${given ? 'yes' : 'accept-new'}`,
    ].join(' ');
    const env = { GIT_SSH_COMMAND: ssh, GIT_SSH_VARIANT: 'ssh' };
    return {
      env,
      close: async () => {
        try {
          if (!given && auth.pin) {
            const seen = (await readFile(known, 'utf8').catch(() => '')).trim();
            // A failure to save only means the next run pins again.
            if (seen) await auth.pin(seen).catch(() => undefined);
          }
        } finally {
          await remove();
        }
      },
    };
  }
}

const HOST_KEY_CHANGED = /REMOTE HOST IDENTIFICATION HAS CHANGED|host key for .* has changed/i;
const HOST_KEY_UNVERIFIED = /Host key verification failed|No \S+ host key is known for/i;
const AUTH_REFUSED = /Permission denied \(|Authentication failed for|could not read (?:Username|Password)|returned error: 40[13]\b|Access denied|Invalid username or password/i;

/**
 * Turns git's failure into GIT_AUTH_FAILED or HOST_KEY_CHANGED when that is what happened, naming
 * the repository (redacted) and the credential, never a secret. Other errors pass unchanged.
 */
export function classifyAuthError(e: unknown, auth: GitAuth | null, url: string): unknown {
  if (!isZvError(e, 'GIT_ERROR')) return e;
  const shown = redactUrl(url);
  const detail = e.message;
  if (HOST_KEY_CHANGED.test(detail) || (auth?.type === 'ssh' && HOST_KEY_UNVERIFIED.test(detail))) {
    const against = auth?.type === 'ssh'
      ? `the ${auth.knownHosts ? 'knownHosts' : 'host key pinned on first use'} of credential '${auth.name}' (namespace '${auth.namespace}'); if the server's key really changed, create the credential again with the new knownHosts`
      : "the server's own known_hosts";
    // ssh's banner names temp files; the fingerprint it was sent is what the user needs.
    const sent = /The fingerprint for the (\S+) key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/=]+?)\.?\s/.exec(detail);
    const got = sent ? `the server sent ${sent[1]} key ${sent[2]}` : (/No \S+ host key is known for[^\n]*/.exec(detail)?.[0] ?? 'Host key verification failed');
    return new ZvError('HOST_KEY_CHANGED', `the SSH host key of ${shown} does not match ${against}: ${got}`, undefined, { cause: e });
  }
  if (AUTH_REFUSED.test(detail)) {
    const msg = auth
      ? `${shown} refused credential '${auth.name}' (namespace '${auth.namespace}'): ${detail}`
      : `${shown} asks for credentials and no credential matches it (POST /api/credentials, or auth in the registration): ${detail}`;
    return new ZvError('GIT_AUTH_FAILED', msg, undefined, { cause: e });
  }
  if (/server certificate verification failed|SSL certificate problem/i.test(detail)) {
    return new ZvError('GIT_ERROR', `${detail} (a server with its own CA needs a credential with caCert, or GIT_SSL_CAINFO in the server's environment)`, undefined, { cause: e });
  }
  if (!auth && HOST_KEY_UNVERIFIED.test(detail)) {
    return new ZvError('GIT_AUTH_FAILED',
      `${shown}: no credential matches it and the server's own ssh setup does not know the host key; add a credential with sshPrivateKey (and knownHosts): ${detail}`,
      undefined, { cause: e });
  }
  return e;
}
