// Error answers in the one shape every endpoint uses: {"error": {"code", "message"}} with the code's status.
import { ERRORS, toZvError, type ErrorCode } from '../errors/registry.js';

export function errorResponse(e: unknown, extraHeaders: Record<string, string> = {}): Response {
  const err = toZvError(e);
  return Response.json({ error: { code: err.code, message: err.message } }, { status: err.status, headers: extraHeaders });
}

export function errorOf(code: ErrorCode, message?: string): Response {
  return Response.json({ error: { code, message: message ?? ERRORS[code].message } }, { status: ERRORS[code].status });
}
