// Errors of the Node service runtime. Every failure carries `details.reason` (below) so callers and
// tests can tell them apart, and a stable SERVICE_* code from the registry.
import { ZvError } from '../../errors/registry.js';
import type { ErrorCode } from '../../errors/registry.js';

export type ServiceFailure =
  | 'invalid-spec'
  | 'fetch'
  | 'checksum'
  | 'install'
  | 'build'
  | 'tool-missing'
  | 'start'
  | 'unhealthy'
  | 'closed';

const CODES: Record<ServiceFailure, ErrorCode> = {
  'invalid-spec': 'SERVICE_SPEC_INVALID',
  fetch: 'SERVICE_FETCH_FAILED',
  checksum: 'SERVICE_CHECKSUM_MISMATCH',
  install: 'SERVICE_INSTALL_FAILED',
  build: 'SERVICE_BUILD_FAILED',
  'tool-missing': 'RUNTIME_UNAVAILABLE',
  start: 'SERVICE_START_FAILED',
  unhealthy: 'SERVICE_UNHEALTHY',
  closed: 'NOT_READY',
};

export function serviceError(reason: ServiceFailure, message: string, details: Record<string, unknown> = {}, cause?: unknown): ZvError {
  return new ZvError(CODES[reason], message, { reason, ...details }, cause === undefined ? undefined : { cause });
}

export function failureOf(e: unknown): ServiceFailure | undefined {
  const d = (e as { details?: { reason?: unknown } } | null)?.details;
  return typeof d?.reason === 'string' ? (d.reason as ServiceFailure) : undefined;
}
