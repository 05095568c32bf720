// The server's age keyring: the identity in `<data-dir>/age.key` (age-keygen's format, mode 0600,
// created on first start), the recipient users encrypt to, decryption of `envFrom` files (age or
// SOPS) into env pairs, and a keyed digest of values for hashes and plans.
//
// Every failure is a ZvError SECRET_DECRYPT_FAILED whose message names the file and says why,
// never a value. The key file may hold several identities (one per line, as age-keygen appends
// them): all are tried when decrypting, the first one is the recipient shown to users.
import { createHmac, randomBytes } from 'node:crypto';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ZvError } from '../errors/registry.js';
import { readPrivateFile } from './files.js';
import { MAX_SECRET_FILE_BYTES, type SecretEnv, type SecretsKeyring } from '../core/secrets.js';
import { AgeError, decrypt as ageDecrypt, generateIdentity, identityFileText, parseIdentityFile, recipientOf } from './age.js';
import { decryptSops, SopsError } from './sops.js';
import { pairsOfMap, pairsOfText, parseDotenv, SecretFormatError, sniffSecretFile, toSecretEnv } from './keyring-formats.js';

export const AGE_KEY_FILE = 'age.key';

const fail = (file: string, why: string): ZvError => new ZvError('SECRET_DECRYPT_FAILED', `${file}: ${why}`);

export class AgeKeyring implements SecretsKeyring {
  readonly #identities: string[];
  readonly #digestKey: Buffer;

  private constructor(identities: string[], readonly recipient: string) {
    this.#identities = identities;
    // A key of its own for digests, derived from the identity: a digest stored at rest tells two
    // values apart but cannot be checked against guesses without the key file.
    this.#digestKey = createHmac('sha256', identities[0]!).update('zerverless secrets digest v1').digest();
  }

  /** A keyring from the text of an age key file (one or more `AGE-SECRET-KEY-1…` lines). */
  static async fromText(text: string, where = 'the age key'): Promise<AgeKeyring> {
    let ids: string[];
    try {
      ids = parseIdentityFile(text);
    } catch (e) {
      throw new ZvError('CONFIG_INVALID', `${where} ${e instanceof Error ? e.message : String(e)}`);
    }
    return new AgeKeyring(ids, await recipientOf(ids[0]!));
  }

  /** `<dataDir>/age.key`, created with a new X25519 identity (mode 0600) when missing; a looser mode is tightened. */
  static async load(dataDir: string): Promise<AgeKeyring> {
    const file = join(dataDir, AGE_KEY_FILE);
    if (!(await stat(file).then(() => true, () => false))) {
      // Written whole to a private temp file, then linked into place: a crash never leaves an
      // empty key file, and of two servers starting at once the first link wins.
      const tmp = join(dataDir, `.${AGE_KEY_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
      try {
        const fh = await open(tmp, 'wx', 0o600);
        try {
          await fh.writeFile(await identityFileText(await generateIdentity()));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await link(tmp, file).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
      } catch (e) {
        throw new ZvError('CONFIG_INVALID', `cannot create ${file}: ${(e as Error).message}`);
      } finally {
        await unlink(tmp).catch(() => undefined);
      }
    }
    const text = await readPrivateFile(file);
    return AgeKeyring.fromText(text, file);
  }

  /** Reads an existing key file without creating one (the CLI on the server host). */
  static async read(dataDir: string): Promise<AgeKeyring> {
    const file = join(dataDir, AGE_KEY_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      throw new ZvError('CONFIG_INVALID', missing ? `${file} does not exist: start the server once with this --data-dir` : `cannot read ${file}: ${(e as Error).message}`);
    }
    return AgeKeyring.fromText(text, file);
  }

  digest(name: string, value: string): string {
    return createHmac('sha256', this.#digestKey).update(name, 'utf8').update('\0').update(value, 'utf8').digest('hex').slice(0, 32);
  }

  async decryptEnv(file: string, bytes: Uint8Array): Promise<SecretEnv> {
    if (bytes.length > MAX_SECRET_FILE_BYTES) throw fail(file, `is ${bytes.length} bytes, over the limit of ${MAX_SECRET_FILE_BYTES}`);
    const kind = sniffSecretFile(file, bytes);
    if (!kind) throw fail(file, 'is not encrypted: neither an age file nor a SOPS file (encrypt it with `zerverless secrets encrypt` or `sops --encrypt --age`)');
    try {
      if (kind.kind === 'age') {
        const plain = Buffer.from(await ageDecrypt(bytes, this.#identities));
        const text = plain.toString('utf8');
        if (Buffer.from(text, 'utf8').compare(plain) !== 0) throw new SecretFormatError('its decrypted content is not UTF-8 text');
        return toSecretEnv(kind.inner === 'dotenv' ? parseDotenv(text) : pairsOfText(text, kind.inner));
      }
      const text = Buffer.from(bytes).toString('utf8');
      const tree = await decryptSops(text, kind.format, async (list) => {
        for (const { enc } of list) {
          try {
            return await ageDecrypt(Buffer.from(enc, 'utf8'), this.#identities);
          } catch {
            // encrypted to another recipient: try the next one
          }
        }
        return null;
      });
      return toSecretEnv(pairsOfMap(tree));
    } catch (e) {
      if (e instanceof AgeError || e instanceof SopsError || e instanceof SecretFormatError) {
        const what = kind.kind === 'age' ? 'age file' : `SOPS ${kind.format} file`;
        throw new ZvError('SECRET_DECRYPT_FAILED', `${file} (${what}): ${e.message}`);
      }
      throw e;
    }
  }
}
