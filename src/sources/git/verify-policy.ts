// The signed-commit policy of an application (`source.verify`, PRODUCT.md §10): its JSON schema,
// its check at the API edge (every key must parse; ssh keys through `ssh-keygen -l`, gpg keys
// through a throwaway keyring) and the fingerprints that stand for the keys in statuses, messages
// and logs. Keys are public, but only fingerprints are shown.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZvError } from '../../errors/registry.js';
import type { CommitVerification } from '../../core/commit-policy.js';

export const MAX_VERIFY_KEYS = 20;
const MAX_KEY_CHARS = 64 * 1024;
const TOOL_TIMEOUT_MS = 20_000;

/** The ajv schema of `source.verify` (used inside the registration body's schema). */
export const verifySchema = {
  type: 'object',
  required: ['type', 'keys'],
  additionalProperties: false,
  properties: {
    type: { enum: ['ssh', 'gpg'] },
    keys: { type: 'array', minItems: 1, maxItems: MAX_VERIFY_KEYS, items: { type: 'string', minLength: 1, maxLength: MAX_KEY_CHARS } },
  },
} as const;

/** What a status shows of the policy: the type and one fingerprint per trusted key. */
export interface VerifySummary {
  type: 'ssh' | 'gpg';
  keys: string[];
}

// ---------------------------------------------------------------------------------------------
// SSH public keys

export interface SshPublicKey {
  type: string;
  /** The base64 key blob as written in the key line. */
  blob: string;
  /** `SHA256:<base64 without padding>`, as ssh-keygen -l and git print it. */
  fingerprint: string;
}

const SSH_KEY_TYPES = new Set([
  'ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/**
 * Parses one public key line `<type> <base64> [comment]`. The blob must decode and start with its
 * own type name (which catches truncated or mixed-up keys); ed25519 blobs must hold 32 key bytes.
 * Returns a reason when it does not parse.
 */
export function parseSshPublicKey(line: string): SshPublicKey | string {
  const text = line.trim();
  if (/PRIVATE KEY/.test(text)) return 'is a private key; give the public key (the .pub file)';
  if (/[\r\n]/.test(text)) return 'must be one public key line (`ssh-ed25519 AAAA… comment`)';
  const [type = '', blob = ''] = text.split(/\s+/);
  if (!SSH_KEY_TYPES.has(type)) return `key type '${type.slice(0, 40)}' is not one of ${[...SSH_KEY_TYPES].join(', ')}`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob) || blob.length % 4 !== 0) return 'the key is not valid base64';
  const bytes = Buffer.from(blob, 'base64');
  const readString = (at: number): { value: Buffer; next: number } | null => {
    if (at + 4 > bytes.length) return null;
    const len = bytes.readUInt32BE(at);
    if (at + 4 + len > bytes.length) return null;
    return { value: bytes.subarray(at + 4, at + 4 + len), next: at + 4 + len };
  };
  const name = readString(0);
  if (!name || name.value.toString('latin1') !== type) return `the key blob does not hold a ${type} key`;
  if (type === 'ssh-ed25519') {
    const pub = readString(name.next);
    if (!pub || pub.value.length !== 32 || pub.next !== bytes.length) return 'the ssh-ed25519 key blob is malformed';
  }
  const fingerprint = `SHA256:${createHash('sha256').update(bytes).digest('base64').replace(/=+$/, '')}`;
  return { type, blob, fingerprint };
}

// ---------------------------------------------------------------------------------------------
// OpenPGP public keys (fingerprints of the primary keys, read from the armour without gpg)

function dearmor(text: string): Buffer[] {
  const blocks: Buffer[] = [];
  const re = /-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n([\s\S]*?)-----END PGP PUBLIC KEY BLOCK-----/g;
  for (const m of text.matchAll(re)) {
    const lines = (m[1] ?? '').split(/\r?\n/);
    // Armour headers (`Comment: …`) end at the first blank line; a block may have none.
    const blank = lines.findIndex((l) => l.trim() === '');
    const hasHeaders = blank > 0 && lines.slice(0, blank).every((l) => /^[A-Za-z-]+: /.test(l));
    const body = (hasHeaders ? lines.slice(blank + 1) : lines).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('='));
    blocks.push(Buffer.from(body.join(''), 'base64'));
  }
  return blocks;
}

