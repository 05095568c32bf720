// Errors of the Node service runtime. Every failure carries `details.reason` (below) so callers and
// tests can tell them apart. The registry has no SERVICE_* codes yet, so each reason maps to the
// closest existing code; switch the mapping here once they exist (see the report of issue 4).
import { ZvError } from '../../errors/registry.js';
import type { ErrorCode } from '../../errors/registry.js';

export type ServiceFailure =
  | 'invalid-spec'       // wanted: SERVICE_SPEC_INVALID (422)
  | 'fetch'              // wanted: SERVICE_FETCH_FAILED (502)
  | 'checksum'           // wanted: SERVICE_CHECKSUM_MISMATCH (422)
  | 'install'            // wanted: SERVICE_INSTALL_FAILED (422)
  | 'build'              // wanted: SERVICE_BUILD_FAILED (422)
  | 'tool-missing'       // RUNTIME_UNAVAILABLE fits
  | 'start'              // wanted: SERVICE_START_FAILED (500)
  | 'unhealthy'          // wanted: SERVICE_UNHEALTHY (503)
  | 'closed';            // wanted: SERVICE_RUNTIME_CLOSED (503)

const CODES: Record<ServiceFailure, ErrorCode> = {
  'invalid-spec': 'VALIDATION_FAILED',
  fetch: 'INTERNAL',
  checksum: 'INTERNAL',
  install: 'INTERNAL',
  build: 'INTERNAL',
  'tool-missing': 'RUNTIME_UNAVAILABLE',
  start: 'INTERNAL',
  unhealthy: 'INTERNAL',
  closed: 'NOT_READY',
};

export function serviceError(reason: ServiceFailure, message: string, details: Record<string, unknown> = {}, cause?: unknown): ZvError {
  return new ZvError(CODES[reason], message, { reason, ...details }, cause === undefined ? undefined : { cause });
}

export function failureOf(e: unknown): ServiceFailure | undefined {
  const d = (e as { details?: { reason?: unknown } } | null)?.details;
  return typeof d?.reason === 'string' ? (d.reason as ServiceFailure) : undefined;
}
