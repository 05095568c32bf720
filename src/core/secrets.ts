// Secrets for functions (`envFrom`): the port the adapters implement (an age keyring), the
// limits, and the pure rules: how secret files and explicit `env` merge, and how two versions of a
// function's env are compared without ever holding a secret value (keyed digests).
import type { DesiredFunction } from './desired.js';

/** What a secrets file holds once decrypted, plus the keys skipped because they are not env names. */
export interface SecretEnv {
  env: Record<string, string>;
  skipped: string[];
}

/**
 * Decrypts secrets files (age, or SOPS with age recipients) with the server's key. `decryptEnv`
 * rejects with SECRET_DECRYPT_FAILED naming `file`; `digest` is a keyed hash of one value (so
 * hashes stored at rest do not allow guessing values offline).
 */
export interface SecretsKeyring {
  /** The server's public key, `age1…`. */
  readonly recipient: string;
  decryptEnv(file: string, bytes: Uint8Array): Promise<SecretEnv>;
  digest(name: string, value: string): string;
}

/** At most this many `envFrom` files per function. */
export const MAX_ENV_FROM = 16;
/** A secrets file larger than this is refused before decryption. */
export const MAX_SECRET_FILE_BYTES = 256 * 1024;
/** At most this many keys per secrets file. */
export const MAX_SECRET_KEYS = 500;

export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
const ENV_NAME = new RegExp(ENV_NAME_PATTERN);
export const isEnvName = (s: string): boolean => ENV_NAME.test(s);

/**
 * The env a function runs with: the `envFrom` files in order (a later file wins over an earlier
 * one), then the explicit `env`, which wins over every file — as Kubernetes' envFrom/env do.
 */
export function mergeEnv(explicit: Record<string, string>, files: Record<string, string>[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of files) Object.assign(out, f);
  return Object.assign(out, explicit);
}

/**
 * Per env key of a function, what identifies its value without revealing a secret one: the value
 * itself for explicit `env` (already plain in the manifest), the keyed digest for a secret.
 */
export function envFingerprints(fn: Pick<DesiredFunction, 'env' | 'secrets'>): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of fn.secrets ?? []) for (const [k, d] of Object.entries(s.digests)) out.set(k, `secret:${d}`);
  for (const [k, v] of Object.entries(fn.env)) out.set(k, `plain:${v}`);
  return out;
}

/** `env.X added|removed|changed` lines between two versions of a function (key names only, sorted). */
export function envChanges(before: Pick<DesiredFunction, 'env' | 'secrets'>, after: Pick<DesiredFunction, 'env' | 'secrets'>): string[] {
  const a = envFingerprints(before);
  const b = envFingerprints(after);
  const out: string[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(k);
    const y = b.get(k);
    if (x === undefined) out.push(`env.${k} added`);
    else if (y === undefined) out.push(`env.${k} removed`);
    else if (x !== y) out.push(`env.${k} changed`);
  }
  return out;
}

/** Secret values shorter than this are not redacted from output (they would hide common words and digits). */
export const MIN_REDACTED_SECRET = 4;

/**
 * `line` with every occurrence of a secret value replaced by `[redacted]` (longest values first, so
 * a value that contains another is hidden whole). Used for functions' output (kept logs, server log).
 */
export function redactSecrets(line: string, secrets: readonly string[]): string {
  if (secrets.length === 0) return line;
  let out = line;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length >= MIN_REDACTED_SECRET && out.includes(s)) out = out.split(s).join('[redacted]');
  }
  return out;
}
