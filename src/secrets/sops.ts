// A decoder of SOPS files (https://getsops.io) whose data key is encrypted to age recipients, in
// the three forms Flux users keep: YAML, JSON and dotenv. Written from the SOPS format as the
// reference implementation defines it:
//
// - every encrypted leaf is `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:str|int|float|bool|bytes]`,
//   AES-256-GCM under one 32-byte data key, with the leaf's key path joined by `:` plus a final `:`
//   (`stringData:password:`) as additional data; list items add nothing to the path; an empty
//   string is stored as is;
// - which leaves are encrypted follows the metadata: `unencrypted_suffix`, `encrypted_suffix`,
//   `unencrypted_regex`, `encrypted_regex` (tested on every key of the path);
// - the data key is encrypted to each recipient of `sops.age[]` (`enc`, an armored age file);
// - `sops.mac` is the upper-case hex SHA-512 over the plaintext of every leaf in document order
//   (only the encrypted ones, after a fixed prefix, with `mac_only_encrypted`), itself encrypted
//   with the data key and `sops.lastmodified` as additional data. A file whose MAC does not match
//   is refused, as sops refuses it.
//
// Not supported (refused with a message): Shamir key groups, comment-based encryption rules,
// several YAML documents, YAML aliases. Sizes are bounded by MAX_NODES, MAX_DEPTH and MAX_RECIPIENTS.
import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { isAlias, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import type { Node as YamlNode } from 'yaml';

export type SopsFormat = 'yaml' | 'json' | 'dotenv';

/** A decoded value: ordered maps keep the file's key order. */
export type SopsValue = string | bigint | number | boolean | Uint8Array | null | SopsValue[] | SopsMap;
export interface SopsMap {
  readonly kind: 'map';
  readonly entries: [string, SopsValue][];
}

export class SopsError extends Error {
  override readonly name = 'SopsError';
}

/** Unwraps the data key from the armored age files of `sops.age[].enc`; null when none is for this server. */
export type DataKeyUnwrapper = (recipients: { recipient: string; enc: string }[]) => Promise<Uint8Array | null>;

export const MAX_NODES = 10_000;
export const MAX_DEPTH = 32;
/** Each age recipient costs a key agreement to try: a file may list at most this many. */
export const MAX_RECIPIENTS = 64;

/** sha256("sops"): the MAC's first bytes when only encrypted values are authenticated. */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from('8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69', 'hex');

const ENC_RE = /^ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:([a-z0-9]+)\]$/;

const isMapValue = (v: SopsValue): v is SopsMap => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

interface Metadata {
  age: { recipient: string; enc: string }[];
  lastModified: string;
  mac: string;
  unencryptedSuffix: string;
  encryptedSuffix: string;
  unencryptedRegex: RegExp | null;
  encryptedRegex: RegExp | null;
  macOnlyEncrypted: boolean;
}

// ---------------------------------------------------------------------------------------------
// Reading the three forms into an ordered tree

class Budget {
  private nodes = 0;
  count(depth: number): void {
    if (++this.nodes > MAX_NODES) throw new SopsError(`has more than ${MAX_NODES} values`);
    if (depth > MAX_DEPTH) throw new SopsError(`is nested deeper than ${MAX_DEPTH} levels`);
  }
}

function fromYamlNode(node: YamlNode | null, budget: Budget, depth: number): SopsValue {
  budget.count(depth);
  if (node === null) return null;
  if (isAlias(node)) throw new SopsError('uses a YAML alias (*name); write the value out');
  if (isMap(node)) {
    const entries: [string, SopsValue][] = [];
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? pair.key.value : pair.key;
      if (typeof k !== 'string') throw new SopsError('has a key that is not a string');
      entries.push([k, fromYamlNode(pair.value as YamlNode | null, budget, depth + 1)]);
    }
    return { kind: 'map', entries };
  }
  if (isSeq(node)) return node.items.map((n) => fromYamlNode(n as YamlNode | null, budget, depth + 1));
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || v === undefined) return null;
    if (typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return v;
    if (v instanceof Uint8Array) return v;
    return String(v);
  }
  throw new SopsError('has a YAML node of an unknown kind');
}

