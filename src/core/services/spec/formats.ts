// Reading the three spec formats into the same JS shape plus a locator that maps a field path back
// to `line:col`: Erlang terms (`app.config`, `config`), YAML (`.yaml`/`.yml`, eemeli yaml with a
// LineCounter) and JSON (checked strictly with JSON.parse, then located through the yaml library,
// which reads JSON and keeps ranges). Syntax errors come back as diagnostics.
import { LineCounter, parseDocument } from 'yaml';
import type { Diagnostic } from './core.js';
import { Locator } from './core.js';
import type { FieldPath, Position } from './core.js';
import { ErlangLocator, parseErlangTerm, proplistToMap, termToJS } from './erlang.js';

export type SpecFormat = 'erlang' | 'yaml' | 'json';

export interface SpecLocator {
  locate(path: FieldPath): Position;
}

export type ReadResult = { data: unknown; locator: SpecLocator; warnings: Diagnostic[] } | { errors: Diagnostic[] };

/** `app.config`, `config` (and any other name) → Erlang terms; `.yaml`/`.yml` → YAML; `.json` → JSON. */
export function specFormat(file: string): SpecFormat {
  const base = file.slice(file.lastIndexOf('/') + 1).toLowerCase();
  if (base.endsWith('.yaml') || base.endsWith('.yml')) return 'yaml';
  if (base.endsWith('.json')) return 'json';
  return 'erlang';
}

function readErlang(text: string, file: string): ReadResult {
  const r = parseErlangTerm(text);
  if ('error' in r) return { errors: [{ file, line: r.error.line, col: r.error.col, message: r.error.message }] };
  // bc_gitops also reads a proplist [{name, web}, …] as the map.
  const term = proplistToMap(r.term);
  return { data: termToJS(term), locator: new ErlangLocator(term), warnings: [] };
}

function yamlDocument(text: string): { doc: ReturnType<typeof parseDocument>; lc: LineCounter; locator: Locator } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  return { doc, lc, locator: new Locator(doc, lc) };
}

function readYaml(text: string, file: string): ReadResult {
  const { doc, locator } = yamlDocument(text);
  if (doc.errors.length) {
    return { errors: doc.errors.map((e) => ({ file, ...locator.positionOf(e.pos[0]), message: `invalid YAML: ${e.message}` })) };
  }
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
  const { doc, locator } = yamlDocument(text);
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
    return { errors: [{ file, ...locator.positionOf(jsonErrorOffset(text, raw)), message: `invalid JSON: ${message}` }] };
  }
  // JSON.parse lets a repeated key win silently; the YAML reader of the same text does not.
  const dup = doc.errors.find((e) => e.code === 'DUPLICATE_KEY');
  if (dup) return { errors: [{ file, ...locator.positionOf(dup.pos[0]), message: 'invalid JSON: duplicate key' }] };
  return { data, locator, warnings: [] };
}

export function readSpecText(text: string, file: string, format: SpecFormat = specFormat(file)): ReadResult {
  if (format === 'erlang') return readErlang(text, file);
  if (format === 'yaml') return readYaml(text, file);
  return readJson(text, file);
}
