// The one registry of stable error codes: each code has an HTTP status, a default message, and
// for sync failures whether the commit is at fault (`fault: 'commit'`: not retried until it moves).
// Codes are never renamed or reused once released; docs/errors.md documents every one
// (a test checks that). Add new codes at the end of their group.

export const ERRORS = {
  // Request / API input
  BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  VALIDATION_FAILED: { status: 400, message: 'The request body is invalid' },
  INVALID_REPO_URL: { status: 400, message: 'The repository URL is not allowed' },
  INVALID_NAMESPACE: { status: 400, message: 'The namespace is not a valid DNS label or is reserved' },
  APP_EXISTS: { status: 409, message: 'An application with that name already exists in the namespace' },
  APP_NOT_FOUND: { status: 404, message: 'No such application' },
  APP_AMBIGUOUS: { status: 409, message: 'The name exists in several namespaces; pass ?namespace=' },
  /** Retired before it was ever answered: UNAUTHENTICATED replaced it. Never reuse. */
  UNAUTHORIZED: { status: 401, message: 'Missing or invalid token' },
  UNAUTHENTICATED: { status: 401, message: 'A valid API token is required' },
  FORBIDDEN: { status: 403, message: 'The token does not allow this', fault: 'commit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The body must be JSON (content-type: application/json)' },
  TOKEN_NOT_FOUND: { status: 404, message: 'No such token' },
  CREDENTIAL_EXISTS: { status: 409, message: 'A credential with that name already exists in the namespace' },
  CREDENTIAL_NOT_FOUND: { status: 404, message: 'No such credential' },
  WEBHOOK_UNAUTHORIZED: { status: 401, message: 'The webhook delivery is not signed with a configured webhook secret' },
  REVISION_NOT_FOUND: { status: 404, message: 'The application keeps no such revision' },
  TOO_MANY_STREAMS: { status: 429, message: 'Too many event streams are open' },
  REVISION_INCOMPLETE: { status: 409, message: 'A file of the kept revision is missing from the blob store and cannot be read from git' },

  // Gateway
  NOT_FOUND: { status: 404, message: 'Not found' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is over the limit' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested range cannot be served' },
  NOT_READY: { status: 503, message: 'The server is not ready yet' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request line and headers are over 16 KiB' },

  // Function invocation
  FUNCTION_ERROR: { status: 500, message: 'The function raised an error' },
  FUNCTION_TIMEOUT: { status: 504, message: 'The function did not answer within its timeout' },
  FUNCTION_MEMORY_LIMIT: { status: 500, message: 'The function went over its memory limit' },
  FUNCTION_UNAVAILABLE: { status: 503, message: 'The function cannot take requests right now' },
  FUNCTION_BAD_RESPONSE: { status: 500, message: 'The function returned a value that is not a response' },
  FUNCTION_RESPONSE_TOO_LARGE: { status: 500, message: 'The function\'s response is over the limit' },

  // Sync (reported in the application status; HTTP status used when a sync call fails)
  MANIFEST_NOT_FOUND: { status: 422, message: 'The repository has neither zerverless.yaml nor an apps folder', fault: 'commit' },
  MANIFEST_INVALID: { status: 422, message: 'The manifest is invalid', fault: 'commit' },
  NAMESPACE_MISMATCH: { status: 422, message: 'metadata.namespace differs from the registered namespace', fault: 'commit' },
  PATH_ESCAPE: { status: 422, message: 'A path in the manifest leaves the repository tree', fault: 'commit' },
  CODE_FILE_MISSING: { status: 422, message: 'A codeFile does not exist in the commit', fault: 'commit' },
  FUNCTION_COMPILE_ERROR: { status: 422, message: 'Function code failed to compile', fault: 'commit' },
  OWNERSHIP_CONFLICT: { status: 409, message: 'Another application in the namespace owns this resource' },
  RUNTIME_UNAVAILABLE: { status: 422, message: 'The runtime is not available on this server' },
  GIT_ERROR: { status: 502, message: 'A git operation failed' },
  GIT_TIMEOUT: { status: 504, message: 'A git operation took too long' },
  GIT_REF_NOT_FOUND: { status: 422, message: 'The branch does not exist in the repository' },
  GIT_AUTH_FAILED: { status: 502, message: 'The git server refused the credentials (or asked for some and none was given)' },
  HOST_KEY_CHANGED: { status: 502, message: 'The SSH host key of the git server does not match the pinned or given one' },
  COMMIT_NOT_TRUSTED: { status: 422, message: 'The commit is unsigned or not signed by a trusted key', fault: 'commit' },
  SECRET_DECRYPT_FAILED: { status: 422, message: 'A secrets file cannot be decrypted with the server key', fault: 'commit' },
  MANIFEST_TOO_LARGE: { status: 422, message: 'zerverless.yaml is over a limit (size, nesting, keys, list items, tokens or functions)', fault: 'commit' },
  PARSE_TIMEOUT: { status: 422, message: 'Parsing a file of the commit took longer than the time limit', fault: 'commit' },
  FILE_TOO_LARGE: { status: 422, message: 'A file of the commit is over the size limit of what reads it', fault: 'commit' },

  // Services (apps/ specs)
  SERVICE_SPEC_INVALID: { status: 422, message: 'A service spec is invalid', fault: 'commit' },
  SERVICE_FETCH_FAILED: { status: 502, message: 'A service could not be fetched' },
  SERVICE_CHECKSUM_MISMATCH: { status: 422, message: 'A release tarball does not match its sha256', fault: 'commit' },
  SERVICE_INSTALL_FAILED: { status: 422, message: 'Installing a service failed' },
  SERVICE_BUILD_FAILED: { status: 422, message: 'Building a service failed' },
  SERVICE_START_FAILED: { status: 500, message: 'A service process did not start' },
  SERVICE_UNHEALTHY: { status: 503, message: 'A service did not become healthy' },
  SERVICE_SPEC_TOO_LARGE: { status: 422, message: 'A service spec is over a limit (size, nesting, keys, list items or tokens)', fault: 'commit' },

  // Server
  CONFIG_INVALID: { status: 500, message: 'The server configuration is invalid' },
  DATA_DIR_LOCKED: { status: 500, message: 'Another zerverless server uses this data dir' },
  SERVER_UNREACHABLE: { status: 503, message: 'The CLI cannot reach the zerverless server' },
  INTERNAL: { status: 500, message: 'Internal error', fault: 'commit' },
} as const satisfies Record<string, { status: number; message: string; fault?: 'commit' }>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * Whether a sync that failed with `code` failed because of the commit itself (its manifest, code,
 * specs, signature, secrets, or a bug the same input would hit again): the poll does not retry that
 * commit until the branch moves. Every other code is a passing fault (git or an engine unreachable,
 * credentials or a host key to fix, a path another application holds) and is retried.
 */
export function isCommitFault(code: ErrorCode): boolean {
  return (ERRORS[code] as { fault?: 'commit' }).fault === 'commit';
}

/** An error that carries a stable code; `details` is extra data safe to show to the user. */
export class ZvError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message ?? ERRORS[code].message, options);
    this.name = 'ZvError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isZvError(e: unknown, code?: ErrorCode): e is ZvError {
  return e instanceof ZvError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into a ZvError, keeping ZvErrors as they are. */
export function toZvError(e: unknown, fallback: ErrorCode = 'INTERNAL'): ZvError {
  if (e instanceof ZvError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new ZvError(fallback, message, undefined, { cause: e });
}
