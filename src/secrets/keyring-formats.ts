// What a secrets file is and how its plaintext becomes env pairs:
//
// - an age file (binary or armored) holds a dotenv text, or a JSON/YAML mapping when its name
//   without `.age` ends in .json/.yaml/.yml;
// - a SOPS file (YAML, JSON or dotenv with sops metadata) holds a flat mapping, or a Kubernetes
//   Secret (`kind: Secret` with `data` in base64 and/or `stringData`; stringData wins), as Flux
//   users keep them;
// - anything else is refused: a plaintext file in envFrom would put the secret in git.
//
// Keys that are not env names (`tls.crt`) are skipped and reported, as Kubernetes' envFrom does.
import { parse as parseYaml } from 'yaml';
import { isEnvName, MAX_SECRET_KEYS, type SecretEnv } from '../core/secrets.js';
import { isAgeFile } from './age.js';
import { formatGoFloat, looksLikeSops, sopsFormatOf, type SopsFormat, type SopsMap, type SopsValue } from './sops.js';

export class SecretFormatError extends Error {
  override readonly name = 'SecretFormatError';
}

export type SecretFileKind = { kind: 'age'; inner: 'dotenv' | 'json' | 'yaml' } | { kind: 'sops'; format: SopsFormat };

/** Tells an age file from a SOPS file by its bytes and name; null for anything else (plaintext). */
export function sniffSecretFile(name: string, bytes: Uint8Array): SecretFileKind | null {
  if (isAgeFile(bytes)) {
    const inner = name.toLowerCase().replace(/\.age$/, '');
    return { kind: 'age', inner: inner.endsWith('.json') ? 'json' : inner.endsWith('.yaml') || inner.endsWith('.yml') ? 'yaml' : 'dotenv' };
  }
  const text = Buffer.from(bytes.subarray(0, 1 << 20)).toString('utf8');
  const format = sopsFormatOf(name, text);
  if (looksLikeSops(text, format)) return { kind: 'sops', format };
  return null;
}

const unquoteDouble = (s: string): string =>
  s.replace(/\\(.)/gs, (_m, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c));

/**
 * A dotenv text: `KEY=value` lines, optional `export `, `#` comments (whole lines, or after a
 * space in an unquoted value), '…' literal, "…" with \n \r \t \" \\ escapes; quoted values may
 * span lines. A later duplicate wins. Malformed lines are errors naming the line number only.
 */
export function parseDotenv(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new SecretFormatError(`line ${lineNo} is not KEY=value`);
    const key = m[1]!;
    let rest = m[2]!;
    let value: string;
    const q = rest[0];
    if (q === '"' || q === "'") {
      // Find the closing quote, reading further lines when needed.
      let body = rest.slice(1);
      let end = -1;
      for (;;) {
        end = q === '"' ? closingDouble(body) : body.indexOf("'");
        if (end >= 0 || i + 1 >= lines.length) break;
        body += '\n' + lines[++i];
      }
      if (end < 0) throw new SecretFormatError(`line ${lineNo}: the quoted value is not closed`);
      const after = body.slice(end + 1).trim();
      if (after !== '' && !after.startsWith('#')) throw new SecretFormatError(`line ${lineNo}: text after the closing quote`);
      value = q === '"' ? unquoteDouble(body.slice(0, end)) : body.slice(0, end);
    } else {
      const hash = rest.search(/\s#/);
      if (hash >= 0) rest = rest.slice(0, hash);
      value = rest.trim();
    }
    out.push([key, value]);
  }
  return out;
}

function closingDouble(s: string): number {
  for (let j = 0; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '"') return j;
  }
  return -1;
}

function scalarText(v: SopsValue, key: string): string {
  if (v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return formatGoFloat(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  throw new SecretFormatError(`the value of ${key} is ${Array.isArray(v) ? 'a list' : 'a mapping'}; a secrets file holds KEY: value pairs`);
}

const mapEntries = (v: SopsValue | undefined): [string, SopsValue][] | null =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) ? (v as SopsMap).entries : null;

function decodeBase64(s: string, key: string): string {
  const t = s.replace(/\s+/g, '');
  const b = Buffer.from(t, 'base64');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || b.toString('base64').replace(/=+$/, '') !== t.replace(/=+$/, '')) {
    throw new SecretFormatError(`data.${key} is not base64`);
  }
  const text = b.toString('utf8');
  if (Buffer.from(text, 'utf8').compare(b) !== 0) throw new SecretFormatError(`data.${key} is not UTF-8 text`);
  return text;
}

/** Pairs of a decoded mapping: a Kubernetes Secret's data/stringData, or the mapping itself. */
export function pairsOfMap(root: SopsMap): [string, string][] {
  const get = (k: string): SopsValue | undefined => root.entries.find(([x]) => x === k)?.[1];
  const data = mapEntries(get('data'));
  const stringData = mapEntries(get('stringData'));
  if (get('kind') === 'Secret' && (data || stringData)) {
    const out: [string, string][] = [];
    for (const [k, v] of data ?? []) out.push([k, decodeBase64(scalarText(v, `data.${k}`), k)]);
    for (const [k, v] of stringData ?? []) out.push([k, scalarText(v, `stringData.${k}`)]);
    return out;
  }
  return root.entries.map(([k, v]) => [k, scalarText(v, k)]);
}

/** A plain (already decrypted) JSON or YAML mapping, from inside an age file. */
export function pairsOfText(text: string, format: 'json' | 'yaml'): [string, string][] {
  let data: unknown;
  try {
    data = format === 'json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 0 });
  } catch {
    throw new SecretFormatError(`its decrypted content is not valid ${format.toUpperCase()}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new SecretFormatError('its decrypted content is not a mapping');
  const toValue = (v: unknown): SopsValue => {
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v;
    if (Array.isArray(v)) return v.map(toValue);
    if (typeof v === 'object') return { kind: 'map', entries: Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, toValue(x)]) };
    return String(v);
  };
  return pairsOfMap(toValue(data) as SopsMap);
}

/** Env pairs → SecretEnv: later duplicates win, keys that are not env names are skipped, bounded. */
export function toSecretEnv(pairs: [string, string][]): SecretEnv {
  const env: Record<string, string> = {};
  const skipped: string[] = [];
  for (const [k, v] of pairs) {
    // __proto__ matches the pattern but cannot be an own key of a plain object: skipped too.
    if (!isEnvName(k) || k === '__proto__') {
      if (!skipped.includes(k)) skipped.push(k);
      continue;
    }
    env[k] = v;
  }
  if (Object.keys(env).length > MAX_SECRET_KEYS) throw new SecretFormatError(`holds more than ${MAX_SECRET_KEYS} keys`);
  return { env, skipped };
}
