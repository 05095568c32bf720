// Structural validation of the manifest with ajv, turning each ajv error into a readable message
// that names the field (`spec.functions[1].runtime: must be one of …`) at its YAML position.
import { Ajv } from 'ajv';
import type { ErrorObject, SchemaObject, ValidateFunction } from 'ajv';
import { ALLOWED_CAPABILITIES, LINUX_CAPABILITIES, manifestSchema } from './schema.js';
import { validateAppName, validateFunctionPath, validateNamespace } from '../names.js';
import type { FieldPath } from './locate.js';
import { fieldName, joinOr, toFieldPath } from './locate.js';

export interface FieldProblem {
  path: FieldPath;
  message: string;
}

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true, strict: true });
    compiled = ajv.compile(manifestSchema as unknown as SchemaObject);
  }
  return compiled;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'a boolean',
  object: 'a mapping (key: value)',
  array: 'a list',
  null: 'empty',
};



function lastKey(path: FieldPath): string {
  const last = path[path.length - 1];
  return typeof last === 'string' ? last : '';
}

function unit(path: FieldPath): string {
  const k = lastKey(path);
  if (k === 'memory') return ' MiB';
  if (k === 'timeout') return ' ms';
  return '';
}

function patternMessage(path: FieldPath, value: unknown): string {
  const name = fieldName(path);
  const strip = (m: string | null, prefix: string): string | null => (m && m.startsWith(prefix) ? m.slice(prefix.length) : m);
  if (name === 'metadata.name') return strip(validateAppName(value), 'name ') ?? 'is not a valid name';
  if (name === 'metadata.namespace') return strip(validateNamespace(value), 'namespace ') ?? 'is not a valid namespace';
  const k = lastKey(path);
  if (k === 'timeout') return `"${String(value)}" is not a duration; use 500ms, 30s, 5m, 1h or a number of milliseconds`;
  if (k === 'path') return strip(validateFunctionPath(value), 'path ') ?? 'is not a valid path';
  return `"${String(value)}" has the wrong format`;
}

/** `spec.functions[i].capabilities[j]`: an item of a capabilities list. */
function isCapabilityItem(path: FieldPath): boolean {
  return typeof path[path.length - 1] === 'number' && path[path.length - 2] === 'capabilities';
}

function capabilityMessage(value: unknown): string {
  const known = LINUX_CAPABILITIES as readonly string[];
  const allowed = ALLOWED_CAPABILITIES as readonly string[];
  const raw = String(value);
  const bare = raw.toUpperCase().replace(/^CAP_/, '');
  if (known.includes(bare) && !allowed.includes(bare)) {
    return `"${raw}" is not allowed: a function may keep only Docker's default capabilities (${allowed.join(', ')})`;
  }
  if (allowed.includes(bare)) return `"${raw}" must be written ${bare} (upper case, without CAP_)`;
  return `"${raw}" is not a Linux capability; use a name from capabilities(7) without CAP_, e.g. NET_BIND_SERVICE`;
}

function messageFor(e: ErrorObject, path: FieldPath): FieldProblem | null {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: [...path, String(p.missingProperty)], message: 'is required' };
    case 'additionalProperties': {
      const props = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const extra = String(p.additionalProperty);
      return {
        path: [...path, extra],
        message: props.length ? `unknown field "${extra}" (allowed: ${props.join(', ')})` : `unknown field "${extra}"`,
      };
    }
    case 'enum':
      if (isCapabilityItem(path)) {
        // A non-string item already has its type error.
        return typeof e.data === 'string' ? { path, message: capabilityMessage(e.data) } : null;
      }
      return { path, message: `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}` };
    case 'const':
      return { path, message: `must be ${String(p.allowedValue)}` };
    case 'type': {
      const types = String(p.type).split(',');
      return { path, message: `must be ${joinOr(types.map((t) => TYPE_WORDS[t] ?? t))}` };
    }
    case 'pattern':
      return { path, message: patternMessage(path, e.data) };
    case 'minimum':
      return { path, message: `must be at least ${String(p.limit)}${unit(path)}` };
    case 'maximum':
      return { path, message: `must be at most ${String(p.limit)}${unit(path)}` };
    case 'minLength':
      return { path, message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters` };
    case 'maxLength':
      return { path, message: `must be at most ${String(p.limit)} characters` };
    case 'uniqueItems': {
      // Point at the later of the two equal items, naming the earlier one.
      const later = Math.max(Number(p.i), Number(p.j));
      const earlier = Math.min(Number(p.i), Number(p.j));
      const item = Array.isArray(e.data) ? (e.data as unknown[])[later] : undefined;
      return { path: [...path, later], message: `"${String(item)}" is listed twice (also item ${earlier})` };
    }
    case 'propertyNames': {
      const key = String(p.propertyName);
      const message = lastKey(path) === 'env'
        ? `"${key}" is not a valid environment variable name (letters, digits and _, not starting with a digit)`
        : `"${key}" is not a valid key`;
      return { path: [...path, key], message };
    }
    default:
      return { path, message: e.message ?? `fails ${e.keyword}` };
  }
}

export function schemaProblems(data: unknown): FieldProblem[] {
  const validate = validator();
  if (validate(data)) return [];
  const out: FieldProblem[] = [];
  for (const e of validate.errors ?? []) {
    // Errors inside propertyNames come twice (the inner one carries propertyName); keep the outer one.
    if (e.propertyName !== undefined) continue;
    const problem = messageFor(e, toFieldPath(e.instancePath, data));
    if (problem) out.push(problem);
  }
  return out;
}
