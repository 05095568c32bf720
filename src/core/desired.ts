// Domain model: the parsed manifest, the desired state built from one commit, and what is deployed.
// Pure data; adapters fill it (sources/tree reads files) and persist it (store).

export type FunctionRuntimeKind = 'lua' | 'python' | 'js' | 'docker';
export type CodeLanguage = 'javascript' | 'typescript';

/** One function as written in zerverless.yaml (after validation, before its code is read). */
export interface FunctionDecl {
  path: string;
  runtime: FunctionRuntimeKind;
  /** For runtime js: typescript when the manifest says ts/typescript or codeFile ends in .ts/.mts/.cts. */
  language?: CodeLanguage;
  code?: string;
  /** 1-based line in zerverless.yaml where inline `code` starts. */
  codeLine?: number;
  codeFile?: string;
  dockerfile?: string;
  context?: string;
  timeoutMs: number;
  memoryMb: number;
  env: Record<string, string>;
  /** Secrets files (age, or SOPS with age recipients) whose pairs join the env; normalised paths, relative to the manifest's folder. */
  envFrom?: string[];
  port?: number;
  /** Docker only: Linux capabilities to keep (all others are dropped), e.g. `NET_BIND_SERVICE`. */
  capabilities?: string[];
  /** Where the function is declared, for messages. */
  line: number;
}

export interface Manifest {
  apiVersion: string;
  kind: 'Application';
  metadata: { name: string; namespace?: string };
  spec: {
    source?: { repoURL?: string; branch?: string };
    functions: FunctionDecl[];
    static?: { dir: string; line: number };
  };
}

/** A problem found in a file: `file:line:col: message`. */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  /** Dotted field path, e.g. `spec.functions[1].codeFile`. */
  field?: string;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.field ? `${d.field}: ` : ''}${d.message}`;
}

/** A function ready to load: its code read from the commit. */
export interface DesiredFunction {
  path: string;
  runtime: FunctionRuntimeKind;
  language?: CodeLanguage;
  code: string;
  /** File the code came from (`zerverless.yaml` for inline code). */
  filename: string;
  lineOffset?: number;
  timeoutMs: number;
  memoryMb: number;
  /** The explicit `env` of the manifest only: never a secret value (see `secrets`). */
  env: Record<string, string>;
  /**
   * The `envFrom` files as read from the commit: their ciphertext (decrypted only when the function
   * is loaded, so no secret value is ever stored) and a keyed digest of each value.
   */
  secrets?: SecretEnvFile[];
  port?: number;
  /** Docker only: what the image is built from (the image tag derives from it). */
  build?: DockerBuild;
  /** Content hash over everything above that changes behaviour; a different hash means update. */
  hash: string;
}

/** One `envFrom` file of a function, as stored in the deployed state. */
export interface SecretEnvFile {
  /** Its path relative to the repository root (POSIX), for messages: `secrets/prod.env.age`. */
  file: string;
  /** The file's bytes as committed (age or SOPS ciphertext), base64. */
  data: string;
  /** Per key, a keyed digest (HMAC with a key derived from the server's age identity) of its value. */
  digests: Record<string, string>;
}

/** The build inputs of a docker function, relative to the repository tree. */
export interface DockerBuild {
  /** POSIX path of the Dockerfile relative to the application folder. */
  dockerfile: string;
  /** POSIX path of the build context relative to the application folder. */
  context: string;
  /** sha256 over the context's files (after .dockerignore) and the Dockerfile: same inputs, same image. */
  contextHash: string;
  capabilities: string[];
}

export interface StaticFileEntry {
  /** Relative POSIX path inside the static dir, no leading slash: `index.html`, `css/site.css`. */
  path: string;
  /** sha256 hex of the content (the blob key). */
  hash: string;
  size: number;
  /**
   * The content id the source gave the file (git's blob id): a later commit's file with the same id
   * reuses `hash` and `size` unread. Absent for entries deployed before ids were kept.
   */
  oid?: string;
}

export interface StaticSite {
  dir: string;
  files: StaticFileEntry[];
  /**
   * The content ids of the site's folders (git tree ids) by path inside `dir` ('' for `dir`), as the
   * last read walked them: a later read skips a folder whose id is unchanged. Absent when the site
   * holds symlinks (every read walks it in full) or was deployed before ids were kept.
   */
  dirs?: Record<string, string>;
}

/** What one commit asks for. */
export interface DesiredState {
  commit: string;
  functions: DesiredFunction[];
  static: StaticSite | null;
  warnings: string[];
}

/** What is deployed and served for an application (the last good sync). */
export type DeployedState = DesiredState;

export type AppSyncStatus = 'pending' | 'syncing' | 'synced' | 'degraded' | 'error';
