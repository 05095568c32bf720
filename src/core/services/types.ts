// The services side (PRODUCT.md §8, the bc_gitops model): one spec per `apps/<name>/` folder, a
// plan of service actions, and the runtime interface that deploys Node services (or, embedded,
// anything a custom runtime runs). Pure data.

export type ServiceSource =
  | { type: 'npm'; /** Package name (default: the spec name). */ package?: string }
  | { type: 'git'; url: string; /** Branch, tag or commit. */ ref: string }
  | { type: 'release'; url: string; sha256: string };

export interface HealthSpec {
  type: 'http' | 'tcp' | 'custom';
  /** Default: the service's PORT. */
  port?: number;
  /** http: the path that must answer 2xx (default `/`). */
  path?: string;
  /** custom: a command run with `sh -c`; exit 0 is healthy. */
  command?: string;
  /** Milliseconds between checks (default 30000). */
  interval: number;
  /** Milliseconds before a check fails (default 5000). */
  timeout: number;
}

export interface ServiceSpec {
  name: string;
  version: string;
  source: ServiceSource;
  /** Environment for the process; keys upper-cased, values strings. */
  env: Record<string, string>;
  health: HealthSpec | null;
  dependsOn: string[];
  /** The gateway proxies `/{namespace}{route}` to the healthy process. */
  route: string | null;
  /** A port the spec pins (then upgrades fall back to stop → start); null: one is assigned. */
  port: number | null;
  /** The spec file, relative to the repository: `apps/web/app.config`. */
  file: string;
}

export type ServiceAction = 'deploy' | 'upgrade' | 'reconfigure' | 'apply' | 'remove' | 'unchanged';

export interface ServiceChange {
  name: string;
  action: ServiceAction;
  fromVersion?: string;
  toVersion?: string;
  /** What differs, e.g. ['version'], ['env.POOL_SIZE'], ['health'], ['depends_on']. */
  changes?: string[];
}

export type ServiceStatusValue = 'starting' | 'running' | 'stopped' | 'crashed' | 'crash-loop' | 'failed';
export type ServiceHealth = 'healthy' | 'unhealthy' | 'unknown';

export interface ServiceState {
  name: string;
  version: string;
  status: ServiceStatusValue;
  health: ServiceHealth;
  /** Where the current process listens (loopback). */
  port?: number;
  pid?: number;
  restarts: number;
  message?: string;
}

/** The five-method runtime interface of PRODUCT.md §8. */
export interface ServiceRuntime {
  deploy(spec: ServiceSpec): Promise<void>;
  remove(name: string): Promise<void>;
  upgrade(spec: ServiceSpec, oldVersion: string): Promise<void>;
  reconfigure(spec: ServiceSpec): Promise<void>;
  getCurrentState(): Promise<ServiceState[]>;
}