/** Fingerprints (upper-case hex) of the primary keys in ASCII-armoured OpenPGP public key blocks. */
export function pgpPrimaryFingerprints(armoured: string): string[] {
  const out: string[] = [];
  for (const buf of dearmor(armoured)) {
    let i = 0;
    while (i < buf.length) {
      const b = buf[i] as number;
      if ((b & 0x80) === 0) break;
      let tag: number;
      let hdr: number;
      let len: number;
      if (b & 0x40) {
        tag = b & 0x3f;
        const o = buf[i + 1];
        if (o === undefined) break;
        if (o < 192) { len = o; hdr = 2; }
        else if (o < 224) { len = ((o - 192) << 8) + (buf[i + 2] ?? 0) + 192; hdr = 3; }
        else if (o === 255 && i + 6 <= buf.length) { len = buf.readUInt32BE(i + 2); hdr = 6; }
        else break; // partial lengths never occur in key packets
      } else {
        tag = (b >> 2) & 0x0f;
        const lt = b & 3;
        if (lt === 0) { len = buf[i + 1] ?? 0; hdr = 2; }
        else if (lt === 1 && i + 3 <= buf.length) { len = buf.readUInt16BE(i + 1); hdr = 3; }
        else if (lt === 2 && i + 5 <= buf.length) { len = buf.readUInt32BE(i + 1); hdr = 5; }
        else break;
      }
      const body = buf.subarray(i + hdr, i + hdr + len);
      if (body.length !== len) break;
      if (tag === 6) {
        const version = body[0];
        if (version === 4) {
          const head = Buffer.from([0x99, (len >> 8) & 0xff, len & 0xff]);
          out.push(createHash('sha1').update(head).update(body).digest('hex').toUpperCase());
        } else if (version === 5 || version === 6) {
          const head = Buffer.alloc(5);
          head[0] = version === 5 ? 0x9a : 0x9b;
          head.writeUInt32BE(len, 1);
          out.push(createHash('sha256').update(head).update(body).digest('hex').toUpperCase());
        }
      }
      i += hdr + len;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Summaries for statuses and messages

const summaries = new Map<string, VerifySummary>();

/** The policy as shown in a status: type and fingerprints (memoised; keys are immutable per app). */
export function summariseVerify(policy: CommitVerification): VerifySummary {
  const memo = `${policy.type}\u0000${policy.keys.join('\u0000')}`;
  const known = summaries.get(memo);
  if (known) return known;
  const keys: string[] = [];
  for (const k of policy.keys) {
    if (policy.type === 'ssh') {
      const p = parseSshPublicKey(k);
      keys.push(typeof p === 'string' ? 'unreadable key' : p.fingerprint);
    } else {
      const fprs = pgpPrimaryFingerprints(k);
      keys.push(...(fprs.length ? fprs : ['unreadable key']));
    }
  }
  const out: VerifySummary = { type: policy.type, keys };
  if (summaries.size > 1000) summaries.clear();
  summaries.set(memo, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The check at the API edge

interface ToolResult { code: number; stdout: string; stderr: string; missing: boolean }

function runTool(cmd: string, args: string[], input: string, env: NodeJS.ProcessEnv): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, timeout: TOOL_TIMEOUT_MS, maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      const missing = e?.code === 'ENOENT';
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr, missing });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

function invalid(field: string, why: string): ZvError {
  return new ZvError('VALIDATION_FAILED', `${field}: ${why}`);
}

/** Runs ssh-keygen -l on a key line: it must print a fingerprint equal to ours. */
async function checkSshKey(field: string, key: SshPublicKey, line: string): Promise<void> {
  const r = await runTool('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], `${line}\n`, { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' });
  if (r.missing) throw invalid(field, 'this server has no ssh-keygen, so it cannot check ssh signatures');
  if (r.code !== 0) throw invalid(field, 'ssh-keygen cannot read this public key');
  if (!r.stdout.includes(key.fingerprint)) throw invalid(field, 'ssh-keygen reads a different key from this line');
}

/** Lists the keys of an armoured block with gpg (show-only: a throwaway keyring, nothing imported). */
async function checkGpgKey(field: string, armoured: string, home: string): Promise<void> {
  if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(armoured)) throw invalid(field, 'is a private key; give the public key (gpg --armor --export KEYID)');
  if (!/-----BEGIN PGP PUBLIC KEY BLOCK-----/.test(armoured)) throw invalid(field, 'must be an ASCII-armoured public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)');
  const r = await runTool('gpg', ['--homedir', home, '--batch', '--no-autostart', '--no-tty', '--with-colons', '--import-options', 'show-only', '--import'],
    armoured, { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', GNUPGHOME: home });
  if (r.missing) throw invalid(field, 'this server has no gpg, so it cannot check gpg signatures');
  const records = r.stdout.split('\n').map((l) => l.split(':')[0]);
  if (records.includes('sec') || records.includes('ssb')) throw invalid(field, 'holds a private key; give the public key only');
  if (r.code !== 0 || !records.includes('pub')) throw invalid(field, 'gpg finds no public key in it');
  if (pgpPrimaryFingerprints(armoured).length === 0) throw invalid(field, 'the key packets cannot be read');
}

/**
 * Checks a `source.verify` that passed the schema and returns it normalised (trimmed keys; ssh key
 * lines as `type base64 comment`). Throws VALIDATION_FAILED naming the field at fault.
 */
export async function checkVerifyPolicy(policy: CommitVerification, field = 'source.verify'): Promise<CommitVerification> {
  if (policy.type !== 'ssh' && policy.type !== 'gpg') throw invalid(`${field}.type`, "must be 'ssh' or 'gpg'");
  if (!Array.isArray(policy.keys) || policy.keys.length < 1 || policy.keys.length > MAX_VERIFY_KEYS) {
    throw invalid(`${field}.keys`, `must hold 1 to ${MAX_VERIFY_KEYS} keys`);
  }
  const keys: string[] = [];
  if (policy.type === 'ssh') {
    for (const [i, raw] of policy.keys.entries()) {
      const f = `${field}.keys[${i}]`;
      const parsed = parseSshPublicKey(raw);
      if (typeof parsed === 'string') throw invalid(f, parsed);
      const line = raw.trim().split(/\s+/).join(' ');
      await checkSshKey(f, parsed, line);
      keys.push(line);
    }
    return { type: 'ssh', keys };
  }
  const home = await mkdtemp(join(tmpdir(), 'zv-gpg-check-'));
  try {
    await writeFile(join(home, 'gpg.conf'), 'no-autostart\n', { mode: 0o600 });
    for (const [i, raw] of policy.keys.entries()) {
      const armoured = raw.trim();
      await checkGpgKey(`${field}.keys[${i}]`, armoured, home);
      keys.push(armoured + '\n');
    }
  } finally {
    await rm(home, { recursive: true, force: true });
  }
  return { type: 'gpg', keys };
}
