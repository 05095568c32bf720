// Server settings from three layers (PRODUCT.md §2): flags win over ZV_* environment variables,
// which win over zerverless.config.yaml in the working directory, which wins over the defaults.
import { parse as parseYaml } from 'yaml';
import { ZvError } from '../errors/registry.js';
import { parseDuration } from '../core/names.js';
import { DEFAULT_MAX_GIT_PROCESSES } from '../git-cli/limit.js';

export interface BootstrapRepo {
  url: string;
  branch: string;
  appsDir: string;
  namespace: string;
  name: string;
}

export interface ServeConfig {
  host: string;
  port: number;
  dataDir: string;
  pollIntervalMs: number;
  /** How often drift is repaired (--drift-interval, default 1m); 0: never (`0` or `off`). */
  driftIntervalMs: number;
  allowFileRepos: boolean;
  maxBodyBytes: number;
  /** Largest response of a Lua, JS or Python function (--max-response; 500 FUNCTION_RESPONSE_TOO_LARGE over it). */
  maxResponseBytes: number;
  logLevel: string;
  repo: BootstrapRepo | null;
  example: boolean;
  /** /metrics without a token (--public-metrics). */
  publicMetrics: boolean;
  /** Browser origins allowed to call the API (--cors-origin, comma-separated). */
  corsOrigins: string[];
  /** File holding the admin token (--admin-token-file). */
  adminTokenFile: string | null;
  /** The admin token itself: only from the ZV_ADMIN_TOKEN environment variable, never a flag or file setting. */
  adminToken: string | null;
  /** Lua, JS and Python functions are unloaded after this long without a call (--function-idle, default 5m); 0: never. */
  functionIdleMs: number;
  /** Git processes running at once (--max-git-processes, default 4); more wait for a slot. */
  maxGitProcesses: number;
  /** Syncs running at once across applications (--max-syncs, default 4); more wait, shown as `syncing`. */
  maxSyncs: number;
  /** Deployed revisions kept per application for rollback (--revisions, default 20). */
  revisions: number;
  /** Python worker processes at most per function (--python-workers, default 4); absent: the default. */
  pythonWorkers?: number;
  /** Python worker processes at most in all (--python-max-workers, default 4 per core, at least 8); absent: the default. */
  pythonMaxWorkers?: number;
  /**
   * The server's webhook secret (--webhook-secret or ZV_WEBHOOK_SECRET; better --webhook-secret-file,
   * which keeps it out of argv and the environment); null: none (webhooks need an application's own).
   */
  webhookSecret: string | null;
  /** File holding the webhook secret (--webhook-secret-file), read at start. */
  webhookSecretFile: string | null;
  /** URLs every application's notifications are POSTed to (--notify, repeatable; comma-separated in ZV_NOTIFY and the config file). */
  notifyUrls?: string[];
  /** Signs notifications that have no secret of their own (--notify-secret, ZV_NOTIFY_SECRET); null: unsigned. */
  notifySecret?: string | null;
  /** Backoff of background retries (default 10 s doubling to 10 min); not a flag, for embedding and tests. */
  retry?: { baseMs: number; maxMs: number };
}

/** Raw setting names as written on the command line (without `--`). */
export const SETTINGS = [
  'host', 'port', 'data-dir', 'poll-interval', 'allow-file-repos', 'max-body', 'max-response', 'log-level', 'repo', 'branch', 'apps-dir', 'namespace', 'name', 'example',
  'public-metrics', 'cors-origin', 'admin-token-file', 'drift-interval', 'function-idle', 'python-workers', 'python-max-workers',
  'notify', 'notify-secret',
  'max-git-processes', 'max-syncs', 'webhook-secret', 'webhook-secret-file',
  'revisions',
] as const;
export type SettingName = (typeof SETTINGS)[number];
export type RawSettings = Partial<Record<SettingName, string | boolean | number>>;

export const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
export const envName = (s: SettingName): string => `ZV_${s.toUpperCase().replaceAll('-', '_')}`;

export function fromEnv(env: NodeJS.ProcessEnv): RawSettings {
  const out: RawSettings = {};
  for (const s of SETTINGS) {
    const v = env[envName(s)];
    if (v !== undefined && v !== '') out[s] = v;
  }
  return out;
}

