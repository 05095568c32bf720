// The function contract of PRODUCT.md §4: what every runtime receives and what the gateway sends back.
// `normalizeResult` turns whatever a `handle(req)` returned into a response, the same way for all runtimes.

export interface FunctionRequest {
  method: string;
  /** The path below the namespace: `/myuser/api/hello/x` → `/api/hello/x`. */
  path: string;
  /** First value per key. */
  query: Record<string, string>;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** The raw body as a string. */
  body: string;
}

export interface FunctionResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

export type NormalizeResult =
  | { ok: true; response: FunctionResponse }
  | { ok: false; reason: string };

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

/** The keys of a response object; an object with none of them is data, sent as JSON. */
export const RESPONSE_KEYS: readonly string[] = ['status', 'headers', 'body'];

/** How many unknown keys a FUNCTION_BAD_RESPONSE message names. */
const NAMED_KEYS = 5;

/**
 * A returned plain string is a 200 text/plain body; `null`/`undefined` is an empty 200.
 * An object with any of `status`, `headers`, `body` (the response keys) is a response: `status`
 * defaults to 200 and an object/array `body` is sent as JSON; any other key beside them is refused
 * (FUNCTION_BAD_RESPONSE naming it: `{status: 404, error: 'x'}` and Lambda's `statusCode` would
 * otherwise lose data without a word). An array, or an object with none of the response keys
 * (`{ok: true}`), is data: a 200 with the value as its JSON body.
 */
export function normalizeResult(value: unknown): NormalizeResult {
  if (value === undefined || value === null) return { ok: true, response: { status: 200, headers: {}, body: '' } };
  if (typeof value === 'string') return { ok: true, response: { status: 200, headers: { 'content-type': TEXT }, body: value } };
  if (typeof value === 'number' || typeof value === 'boolean') {
    return { ok: true, response: { status: 200, headers: { 'content-type': TEXT }, body: String(value) } };
  }
  if (typeof value !== 'object') return { ok: false, reason: `handle returned a ${typeof value}` };
  if (value instanceof Uint8Array) return { ok: true, response: { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: value } };
  const v = value as Record<string, unknown>;
  const keys = Object.keys(v).filter((k) => v[k] !== undefined);
  const unknown = keys.filter((k) => !RESPONSE_KEYS.includes(k));
  if (Array.isArray(value) || unknown.length === keys.length) {
    const json = JSON.stringify(value);
    return { ok: true, response: { status: 200, headers: { 'content-type': JSON_TYPE }, body: json === undefined ? 'null' : json } };
  }
  if (unknown.length > 0) {
    const named = unknown.slice(0, NAMED_KEYS).map((k) => JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}…` : k)).join(', ');
    const more = unknown.length > NAMED_KEYS ? ', …' : '';
    return {
      ok: false,
      reason: `handle returned a response (status, headers, body) with other keys: ${named}${more}; `
        + 'put the data in body, or return an object without status, headers and body to send it all as JSON',
    };
  }

  let status = 200;
  if (v.status !== undefined && v.status !== null) {
    const n = typeof v.status === 'string' ? Number(v.status) : v.status;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 100 || n > 599) {
      return { ok: false, reason: `status must be an integer from 100 to 599, got ${JSON.stringify(v.status)}` };
    }
    status = n;
  }

  const headers: Record<string, string> = {};
  if (v.headers !== undefined && v.headers !== null) {
    if (typeof v.headers !== 'object' || Array.isArray(v.headers)) return { ok: false, reason: 'headers must be a map of strings' };
    for (const [k, hv] of Object.entries(v.headers as Record<string, unknown>)) {
      if (hv === undefined || hv === null) continue;
      headers[k.toLowerCase()] = String(hv);
    }
  }

  let body: string | Uint8Array = '';
  const b = v.body;
  if (b === undefined || b === null) body = '';
  else if (typeof b === 'string') {
    body = b;
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = TEXT;
  } else if (b instanceof Uint8Array) {
    body = b;
  } else if (typeof b === 'object' || typeof b === 'number' || typeof b === 'boolean') {
    body = JSON.stringify(b);
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = JSON_TYPE;
  } else return { ok: false, reason: `body of type ${typeof b} cannot be sent` };

  return { ok: true, response: { status, headers, body } };
}
