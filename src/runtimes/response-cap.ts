// The cap on a function's response (--max-response): how its size is counted and the error over it.
// Each runtime checks the size where the response is made (inside the isolate, the Lua worker or the
// Python worker) before anything is copied towards the main thread; the gateway checks again.
import { ZvError } from '../errors/registry.js';
import type { FunctionResponse } from '../core/function-contract.js';

/** The default of --max-response: 10 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

/** Error messages and other texts a runtime hands back are cut to this many characters. */
export const MAX_MESSAGE_CHARS = 16 * 1024;

/** Options every in-process runtime (lua, js, python) takes. */
export interface ResponseCapOptions {
  /** A response (body plus headers) over this many bytes fails with FUNCTION_RESPONSE_TOO_LARGE (default 10 MiB). */
  maxResponseBytes?: number;
}

/** The cap to use: the option when it is a positive number, else the default. */
export function responseCap(opts: ResponseCapOptions | undefined): number {
  const n = opts?.maxResponseBytes;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.floor(n) : DEFAULT_MAX_RESPONSE_BYTES;
}

function human(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${+(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

/** FUNCTION_RESPONSE_TOO_LARGE; `size` is what was measured (at least, when `atLeast`). */
export function responseTooLarge(max: number, size?: number, atLeast = false): ZvError {
  const what = size === undefined ? 'The response' : `The response (${atLeast ? 'at least ' : ''}${human(size)})`;
  return new ZvError('FUNCTION_RESPONSE_TOO_LARGE', `${what} is over the limit of ${human(max)} (--max-response)`);
}

/** Bytes of the body (UTF-8 for a string) plus the header names and values. */
export function responseBytes(res: FunctionResponse): number {
  let n = typeof res.body === 'string' ? Buffer.byteLength(res.body, 'utf8') : res.body.byteLength;
  for (const [k, v] of Object.entries(res.headers)) n += Buffer.byteLength(k, 'utf8') + Buffer.byteLength(String(v), 'utf8');
  return n;
}

/**
 * A bound on responseBytes(res) from above: a UTF-16 code unit is at most 3 bytes of UTF-8 (a pair
 * of them, 4). Counted without encoding anything, so a response far under the cap (nearly all)
 * skips the exact count.
 */
function bytesBound(res: FunctionResponse): number {
  let n = typeof res.body === 'string' ? 3 * res.body.length : res.body.byteLength;
  const headers = res.headers;
  for (const k in headers) n += 3 * (k.length + String(headers[k]).length);
  return n;
}

/** Returns `res`, or throws FUNCTION_RESPONSE_TOO_LARGE when it is over `max`. */
export function checkResponse(res: FunctionResponse, max: number): FunctionResponse {
  if (bytesBound(res) <= max) return res;
  const size = responseBytes(res);
  if (size > max) throw responseTooLarge(max, size);
  return res;
}

/** Cuts a text a function handed back (an error message, a reason) to MAX_MESSAGE_CHARS. */
export function clipMessage(s: string): string {
  return s.length > MAX_MESSAGE_CHARS ? `${s.slice(0, MAX_MESSAGE_CHARS)} …[${s.length - MAX_MESSAGE_CHARS} more characters]` : s;
}