function parseTree(text: string, format: 'yaml' | 'json'): SopsMap {
  // JSON is read with the YAML 1.2 parser, which keeps key order and tells integers from floats
  // (JSON.parse would reorder integer-like keys, which the MAC covers).
  const docs = parseAllDocuments(text, { intAsBigInt: true, uniqueKeys: true, prettyErrors: false, version: '1.2' });
  if (!Array.isArray(docs)) throw new SopsError(`is not valid ${format.toUpperCase()}`);
  if (docs.length !== 1) throw new SopsError(docs.length === 0 ? 'is empty' : 'holds several YAML documents; keep one per file');
  const doc = docs[0]!;
  if (doc.errors.length) throw new SopsError(`is not valid ${format.toUpperCase()}: ${doc.errors[0]!.message.split('\n')[0]}`);
  const root = fromYamlNode(doc.contents as YamlNode | null, new Budget(), 0);
  if (!isMapValue(root)) throw new SopsError('is not a mapping at the top');
  return root;
}

/** sops' dotenv form: `KEY=VALUE` lines (`\n` in a value stands for a newline), `#` comments. */
function parseDotenvLines(text: string): SopsMap {
  const entries: [string, SopsValue][] = [];
  const budget = new Budget();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new SopsError('has a line that is neither KEY=VALUE nor a # comment');
    budget.count(1);
    entries.push([line.slice(0, eq), line.slice(eq + 1).replace(/\\n/g, '\n')]);
  }
  return { kind: 'map', entries };
}

// ---------------------------------------------------------------------------------------------
// Metadata

const get = (m: SopsMap, key: string): SopsValue | undefined => m.entries.find(([k]) => k === key)?.[1];
const strOf = (v: SopsValue | undefined): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

/** Go's regexp syntax is close to JS's for what sops users write; a leading `(?i)` becomes the i flag. */
function goRegex(pattern: string, what: string): RegExp | null {
  if (pattern === '') return null;
  let p = pattern;
  let flags = '';
  const m = /^\(\?([imsU]+)\)/.exec(p);
  if (m) {
    p = p.slice(m[0].length);
    for (const f of m[1]!) if (f === 'i' || f === 'm' || f === 's') flags += f;
  }
  try {
    return new RegExp(p, flags);
  } catch {
    throw new SopsError(`has a ${what} this server cannot read: ${pattern}`);
  }
}

function readMetadata(raw: SopsValue | undefined): Metadata {
  if (raw === undefined || !isMapValue(raw)) throw new SopsError('has no sops metadata');
  const keyGroups = get(raw, 'key_groups');
  if (Array.isArray(keyGroups) && keyGroups.length > 1) throw new SopsError('splits its data key over several key groups (Shamir), which this server does not support');
  for (const k of ['unencrypted_comment_regex', 'encrypted_comment_regex']) {
    if (strOf(get(raw, k)) !== '') throw new SopsError(`uses ${k}, which this server does not support`);
  }
  const age: { recipient: string; enc: string }[] = [];
  const collect = (list: SopsValue | undefined): void => {
    if (!Array.isArray(list)) return;
    for (const item of list) {
      if (!isMapValue(item)) continue;
      const enc = strOf(get(item, 'enc'));
      if (enc) age.push({ recipient: strOf(get(item, 'recipient')), enc });
    }
  };
  collect(get(raw, 'age'));
  if (Array.isArray(keyGroups)) for (const g of keyGroups) if (isMapValue(g)) collect(get(g, 'age'));
  if (age.length > MAX_RECIPIENTS) throw new SopsError(`lists more than ${MAX_RECIPIENTS} age recipients`);
  const macOnly = get(raw, 'mac_only_encrypted');
  return {
    age,
    lastModified: strOf(get(raw, 'lastmodified')),
    mac: strOf(get(raw, 'mac')),
    unencryptedSuffix: strOf(get(raw, 'unencrypted_suffix')),
    encryptedSuffix: strOf(get(raw, 'encrypted_suffix')),
    unencryptedRegex: goRegex(strOf(get(raw, 'unencrypted_regex')), 'unencrypted_regex'),
    encryptedRegex: goRegex(strOf(get(raw, 'encrypted_regex')), 'encrypted_regex'),
    macOnlyEncrypted: macOnly === true || macOnly === 'true',
  };
}