/** Reads the YAML config file text; keys may be kebab-case (`data-dir`) or camelCase (`dataDir`). */
export function fromConfigFile(text: string, file = 'zerverless.config.yaml'): RawSettings {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ZvError('CONFIG_INVALID', `${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ZvError('CONFIG_INVALID', `${file}: must be a map of settings`);
  const out: RawSettings = {};
  const known = new Map<string, SettingName>();
  for (const s of SETTINGS) {
    known.set(s, s);
    known.set(camel(s), s);
  }
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const s = known.get(k);
    if (!s) throw new ZvError('CONFIG_INVALID', `${file}: unknown setting '${k}' (known: ${SETTINGS.join(', ')})`);
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new ZvError('CONFIG_INVALID', `${file}: ${k}: must be a string, number or boolean`);
    out[s] = v;
  }
  return out;
}

function parseBool(v: string | boolean | number, name: string): boolean {
  if (typeof v === 'boolean') return v;
  const s = String(v).toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  throw new ZvError('CONFIG_INVALID', `${name}: '${v}' is not a boolean`);
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3 };

export function parseSize(v: string | number): number | null {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) return null;
  const n = Math.floor(Number(m[1]) * unit);
  return n > 0 ? n : null;
}

/** Syncs at once when nothing is configured (the Reconciler's DEFAULT_MAX_SYNCS). */
const DEFAULT_MAX_SYNCS = 4;

/** A whole number of slots, 1 to 1024 (as a number or as text). */
function parseSlots(v: string | boolean | number, name: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new ZvError('CONFIG_INVALID', `${name}: '${String(v)}' is not a whole number from 1 to 1024`);
  return n;
}

function repoName(url: string): string {
  const base = url.replace(/\/+$/, '').split(/[/:]/).pop() ?? 'app';
  const name = base.replace(/\.git$/, '').toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return name.slice(0, 63) || 'app';
}

/** `scheme://host[:port]` exactly as a browser sends it in Origin. */
function parseOrigins(raw: string): string[] {
  const out: string[] = [];
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    let u: URL;
    try {
      u = new URL(part);
    } catch {
      throw new ZvError('CONFIG_INVALID', `cors-origin: '${part}' is not an origin like https://console.example.com`);
    }
    if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.origin !== part.replace(/\/$/, '')) {
      throw new ZvError('CONFIG_INVALID', `cors-origin: '${part}' is not an origin (scheme://host[:port], no path), e.g. https://console.example.com`);
    }
    out.push(u.origin);
  }
  return out;
}

/** --webhook-secret or --webhook-secret-file (not both); the file is read at start. */
function webhookSecretSettings(secret: string | boolean | number | undefined, file: string | boolean | number | undefined): { webhookSecret: string | null; webhookSecretFile: string | null } {
  const s = secret === undefined ? null : typeof secret === 'string' ? secret.trim() : null;
  const f = file === undefined ? null : typeof file === 'string' && file.trim() !== '' ? file.trim() : null;
  if (secret !== undefined && !s) throw new ZvError('CONFIG_INVALID', 'webhook-secret: must be a non-empty string');
  if (file !== undefined && !f) throw new ZvError('CONFIG_INVALID', 'webhook-secret-file: must be a file path');
  if (s && f) throw new ZvError('CONFIG_INVALID', 'webhook-secret and webhook-secret-file: give one of them, not both');
  return { webhookSecret: s, webhookSecretFile: f };
}

