// Where the CLI finds its server and token: --server/--token (ZV_SERVER/ZV_TOKEN), then what
// `zerverless login` kept in the user's config dir (0600), then — for a server on this host — the
// admin token the server wrote to <data-dir>/admin-token, so the README's first steps need no login.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ADMIN_TOKEN_FILE } from '../auth/bootstrap.js';
import { fromConfigFile } from '../server/config.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8000';

interface LoginFile {
  current?: string;
  servers?: Record<string, { token?: string }>;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'zerverless');
}

const loginPath = (env: NodeJS.ProcessEnv = process.env): string => join(configDir(env), 'login.json');
const normalise = (server: string): string => server.replace(/\/+$/, '');

async function readLogin(env: NodeJS.ProcessEnv): Promise<LoginFile> {
  try {
    const data = JSON.parse(await readFile(loginPath(env), 'utf8')) as unknown;
    return data !== null && typeof data === 'object' ? (data as LoginFile) : {};
  } catch {
    return {};
  }
}

/** Keeps the token for `server` and makes it the current server; the file is 0600 in a 0700 dir. */
export async function saveLogin(server: string, token: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const data = await readLogin(env);
  const key = normalise(server);
  data.current = key;
  data.servers = { ...(data.servers ?? {}), [key]: { token } };
  const file = loginPath(env);
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return file;
}

/** The data dir a server started from this folder would use: ZV_DATA_DIR, zerverless.config.yaml, ./.zerverless. */
async function localDataDir(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.ZV_DATA_DIR) return resolve(env.ZV_DATA_DIR);
  try {
    const fromFile = fromConfigFile(await readFile('zerverless.config.yaml', 'utf8'))['data-dir'];
    if (typeof fromFile === 'string' && fromFile) return resolve(fromFile);
  } catch {
    // no or unreadable config file: the default
  }
  return resolve('.zerverless');
}

function isLocal(server: string): boolean {
  try {
    const host = new URL(server).hostname;
    return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host);
  } catch {
    return false;
  }
}

export interface Endpoint {
  server: string;
  token: string | undefined;
}

/** Resolves the server and token for a client command (see the header for the order). */
export async function resolveEndpoint(o: { server?: string; token?: string; dataDir?: string }, env: NodeJS.ProcessEnv = process.env): Promise<Endpoint> {
  const login = await readLogin(env);
  const server = normalise(o.server ?? env.ZV_SERVER ?? login.current ?? DEFAULT_SERVER);
  const token = o.token ?? env.ZV_TOKEN ?? login.servers?.[server]?.token;
  if (token) return { server, token };
  if (o.dataDir !== undefined || isLocal(server)) {
    const dir = o.dataDir !== undefined ? resolve(o.dataDir) : await localDataDir(env);
    try {
      const t = (await readFile(join(dir, ADMIN_TOKEN_FILE), 'utf8')).trim();
      if (t) return { server, token: t };
    } catch {
      // no admin token file here: the call goes without a token and the server says 401
    }
  }
  return { server, token: undefined };
}
