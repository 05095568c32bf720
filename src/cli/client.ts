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

  /**
   * GETs `/api{path}` as newline-delimited JSON, calling `onLine` with each non-empty line as it
   * arrives (an empty line is a heartbeat); resolves when the server ends the answer or `signal`
   * aborts. Rejects with ApiError when the answer is not 200.
   */
  async stream(path: string, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> {
    const url = `${this.server.replace(/\/+$/, '')}/api${path}`;
    const headers: Record<string, string> = { accept: 'application/x-ndjson' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal });
    } catch (e) {
      if (signal?.aborted) return;
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      throw new ZvError('SERVER_UNREACHABLE', `cannot reach ${this.server}${cause ? ` (${cause})` : ''}: is the server running? (--server URL)`);
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      let err: { code?: string; message?: string } | undefined;
      try {
        err = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      } catch { /* not JSON */ }
      throw new ApiError(res.status, err?.code ?? 'HTTP_' + res.status, err?.message ?? `GET ${url} answered ${res.status}`);
    }
    const decoder = new TextDecoder();
    let rest = '';
    try {
      for await (const chunk of res.body) {
        rest += decoder.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, i);
          rest = rest.slice(i + 1);
          if (line !== '') onLine(line);
        }
      }
    } catch (e) {
      if (signal?.aborted) return;
      throw e;
    }
    if (rest !== '') onLine(rest);
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
