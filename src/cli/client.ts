// A small client of the management API, used by `zerverless apps …`.
import { ZvError } from '../errors/registry.js';
import type { AppStatus } from '../core/status.js';
import type { SyncRecord } from '../store/types.js';
import type { PlanPreviewView } from './diff.js';

/** One entry of GET …/{name}/syncs. */
export type SyncEntry = Omit<SyncRecord, 'id' | 'appId'>;

/** One kept revision as `GET …/{name}/revisions` lists it. */
export interface RevisionEntry {
  revision: string;
  message: string | null;
  author: string | null;
  time: string | null;
  deployedAt: string;
  by: string;
  trigger: string;
  functions: number;
  staticFiles: number;
  services: number;
  current: boolean;
}

export interface WhoAmI {
  id: string;
  name: string;
  role: string;
  namespaces: string[] | null;
  services: boolean;
}

export interface TokenView extends WhoAmI {
  createdAt: string;
  expiresAt: string | null;
  createdBy: string | null;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export class ApiClient {
  constructor(private readonly server: string, private readonly token?: string) {}

  private call(method: string, path: string, body?: unknown): Promise<unknown> {
    return this.request(method, `/gitops/applications${path}`, body);
  }

  /** Calls `/api{path}`; rejects with ApiError carrying the answer's error code. */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = `${this.server.replace(/\/+$/, '')}/api${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      throw new ZvError('SERVER_UNREACHABLE', `cannot reach ${this.server}${cause ? ` (${cause})` : ''}: is the server running? (--server URL)`);
    }
    if (res.status === 204) return null;
    const text = await res.text();
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      throw new ApiError(res.status, 'BAD_RESPONSE', `${method} ${url}: ${res.status} with a body that is not JSON`);
    }
    if (!res.ok) {
      const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(res.status, err?.code ?? 'HTTP_' + res.status, err?.message ?? `${method} ${url} answered ${res.status}`);
    }
    return data;
  }

  private static q(params: Record<string, string | number | boolean | undefined>): string {
    const sp = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) sp.set(k, String(v));
    const s = sp.toString();
    return s ? `?${s}` : '';
  }

  list(q: { namespace?: string; limit?: number; offset?: number }): Promise<{ applications: AppStatus[]; total: number }> {
    return this.call('GET', `/${ApiClient.q(q)}`) as Promise<{ applications: AppStatus[]; total: number }>;
  }
  get(name: string, namespace?: string): Promise<AppStatus> {
    return this.call('GET', `/${encodeURIComponent(name)}${ApiClient.q({ namespace })}`) as Promise<AppStatus>;
  }
  add(body: { name: string; namespace: string; source: { repoURL: string; branch?: string; path?: string; paths?: string[] }; notify?: { url: string; events?: string[]; format?: 'json' | 'slack' }[] }): Promise<AppStatus> {
    return this.call('POST', '/', body) as Promise<AppStatus>;
  }
  sync(name: string, namespace?: string, async = false): Promise<AppStatus> {
    return this.call('POST', `/${encodeURIComponent(name)}/sync${ApiClient.q({ namespace, async: async || undefined })}`) as Promise<AppStatus>;
  }
  history(name: string, namespace?: string, limit?: number): Promise<{ syncs: SyncEntry[] }> {
    return this.call('GET', `/${encodeURIComponent(name)}/syncs${ApiClient.q({ namespace, limit })}`) as Promise<{ syncs: SyncEntry[] }>;
  }
  logs(name: string, service: string, namespace?: string, tail?: number): Promise<{ service: string; lines: string[] }> {
    return this.call('GET', `/${encodeURIComponent(name)}/services/${encodeURIComponent(service)}/logs${ApiClient.q({ namespace, tail })}`) as Promise<{ service: string; lines: string[] }>;
  }
  plan(name: string, namespace?: string, revision?: string): Promise<PlanPreviewView> {
    return this.call('GET', `/${encodeURIComponent(name)}/plan${ApiClient.q({ namespace, revision })}`) as Promise<PlanPreviewView>;
  }
  suspend(name: string, namespace?: string, reason?: string): Promise<AppStatus> {
    return this.call('POST', `/${encodeURIComponent(name)}/suspend${ApiClient.q({ namespace })}`, reason === undefined ? {} : { reason }) as Promise<AppStatus>;
  }
  resume(name: string, namespace?: string): Promise<AppStatus> {
    return this.call('POST', `/${encodeURIComponent(name)}/resume${ApiClient.q({ namespace })}`) as Promise<AppStatus>;
  }
  revisions(name: string, namespace?: string): Promise<{ revisions: RevisionEntry[] }> {
    return this.call('GET', `/${encodeURIComponent(name)}/revisions${ApiClient.q({ namespace })}`) as Promise<{ revisions: RevisionEntry[] }>;
  }
  rollback(name: string, revision: string, namespace?: string): Promise<AppStatus> {
    return this.call('POST', `/${encodeURIComponent(name)}/rollback${ApiClient.q({ namespace })}`, { revision }) as Promise<AppStatus>;
  }
  setSource(name: string, source: { repoURL?: string; branch?: string; path?: string; paths?: string[] }, namespace?: string): Promise<AppStatus> {
    return this.call('PATCH', `/${encodeURIComponent(name)}${ApiClient.q({ namespace })}`, { source }) as Promise<AppStatus>;
  }
  async delete(name: string, namespace?: string): Promise<void> {
    await this.call('DELETE', `/${encodeURIComponent(name)}${ApiClient.q({ namespace })}`);
  }
  whoami(): Promise<WhoAmI> {
    return this.request('GET', '/whoami') as Promise<WhoAmI>;
  }
  createToken(body: { name: string; role: string; namespaces?: string[]; services?: boolean; expiresIn?: string }): Promise<TokenView & { token: string }> {
    return this.request('POST', '/tokens', body) as Promise<TokenView & { token: string }>;
  }
  listTokens(): Promise<{ tokens: TokenView[] }> {
    return this.request('GET', '/tokens') as Promise<{ tokens: TokenView[] }>;
  }
  async revokeToken(id: string): Promise<void> {
    await this.request('DELETE', `/tokens/${encodeURIComponent(id)}`);
  }
}
