// Reading and checking JSON bodies at the API edge, with messages that name each field at fault.
import type { Context } from 'hono';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ZvError } from '../errors/registry.js';

export function describeAjv(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const field = e.instancePath.replace(/^\//, '').replaceAll('/', '.') || 'body';
      if (e.keyword === 'additionalProperties') return `${field}: unknown field '${String(e.params.additionalProperty)}'`;
      if (e.keyword === 'required') return `${field === 'body' ? '' : `${field}.`}${String(e.params.missingProperty)}: is required`;
      return `${field}: ${e.message ?? 'is invalid'}`;
    })
    .join('; ');
}

/** The request's JSON body checked against `validate` (400 BAD_REQUEST / VALIDATION_FAILED). */
export async function readJsonBody<T>(c: Context, validate: ValidateFunction<T>): Promise<T> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ZvError('BAD_REQUEST', 'the body must be JSON');
  }
  if (!validate(body)) throw new ZvError('VALIDATION_FAILED', describeAjv(validate.errors));
  return body;
}