/** The dotenv form flattens the metadata: `sops_age__list_0__map_enc` is `sops.age[0].enc`. */
function unflattenDotenvMetadata(items: [string, string][]): SopsMap {
  const root: SopsMap = { kind: 'map', entries: [] };
  for (const [flatKey, value] of items) {
    const tokens: (string | number)[] = [];
    const re = /__(map|list)_/g;
    let last = 0;
    let kind: 'map' | 'list' = 'map';
    let m: RegExpExecArray | null;
    const push = (part: string): void => {
      if (kind === 'list') {
        if (!/^\d{1,4}$/.test(part)) throw new SopsError(`has a malformed metadata line: sops_${flatKey}`);
        tokens.push(Number(part));
      } else tokens.push(part);
    };
    while ((m = re.exec(flatKey)) !== null) {
      push(flatKey.slice(last, m.index));
      kind = m[1] as 'map' | 'list';
      last = re.lastIndex;
    }
    push(flatKey.slice(last));
    // Walk/create containers along the tokens.
    let node: SopsMap | SopsValue[] = root;
    tokens.forEach((t, i) => {
      const leaf = i === tokens.length - 1;
      const nextIsList = !leaf && typeof tokens[i + 1] === 'number';
      const make = (): SopsValue => (leaf ? value : nextIsList ? [] : { kind: 'map', entries: [] });
      if (typeof t === 'number') {
        const list = node as SopsValue[];
        if (t > list.length) throw new SopsError(`has a malformed metadata line: sops_${flatKey}`);
        if (list[t] === undefined) list[t] = make();
        node = list[t] as SopsMap | SopsValue[];
      } else {
        const map = node as SopsMap;
        let entry = map.entries.find(([k]) => k === t);
        if (!entry) map.entries.push((entry = [t, make()]));
        node = entry[1] as SopsMap | SopsValue[];
      }
    });
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// Values

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest digits that read back, never an exponent. */
export function formatGoFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  if (Object.is(f, -0)) return '-0';
  const s = String(f);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = '', expText] = m;
  const digits = int! + frac;
  const exp = Number(expText);
  if (exp >= 0) {
    const pointAt = 1 + exp;
    return sign + (digits.length <= pointAt ? digits + '0'.repeat(pointAt - digits.length) : `${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`);
  }
  return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
}

/** sops' ToBytes: what the MAC covers for one value. */
function macBytes(v: SopsValue): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (typeof v === 'bigint') return Buffer.from(v.toString(), 'utf8');
  if (typeof v === 'number') return Buffer.from(formatGoFloat(v), 'utf8');
  if (typeof v === 'boolean') return Buffer.from(v ? 'True' : 'False', 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v);
  throw new SopsError('has a value of a type sops cannot authenticate');
}

function b64(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new SopsError(`has an encrypted value whose ${what} is not base64`);
  return b;
}

/** Opens one `ENC[AES256_GCM,…]` value. Throws SopsError without echoing the value. */
function openValue(enc: string, key: Uint8Array, aad: string, where: string): SopsValue {
  const m = ENC_RE.exec(enc);
  if (!m) throw new SopsError(`${where}: is not a sops-encrypted value (ENC[AES256_GCM,…])`);
  const [, data, iv, tag, type] = m as unknown as [string, string, string, string, string];
  const ivBytes = b64(iv, 'iv');
  const tagBytes = b64(tag, 'tag');
  if (tagBytes.length !== 16 || ivBytes.length === 0) throw new SopsError(`${where}: has a malformed iv or tag`);
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: 16 });
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(tagBytes);
    plain = Buffer.concat([d.update(b64(data, 'data')), d.final()]);
  } catch (e) {
    if (e instanceof SopsError) throw e;
    throw new SopsError(`${where}: does not decrypt with the file's data key (altered, or moved to another key)`);
  }
  const text = plain.toString('utf8');
  switch (type) {
    case 'str':
      return text;
    case 'int':
    case 'int64':
      if (!/^[+-]?\d+$/.test(text)) throw new SopsError(`${where}: is marked int but is not an integer`);
      return BigInt(text);
    case 'float': {
      if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
      const f = Number(text);
      if (text.trim() === '' || (Number.isNaN(f) && !/^[+-]?nan$/i.test(text))) throw new SopsError(`${where}: is marked float but is not a number`);
      return f;
    }
    case 'bool':
      if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
      if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
      throw new SopsError(`${where}: is marked bool but is not true or false`);
    case 'bytes':
      return new Uint8Array(plain);
    default:
      throw new SopsError(`${where}: has an unknown value type "${type}"`);
  }
}

function shouldBeEncrypted(md: Metadata, path: string[]): boolean {
  let encrypted = true;
  if (md.unencryptedSuffix && path.some((p) => p.endsWith(md.unencryptedSuffix))) encrypted = false;
  if (md.encryptedSuffix) encrypted = path.some((p) => p.endsWith(md.encryptedSuffix));
  if (md.unencryptedRegex && path.some((p) => md.unencryptedRegex!.test(p))) encrypted = false;
  if (md.encryptedRegex) encrypted = path.some((p) => md.encryptedRegex!.test(p));
  return encrypted;
}

