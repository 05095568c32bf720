// A thin wrapper over `age-encryption` (the age author's TypeScript implementation): X25519
// identities in the age-keygen file format, encryption to recipients (binary or ASCII-armored
// output) and decryption of either form. Files made here open with the `age` CLI and the reverse.
import * as age from 'age-encryption';

/** The first line of a binary age file (age-encryption.org/v1). */
const BINARY_MAGIC = 'age-encryption.org/v1\n';
const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';

/** `AGE-SECRET-KEY-1` + 58 bech32 characters (upper case, as age-keygen writes it). */
const IDENTITY_RE = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;
/** X25519 recipient: `age1` + 58 bech32 characters. Post-quantum (`age1pq1…`) recipients are longer. */
const RECIPIENT_RE = /^age1[02-9ac-hj-np-z]{58}$/;

/** At most this many recipient stanzas in a file's header. */
export const MAX_STANZAS = 64;

export class AgeError extends Error {
  override readonly name = 'AgeError';
}

/** A new X25519 identity (`AGE-SECRET-KEY-1…`): what age-keygen makes and Debian's age 1.1 reads. */
export function generateIdentity(): Promise<string> {
  return age.generateX25519Identity();
}

/** The public recipient (`age1…`) of an identity. */
export async function recipientOf(identity: string): Promise<string> {
  try {
    const r = await age.identityToRecipient(identity);
    if (typeof r !== 'string') throw new AgeError('not an age identity');
    return r;
  } catch (e) {
    throw new AgeError(`not a valid age identity: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function isIdentity(s: string): boolean {
  return IDENTITY_RE.test(s);
}

/** A plain X25519 recipient (`age1` + 58 characters); other recipient types are checked by age-encryption itself. */
export function isX25519Recipient(s: string): boolean {
  return RECIPIENT_RE.test(s);
}

/**
 * The identities of a key file in age-keygen's format: `#` comments, blank lines, one
 * `AGE-SECRET-KEY-1…` per line. Throws AgeError naming the line of anything else (the line's
 * content is never echoed: it may be a key).
 */
export function parseIdentityFile(text: string): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!IDENTITY_RE.test(line)) throw new AgeError(`line ${i + 1} is not an age identity (AGE-SECRET-KEY-1…)`);
    out.push(line);
  });
  if (!out.length) throw new AgeError('holds no age identity');
  return out;
}

/** The key file age-keygen would write for `identity`. */
export async function identityFileText(identity: string, created = new Date()): Promise<string> {
  const iso = created.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `# created: ${iso}\n# public key: ${await recipientOf(identity)}\n${identity}\n`;
}

/** Whether `bytes` look like an age file: binary (`age-encryption.org/v1`) or ASCII-armored. */
export function isAgeFile(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1');
  return head.startsWith(BINARY_MAGIC) || head.trimStart().startsWith(ARMOR_BEGIN);
}

/** Encrypts to every recipient; `armor` gives the PEM-like text form instead of binary. */
export async function encrypt(plaintext: Uint8Array | string, recipients: string[], opts: { armor?: boolean } = {}): Promise<Uint8Array> {
  if (!recipients.length) throw new AgeError('no recipient to encrypt to');
  const e = new age.Encrypter();
  for (const r of recipients) {
    try {
      e.addRecipient(r);
    } catch (err) {
      throw new AgeError(`"${r}" is not an age recipient: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const out = await e.encrypt(plaintext);
  return opts.armor ? new TextEncoder().encode(age.armor.encode(out)) : out;
}

/**
 * Decrypts an age file (binary or armored) with any of the identities. Throws AgeError when no
 * identity matches (encrypted to another recipient), the file is malformed, or its MAC or payload
 * does not verify.
 */
export async function decrypt(file: Uint8Array, identities: string[]): Promise<Uint8Array> {
  let raw = file;
  const head = Buffer.from(file.subarray(0, 64)).toString('latin1');
  if (!head.startsWith(BINARY_MAGIC) && head.trimStart().startsWith(ARMOR_BEGIN)) {
    try {
      raw = age.armor.decode(Buffer.from(file).toString('latin1'));
    } catch (e) {
      throw new AgeError(`the ASCII armor is malformed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // Each recipient stanza costs a key agreement to try: refuse headers listing too many.
  const text = Buffer.from(raw).toString('latin1');
  const end = text.indexOf('\n--- ');
  const stanzas = (end < 0 ? text : text.slice(0, end)).split('\n-> ').length - 1;
  if (stanzas > MAX_STANZAS) throw new AgeError(`lists more than ${MAX_STANZAS} recipients`);
  const d = new age.Decrypter();
  for (const id of identities) d.addIdentity(id);
  try {
    return await d.decrypt(raw);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/no identity matched/i.test(msg)) throw new AgeError('no identity of this server matched: the file is encrypted to another recipient');
    throw new AgeError(`it does not decrypt: ${msg}`);
  }
}
