// The server's master key: 32 bytes that seal credentials at rest (AES-256-GCM). It comes from
// ZV_MASTER_KEY (base64 or hex) or from <data-dir>/master.key (mode 0600, created on first start).
// A sealed value is `v1:` + base64(iv ‖ tag ‖ ciphertext); the additional data (e.g. the
// credential's namespace and name) is authenticated, so a value copied to another row does not open.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError } from '../errors/registry.js';
import { readPrivateFile } from './files.js';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = 'v1:';
export const MASTER_KEY_FILE = 'master.key';

/** Parses 32 bytes given as 64 hex digits or base64 (padded or not, standard or URL alphabet). */
export function parseMasterKey(text: string): Buffer | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{42,43}={0,2}$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === KEY_BYTES) return b;
  }
  return null;
}

export class MasterKey {
  readonly #key: Buffer;
  readonly #macKey: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new ZvError('CONFIG_INVALID', `the master key must be ${KEY_BYTES} bytes`);
    this.#key = Buffer.from(key);
    // A separate key for fingerprints, so a fingerprint never relates to the encryption key's use.
    this.#macKey = createHmac('sha256', this.#key).update('zerverless fingerprint key v1').digest();
  }

  /** Encrypts `plaintext`; `aad` is bound to the result and must be given again to open it. */
  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** Decrypts a value made by seal() with the same `aad`; throws CONFIG_INVALID when it does not open. */
  open(sealed: string, aad: string): string {
    const fail = (why: string): never => {
      throw new ZvError('CONFIG_INVALID', `a stored secret cannot be decrypted: ${why}`);
    };
    if (!sealed.startsWith(PREFIX)) fail('unknown format');
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    if (raw.length < IV_BYTES + TAG_BYTES) fail('too short');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return fail('it was sealed with another master key, or for another record, or it was altered');
    }
  }

  /** `sha256:` + 16 hex of a keyed hash: tells two secrets apart without allowing offline guessing. */
  fingerprint(secret: string): string {
    return 'sha256:' + createHmac('sha256', this.#macKey).update(secret, 'utf8').digest('hex').slice(0, 16);
  }
}

/**
 * The master key from `env.ZV_MASTER_KEY`, or from `<dataDir>/master.key`, created (0600) when it
 * does not exist. A key file readable by others is tightened to 0600.
 */
export async function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<MasterKey> {
  const fromEnv = env.ZV_MASTER_KEY;
  if (fromEnv !== undefined && fromEnv !== '') {
    const key = parseMasterKey(fromEnv);
    if (!key) throw new ZvError('CONFIG_INVALID', 'ZV_MASTER_KEY must be 32 bytes written as 64 hex digits or base64');
    return new MasterKey(key);
  }
  const file = join(dataDir, MASTER_KEY_FILE);
  try {
    const fh = await open(file, 'wx', 0o600);
    try {
      const key = randomBytes(KEY_BYTES);
      await fh.writeFile(key.toString('base64') + '\n');
      await fh.sync();
      return new MasterKey(key);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ZvError('CONFIG_INVALID', `cannot create ${file}: ${(e as Error).message}`);
    }
  }
  const text = await readPrivateFile(file);
  const key = parseMasterKey(text);
  if (!key) throw new ZvError('CONFIG_INVALID', `${file} does not hold a 32-byte key (base64 or 64 hex digits)`);
  return new MasterKey(key);
}