/** Decrypts every leaf in document order, feeding the MAC; returns the plaintext tree. */
function decryptTree(tree: SopsMap, md: Metadata, key: Uint8Array): { tree: SopsMap; mac: string } {
  const hash = createHash('sha512');
  if (md.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  const walk = (v: SopsValue, path: string[]): SopsValue => {
    if (v === null) return null; // sops neither decrypts nor authenticates null values
    if (Array.isArray(v)) return v.map((x) => walk(x, path));
    if (isMapValue(v)) return { kind: 'map', entries: v.entries.map(([k, x]) => [k, walk(x, [...path, k])] as [string, SopsValue]) };
    const encrypted = shouldBeEncrypted(md, path);
    let out: SopsValue = v;
    if (encrypted) {
      const where = path.join('.') || '(root)';
      if (typeof v !== 'string') throw new SopsError(`${where}: should be encrypted but is a plain ${typeof v}`);
      out = v === '' ? '' : openValue(v, key, `${path.join(':')}:`, where);
    }
    if (!md.macOnlyEncrypted || encrypted) hash.update(macBytes(out));
    return out;
  };
  const result = walk(tree, []) as SopsMap;
  return { tree: result, mac: hash.digest('hex').toUpperCase() };
}

/** Go's time.RFC3339 formatting of a parsed RFC 3339 time: no fractional seconds, `Z` for UTC. */
function rfc3339(s: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/i.exec(s.trim());
  if (!m) return s;
  const zone = m[2]!.toUpperCase() === 'Z' || m[2] === '+00:00' || m[2] === '-00:00' ? 'Z' : m[2]!;
  return `${m[1]!.toUpperCase()}${zone}`;
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** Whether `text` carries SOPS metadata in the given form (cheap; no decryption). */
export function looksLikeSops(text: string, format: SopsFormat): boolean {
  if (format === 'dotenv') return /^sops_mac=/m.test(text) || /^sops_version=/m.test(text);
  if (format === 'json') return /"sops"\s*:\s*\{/.test(text);
  return /^sops:\s*$/m.test(text) || /^sops:\s*\{/m.test(text);
}

/** The form of a SOPS file by its name (`.json`, `.yaml`/`.yml`, `.env`), else by its content. */
export function sopsFormatOf(name: string, text: string): SopsFormat {
  const lower = name.toLowerCase();
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return 'yaml';
  if (lower.endsWith('.env') || /(^|\/)\.env(\.|$)/.test(lower)) return 'dotenv';
  if (looksLikeSops(text, 'dotenv')) return 'dotenv';
  if (text.trimStart().startsWith('{')) return 'json';
  return 'yaml';
}

/**
 * Decrypts a SOPS file: unwraps the data key with `unwrap`, opens every encrypted value, checks
 * the MAC, and returns the plaintext tree without its `sops` metadata. Throws SopsError.
 */
export async function decryptSops(text: string, format: SopsFormat, unwrap: DataKeyUnwrapper): Promise<SopsMap> {
  let tree: SopsMap;
  let metaRaw: SopsValue | undefined;
  if (format === 'dotenv') {
    const all = parseDotenvLines(text);
    const meta: [string, string][] = [];
    const data: [string, SopsValue][] = [];
    for (const [k, v] of all.entries) {
      if (k.startsWith('sops_')) meta.push([k.slice(5), v as string]);
      else data.push([k, v]);
    }
    if (!meta.length) throw new SopsError('has no sops metadata (sops_… lines)');
    metaRaw = unflattenDotenvMetadata(meta);
    tree = { kind: 'map', entries: data };
  } else {
    const all = parseTree(text, format);
    metaRaw = get(all, 'sops');
    tree = { kind: 'map', entries: all.entries.filter(([k]) => k !== 'sops') };
  }
  const md = readMetadata(metaRaw);
  if (!md.age.length) throw new SopsError('has no age recipient (sops.age); this server decrypts age only');
  if (!md.mac) throw new SopsError('has no MAC (sops.mac)');
  const key = await unwrap(md.age);
  if (!key) {
    const list = md.age.map((a) => a.recipient).filter(Boolean).join(', ');
    throw new SopsError(`is encrypted to ${list || 'age recipients'}, none of which is this server's key`);
  }
  if (key.length !== 32) throw new SopsError('has a data key that is not 32 bytes');
  const { tree: plain, mac } = decryptTree(tree, md, key);
  let stored: SopsValue;
  try {
    stored = openValue(md.mac, key, rfc3339(md.lastModified), 'sops.mac');
  } catch {
    throw new SopsError('has a MAC that does not decrypt (sops.mac or sops.lastmodified altered)');
  }
  const a = Buffer.from(typeof stored === 'string' ? stored : '', 'utf8');
  const b = Buffer.from(mac, 'utf8');
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new SopsError('fails its MAC check: a value, a key or their order was altered');
  return plain;
}