/** --notify: http(s) URLs, comma-separated (the flag may be given several times). */
function parseNotifyUrls(raw: string | boolean | number | undefined): string[] {
  if (raw === undefined || raw === false || raw === '') return [];
  const out: string[] = [];
  for (const part of String(raw).split(',').map((s) => s.trim()).filter(Boolean)) {
    let u: URL;
    try {
      u = new URL(part);
    } catch {
      throw new ZvError('CONFIG_INVALID', `notify: '${part}' is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ZvError('CONFIG_INVALID', `notify: '${part}' must be an http or https URL`);
    if (!out.includes(part)) out.push(part);
  }
  if (out.length > 20) throw new ZvError('CONFIG_INVALID', 'notify: at most 20 URLs');
  return out;
}

/**
 * Merges the layers (later arguments lose) and checks every value, naming the setting at fault.
 * `secrets` holds what only the environment may give (ZV_ADMIN_TOKEN).
 */
export function resolveServeConfig(flags: RawSettings, env: RawSettings, file: RawSettings, secrets: { adminToken?: string } = {}): ServeConfig {
  const get = (s: SettingName): string | boolean | number | undefined => flags[s] ?? env[s] ?? file[s];
  const str = (s: SettingName, def: string): string => String(get(s) ?? def);

  const portRaw = get('port') ?? 8000;
  const port = Number(portRaw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ZvError('CONFIG_INVALID', `port: '${portRaw}' is not a port number`);
  const pollRaw = get('poll-interval') ?? '5m';
  const pollIntervalMs = parseDuration(typeof pollRaw === 'boolean' ? '' : pollRaw);
  if (pollIntervalMs === null || pollIntervalMs < 100) throw new ZvError('CONFIG_INVALID', `poll-interval: '${pollRaw}' is not a duration like 500ms, 30s, 5m, 1h (at least 100ms)`);
  const driftRaw = get('drift-interval') ?? '1m';
  const driftOff = driftRaw === false || driftRaw === 0 || ['0', 'off'].includes(String(driftRaw).trim().toLowerCase());
  const driftIntervalMs = driftOff ? 0 : parseDuration(typeof driftRaw === 'boolean' ? '' : driftRaw);
  if (driftIntervalMs === null || (!driftOff && driftIntervalMs < 100)) {
    throw new ZvError('CONFIG_INVALID', `drift-interval: '${driftRaw}' is not a duration like 30s, 1m, 1h (at least 100ms), or 0 / off`);
  }
  const idleRaw = get('function-idle') ?? '5m';
  const idleOff = idleRaw === false || idleRaw === 0 || ['0', 'off', 'never'].includes(String(idleRaw).trim().toLowerCase());
  const functionIdleMs = idleOff ? 0 : parseDuration(typeof idleRaw === 'boolean' ? '' : idleRaw);
  if (functionIdleMs === null || (!idleOff && functionIdleMs < 100)) {
    throw new ZvError('CONFIG_INVALID', `function-idle: '${idleRaw}' is not a duration like 30s, 5m, 1h (at least 100ms), or 0 / off (never unload)`);
  }
  const bodyRaw = get('max-body') ?? 10 * 1024 * 1024;
  const maxBodyBytes = parseSize(typeof bodyRaw === 'boolean' ? '' : bodyRaw);
  if (maxBodyBytes === null) throw new ZvError('CONFIG_INVALID', `max-body: '${bodyRaw}' is not a size like 10MiB or 1048576`);
  const responseRaw = get('max-response') ?? 10 * 1024 * 1024;
  const maxResponseBytes = parseSize(typeof responseRaw === 'boolean' ? '' : responseRaw);
  if (maxResponseBytes === null) throw new ZvError('CONFIG_INVALID', `max-response: '${responseRaw}' is not a size like 10MiB or 1048576`);

  const url = get('repo');
  let repo: BootstrapRepo | null = null;
  if (url !== undefined && url !== false && url !== '') {
    const u = String(url);
    repo = {
      url: u,
      branch: str('branch', 'main'),
      appsDir: str('apps-dir', 'apps'),
      namespace: str('namespace', 'default'),
      name: str('name', repoName(u)),
    };
  }
  return {
    host: str('host', '127.0.0.1'),
    port,
    dataDir: str('data-dir', './.zerverless'),
    pollIntervalMs,
    driftIntervalMs,
    functionIdleMs,
    allowFileRepos: parseBool(get('allow-file-repos') ?? false, 'allow-file-repos'),
    maxBodyBytes,
    maxResponseBytes,
    maxGitProcesses: parseSlots(get('max-git-processes') ?? DEFAULT_MAX_GIT_PROCESSES, 'max-git-processes'),
    maxSyncs: parseSlots(get('max-syncs') ?? DEFAULT_MAX_SYNCS, 'max-syncs'),
    revisions: parseSlots(get('revisions') ?? 20, 'revisions'),
    ...(get('python-workers') === undefined ? {} : { pythonWorkers: parseSlots(get('python-workers')!, 'python-workers') }),
    ...(get('python-max-workers') === undefined ? {} : { pythonMaxWorkers: parseSlots(get('python-max-workers')!, 'python-max-workers') }),
    logLevel: str('log-level', 'info'),
    repo,
    example: parseBool(get('example') ?? false, 'example'),
    publicMetrics: parseBool(get('public-metrics') ?? false, 'public-metrics'),
    corsOrigins: parseOrigins(String(get('cors-origin') ?? '')),
    adminTokenFile: get('admin-token-file') === undefined ? null : str('admin-token-file', ''),
    adminToken: secrets.adminToken ? secrets.adminToken.trim() : null,
    notifyUrls: parseNotifyUrls(get('notify')),
    notifySecret: typeof get('notify-secret') === 'string' && String(get('notify-secret')).trim() !== '' ? String(get('notify-secret')).trim() : null,
    ...webhookSecretSettings(get('webhook-secret'), get('webhook-secret-file')),
  };
}
