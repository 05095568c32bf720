// Error answers in the one shape every endpoint uses: {"error": {"code", "message"}} with the code's status.
import { ZvError, toZvError, type ErrorCode } from './registry.js';

const platformAnswers = new WeakSet<Response>();

/** Whether the server answered this itself (errorResponse), rather than a function or container. */
export function isPlatformAnswer(res: Response): boolean {
  return platformAnswers.has(res);
}

export function errorResponse(e: unknown, extraHeaders: Record<string, string> = {}): Response {
  const err = toZvError(e);
  // The rest of a too-large body is not worth reading (past lingering): close after the answer.
  const headers = err.code === 'PAYLOAD_TOO_LARGE' ? { connection: 'close', ...extraHeaders } : extraHeaders;
  const res = Response.json({ error: { code: err.code, message: err.message } }, { status: err.status, headers });
  platformAnswers.add(res);
  return res;
}

export function errorOf(code: ErrorCode, message?: string): Response {
  return errorResponse(new ZvError(code, message));
}

export function payloadTooLarge(max: number): ZvError {
  return new ZvError('PAYLOAD_TOO_LARGE', `the request body is over ${max} bytes`);
}

/** True when the request declares a body longer than `max`. */
export function declaresMoreThan(req: Request, max: number): boolean {
  return Number(req.headers.get('content-length') ?? '0') > max;
}
