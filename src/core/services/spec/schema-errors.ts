// Runs the service-spec JSON Schema (ajv) and turns each ajv error into a message that names the
// field (`source.type: …`, `health.interval: …`). Unknown fields come back as warnings.
import { Ajv } from 'ajv';
import type { ErrorObject, SchemaObject, ValidateFunction } from 'ajv';
import { fieldName, joinOr, toFieldPath } from './core.js';
import type { FieldPath } from './core.js';
import { serviceSpecSchema } from './schema.js';

export interface FieldProblem {
  path: FieldPath;
  message: string;
}

export const HEX_REFUSED = "source type 'hex' is not supported (Erlang/hex packages cannot run on the Node runtime)";
export const MESH_REFUSED = "source type 'mesh' is not supported (bc_gitops mesh sources are fetched from a Macula mesh, which zerverless does not join: use npm, git or release)";

let compiled: ValidateFunction | undefined;
// strictRequired off: the if/then rules require fields declared one level up.
function validator(): ValidateFunction {
  compiled ??= new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true, strict: true, strictRequired: false })
    .compile(serviceSpecSchema as unknown as SchemaObject);
  return compiled;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'a boolean',
  object: 'a map',
  array: 'a list',
};



const NAME_RULE = "lower-case letters, digits, '_' and '-', starting and ending with a letter or digit";

function patternMessage(path: FieldPath, value: unknown): string {
  const name = fieldName(path);
  const last = path[path.length - 1];
  if (name === 'name' || path[0] === 'depends_on') return `"${String(value)}" is not a valid service name (${NAME_RULE})`;
  if (name === 'source.sha256') return 'must be the 64 hexadecimal characters of the tarball\'s sha256';
  if (last === 'interval' || last === 'timeout') {
    return `"${String(value)}" is not a duration; use 500ms, 30s, 5m, 1h or a number of milliseconds`;
  }
  if (name === 'route' || name === 'health.path') return `"${String(value)}" must start with /`;
  return `"${String(value)}" has the wrong format`;
}

function typeMessage(path: FieldPath, types: string[], value: unknown): string {
  const words = joinOr(types.map((t) => TYPE_WORDS[t] ?? t));
  if (fieldName(path) === 'version' && typeof value === 'number') return `must be ${words} (this reads as the number ${String(value)}): write it in quotes, e.g. "1.0.0"`;
  if (path[0] === 'env' && path.length === 2) return 'must be a string, a number or a boolean';
  return `must be ${words}`;
}

function messageFor(e: ErrorObject, path: FieldPath, data: unknown): FieldProblem | null {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const missing = String(p.missingProperty);
      const source = path.length === 1 && path[0] === 'source' ? (data as { source?: { type?: unknown } }).source?.type : undefined;
      if (typeof source === 'string' && e.schemaPath.includes('/then/')) {
        return { path: [...path, missing], message: `is required for a ${source} source` };
      }
      if (path.length === 1 && path[0] === 'health' && e.schemaPath.includes('/then/')) {
        return { path: [...path, missing], message: 'is required for a custom health check (a shell command; exit 0 is healthy)' };
      }
      if (path.length === 0 && missing === 'source') {
        return { path: [missing], message: 'is required: a map with type npm, git or release' };
      }
      return { path: [...path, missing], message: 'is required' };
    }
    case 'enum': {
      if (fieldName(path) === 'source.type' && e.data === 'hex') return { path, message: HEX_REFUSED };
      if (fieldName(path) === 'source.type' && e.data === 'mesh') return { path, message: MESH_REFUSED };
      const allowed = (p.allowedValues as unknown[]).map(String);
      return { path, message: `${typeof e.data === 'string' ? `"${e.data}" ` : ''}must be one of ${allowed.join(', ')}` };
    }
    case 'type':
      return { path, message: typeMessage(path, String(p.type).split(','), e.data) };
    case 'pattern':
      return { path, message: patternMessage(path, e.data) };
    case 'minimum':
      return { path, message: `must be at least ${String(p.limit)}${path[0] === 'health' && path[1] !== 'port' ? ' ms' : ''}` };
    case 'maximum':
      return { path, message: `must be at most ${String(p.limit)}` };
    case 'minLength':
      return { path, message: 'must not be empty' };
    case 'maxLength':
      return { path, message: `must be at most ${String(p.limit)} characters` };
    case 'uniqueItems': {
      const later = Math.max(Number(p.i), Number(p.j));
      const earlier = Math.min(Number(p.i), Number(p.j));
      const item = Array.isArray(e.data) ? (e.data as unknown[])[later] : undefined;
      return { path: [...path, later], message: `"${String(item)}" is listed twice (also item ${earlier})` };
    }
    case 'if':
      return null; // The failing `then` has its own error.
    default:
      return { path, message: e.message ?? `fails ${e.keyword}` };
  }
}

/** Schema check of the JS view of a spec: errors, and unknown fields as warnings. */
export function specSchemaProblems(data: unknown): { errors: FieldProblem[]; warnings: FieldProblem[] } {
  const validate = validator();
  const errors: FieldProblem[] = [];
  const warnings: FieldProblem[] = [];
  if (validate(data)) return { errors, warnings };
  for (const e of validate.errors ?? []) {
    const path = toFieldPath(e.instancePath, data);
    if (e.keyword === 'additionalProperties') {
      const extra = String((e.params as { additionalProperty: unknown }).additionalProperty);
      warnings.push({ path: [...path, extra], message: `unknown field "${extra}" (ignored)` });
      continue;
    }
    const problem = messageFor(e, path, data);
    if (problem) errors.push(problem);
  }
  return { errors, warnings };
}
