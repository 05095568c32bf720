// Reading the three spec formats into the same JS shape plus a locator that maps a field path back
// to `line:col`: Erlang terms (`app.config`, `config`), YAML (`.yaml`/`.yml`, eemeli yaml with a
// LineCounter) and JSON (checked strictly with JSON.parse, then located through the yaml library,
// which reads JSON and keeps ranges). Syntax errors come back as diagnostics.
import type { Document } from 'yaml';
import type { Diagnostic } from './core.js';
import { checkBytes, composeYaml, Locator, positionAt, scanYamlBounds, SPEC_LIMITS } from './core.js';
import type { FieldPath, Position } from './core.js';
import { ErlangLocator, parseErlangTerm, proplistToMap, termToJS } from './erlang.js';

export type SpecFormat = 'erlang' | 'yaml' | 'json';

export interface SpecLocator {
  locate(path: FieldPath): Position;
}

/** `code` is set when a limit of SPEC_LIMITS was crossed (the error code to report). */
export type ReadResult = { data: unknown; locator: SpecLocator; warnings: Diagnostic[] } | { errors: Diagnostic[]; code?: 'SERVICE_SPEC_TOO_LARGE' };

/** How limit messages name the file. */
const WHAT = 'a service spec';
/** The message of a repeated key (checkYamlDocument). */
const DUPLICATE = 'Map keys must be unique';

/** `app.config`, `config` (and any other name) → Erlang terms; `.yaml`/`.yml` → YAML; `.json` → JSON. */
export function specFormat(file: string): SpecFormat {
  const base = file.slice(file.lastIndexOf('/') + 1).toLowerCase();
  if (base.endsWith('.yaml') || base.endsWith('.yml')) return 'yaml';
  if (base.endsWith('.json')) return 'json';
  return 'erlang';
}

function readErlang(text: string, file: string): ReadResult {
  const r = parseErlangTerm(text, SPEC_LIMITS);
  if ('error' in r) {
    const errors = [{ file, line: r.error.line, col: r.error.col, message: r.error.message }];
    return r.error.limit ? { errors, code: 'SERVICE_SPEC_TOO_LARGE' } : { errors };
  }
  // bc_gitops also reads a proplist [{name, web}, …] as the map.
  const term = proplistToMap(r.term);
  return { data: termToJS(term), locator: new ErlangLocator(term), warnings: [] };
}

type YamlRead =
  | { doc: Document | undefined; locator: SpecLocator & { positionOf(offset: number): Position }; duplicates: number[] }
  | { errors: Diagnostic[]; code?: 'SERVICE_SPEC_TOO_LARGE' };

/** Where nothing can be located (the YAML reader of a valid JSON text gave up): the start. */
const NOWHERE = { locate: (): Position => ({ line: 1, col: 1 }), positionOf: (): Position => ({ line: 1, col: 1 }) };

/**
 * The YAML document of a text within SPEC_LIMITS (bounds.ts: checked first, linearly; the
 * library's quadratic duplicate-key check replaced by a linear one). For YAML every syntax error
 * (repeated keys included) comes back as a diagnostic; for JSON, already checked by JSON.parse, the
 * document only locates fields, and repeated keys (which JSON.parse accepts) come back in `duplicates`.
 */
function yamlDocument(text: string, file: string, syntax: 'YAML' | 'JSON'): YamlRead {
  const y = composeYaml(text, SPEC_LIMITS, WHAT);
  if ('limit' in y) return { errors: [{ file, ...positionAt(text, y.limit.offset), message: y.limit.message }], code: 'SERVICE_SPEC_TOO_LARGE' };
  const at = (offset: number): Position => {
    const { line, col } = y.lineCounter.linePos(offset);
    return { line, col };
  };
  if (syntax === 'YAML' && (y.errors.length || !y.doc)) {
    const errors = y.errors.map((e) => ({ file, ...at(e.offset), message: `invalid YAML: ${e.message}` }));
    return { errors: errors.length ? errors : [{ file, line: 1, col: 1, message: 'invalid YAML' }] };
  }
  const duplicates = y.errors.filter((e) => e.message === DUPLICATE).map((e) => e.offset);
  return { doc: y.doc, locator: y.doc ? new Locator(y.doc, y.lineCounter) : NOWHERE, duplicates };
}

function readYaml(text: string, file: string): ReadResult {
  const y = yamlDocument(text, file, 'YAML');
  if ('errors' in y) return y;
  const { doc, locator } = y;
  if (!doc) return { errors: [{ file, line: 1, col: 1, message: 'invalid YAML' }] };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { errors: [{ file, line: 1, col: 1, message: `invalid YAML: ${e instanceof Error ? e.message : String(e)}` }] };
  }
  const warnings = doc.warnings.map((w) => ({ file, ...locator.positionOf(w.pos[0]), message: w.message }));
  return { data, locator, warnings };
}

/**
 * Where JSON.parse failed: its `at position N` when the message has one, the end for a truncated
 * text, else the longest prefix that is still a valid beginning (found by bisection).
 */
function jsonErrorOffset(text: string, message: string): number {
  const m = /at position (\d+)/.exec(message);
  if (m) return Number(m[1]);
  const stillValid = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return true;
    } catch (e) {
      return e instanceof Error && /Unexpected end of JSON input|Unterminated/.test(e.message);
    }
  };
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (stillValid(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function readJson(text: string, file: string): ReadResult {
  // The limits come before JSON.parse: a text over them never reaches it (nor the bisection below).
  const limit = checkBytes(text, SPEC_LIMITS, WHAT) ?? scanYamlBounds(text, SPEC_LIMITS, WHAT);
  if (limit) return { errors: [{ file, ...positionAt(text, limit.offset), message: limit.message }], code: 'SERVICE_SPEC_TOO_LARGE' };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const raw = e instanceof Error ? e.message : String(e);
    const message = raw
      .replace(/, (\.\.\.)?".*" is not valid JSON$/s, '')
      .replace(/( in JSON)? at position \d+.*$/s, '')
      // eslint-disable-next-line no-control-regex -- shows a control character the message quotes
      .replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
    return { errors: [{ file, ...positionAt(text, jsonErrorOffset(text, raw)), message: `invalid JSON: ${message}` }] };
  }
  // Valid JSON is valid YAML: the YAML reader of the same text gives the positions.
  const y = yamlDocument(text, file, 'JSON');
  if ('errors' in y) return y;
  const { locator } = y;
  // JSON.parse lets a repeated key win silently; the YAML reader of the same text does not.
  const dup = y.duplicates[0];
  if (dup !== undefined) return { errors: [{ file, ...locator.positionOf(dup), message: 'invalid JSON: duplicate key' }] };
  return { data, locator, warnings: [] };
}

export function readSpecText(text: string, file: string, format: SpecFormat = specFormat(file)): ReadResult {
  if (format === 'erlang') return readErlang(text, file);
  if (format === 'yaml') return readYaml(text, file);
  return readJson(text, file);
}
