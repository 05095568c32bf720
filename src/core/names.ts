// Pure validators for the names and paths users write: namespaces, application names, function
// paths, durations and manifest-relative file paths. Each returns an error text (or a result) and
// never throws, so callers can turn the text into a Diagnostic or a ZvError as they need.

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** First path segments that the server itself uses; a namespace cannot take them. */
export const RESERVED_NAMESPACES: readonly string[] = ['api', 'static', 'healthz', 'readyz', 'metrics', 'ui', 'hooks'];

function labelError(kind: string, value: unknown): string | null {
  if (typeof value !== 'string') return `${kind} must be a string`;
  if (value === '') return `${kind} must not be empty`;
  if (value.length > 63) return `${kind} must be at most 63 characters`;
  if (!DNS_LABEL.test(value)) {
    return `${kind} "${value}" must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit`;
  }
  return null;
}

export function validateNamespace(ns: unknown): string | null {
  const err = labelError('namespace', ns);
  if (err) return err;
  if (RESERVED_NAMESPACES.includes(ns as string)) {
    return `namespace "${ns as string}" is reserved (reserved: ${RESERVED_NAMESPACES.join(', ')})`;
  }
  return null;
}

export function validateAppName(name: unknown): string | null {
  return labelError('name', name);
}

// Control characters: C0, DEL and C1.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function validateFunctionPath(p: unknown): string | null {
  if (typeof p !== 'string') return 'path must be a string';
  if (!p.startsWith('/')) return `path "${p}" must start with /`;
  if (CONTROL.test(p)) return 'path must not contain control characters';
  if (p.includes('\\')) return `path "${p}" must not contain a backslash`;
  if (p.includes('?')) return `path "${p}" must not contain a query (?)`;
  if (p.includes('#')) return `path "${p}" must not contain a fragment (#)`;
  if (p.includes('//')) return `path "${p}" must not contain //`;
  // Requests arrive percent-encoded and are matched as they arrive: a path written with a space,
  // '%' or a non-ASCII letter could never match (or would match two spellings). Only the
  // characters a URL path carries as they are (RFC 3986 pchar, without '%') are allowed.
  const bad = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/.exec(p);
  if (bad) {
    const ch = bad[0];
    const what = /\s/.test(ch) ? 'a space' : ch === '%' ? "'%' (write the path decoded, without percent-encoding)" : `'${ch}'`;
    return `path "${p}" must not contain ${what}: use letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @ /`;
  }
  const segments = p.split('/');
  if (segments.some((s) => s === '..')) return `path "${p}" must not contain a .. segment`;
  if (segments.some((s) => s === '.')) return `path "${p}" must not contain a . segment`;
  if (p.length > 1024) return 'path must be at most 1024 characters';
  return null;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `5m`, `1h`, `1.5s`, or plain milliseconds (number or numeric string) → ms; null if invalid. */
export function parseDuration(s: string | number): number | null {
  if (typeof s === 'number') {
    return Number.isFinite(s) && s >= 0 ? Math.round(s) : null;
  }
  if (typeof s !== 'string') return null;
  const m = DURATION.exec(s.trim());
  if (!m || m[1] === undefined) return null;
  const n = Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1);
  return Number.isFinite(n) ? Math.round(n) : null;
}

export type RelPathResult = { path: string } | { error: string };

/**
 * Lexical containment check for a path written in the manifest, relative to the manifest's folder.
 * Returns the normalised POSIX path (`./a/../b/` → `b`; the folder itself → `.`), or an error for
 * absolute paths, drive letters, backslashes, NUL and `..` that leaves the folder. Symlinks are the
 * tree reader's business (realpath check), not this function's.
 */
export function normalizeRelPath(p: unknown): RelPathResult {
  if (typeof p !== 'string') return { error: 'must be a string' };
  if (p === '') return { error: 'must not be empty' };
  if (p.includes('\0')) return { error: 'must not contain a NUL character' };
  if (p.includes('\\')) return { error: `"${p}" must use / as separator, not \\` };
  if (p.startsWith('/')) return { error: `"${p}" is an absolute path; paths are relative to the repository` };
  if (/^[A-Za-z]:/.test(p)) return { error: `"${p}" is an absolute path; paths are relative to the repository` };
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return { error: `"${p}" leaves the repository (..)` };
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return { path: out.length ? out.join('/') : '.' };
}
