// A parser for Erlang term files as bc_gitops writes them (`apps/<name>/app.config`): one term,
// usually a map `#{k => v, …}`, followed by a final `.`. Supported: maps, atoms (plain and quoted),
// binaries `<<"…">>` (string and byte segments, `/utf8`), strings with every Erlang escape, char
// literals `$a`, integers (`16#FF`, `1_000`, signed), floats, lists, tuples and `%` comments.
// Records, variables, improper lists and expressions are refused with a `line:col` error.
//
// The result keeps the syntax tree (with positions) and a JS view of it: atoms and binaries and
// strings become strings, `true`/`false` booleans, `undefined`/`nil` null, tuples arrays and maps
// objects (keys: atoms, binaries, strings or numbers). `ErlangLocator` maps a field path of the JS
// view back to a `line:col`, the same way the YAML locator does.
import type { FieldPath, ParseLimits, Position } from './core.js';
import { checkBytes, limitMessages, SPEC_LIMITS } from './core.js';
import { isSpace, Lexer, show, SyntaxErr } from './erlang-lexer.js';
import type { Token } from './erlang-lexer.js';

export interface ErlPos {
  offset: number;
  line: number;
  col: number;
}

export type ErlTerm =
  | { type: 'atom'; value: string; pos: ErlPos }
  | { type: 'binary'; value: string; pos: ErlPos }
  | { type: 'string'; value: string; pos: ErlPos }
  | { type: 'integer'; value: number; pos: ErlPos }
  | { type: 'float'; value: number; pos: ErlPos }
  | { type: 'list'; items: ErlTerm[]; pos: ErlPos }
  | { type: 'tuple'; items: ErlTerm[]; pos: ErlPos }
  | { type: 'map'; entries: ErlMapEntry[]; pos: ErlPos };

export interface ErlMapEntry {
  key: ErlTerm;
  /** The key as a JS property name. */
  name: string;
  value: ErlTerm;
}

export interface ErlangError extends Position {
  message: string;
  /** Set when a limit (size, nesting, keys, items) was crossed rather than the syntax broken. */
  limit?: true;
}

/** A limit crossed while parsing (see ParseLimits). */
class LimitErr extends SyntaxErr {}

export type ErlangParseResult = { term: ErlTerm; value: unknown; locator: ErlangLocator } | { error: ErlangError };

class Parser {
  private readonly lex: Lexer;
  private tok: Token;
  /** Where the last consumed token ended (for "missing final '.'"). */
  private prevEnd = 0;
  private depth = 0;
  private keys = 0;
  private items = 0;
  constructor(private readonly text: string, private readonly pos: (offset: number) => ErlPos, private readonly limits: ParseLimits, private readonly what: string) {
    this.lex = new Lexer(text);
    this.tok = this.lex.next();
  }

  private advance(): Token {
    const t = this.tok;
    this.prevEnd = t.end;
    this.tok = this.lex.next();
    return t;
  }

  private atEof(): boolean {
    return this.tok.kind === 'eof';
  }

  private isPunct(p: string): boolean {
    return this.tok.kind === 'punct' && this.tok.text === p;
  }

  document(): ErlTerm {
    if (this.atEof()) throw new SyntaxErr(0, "the file is empty: expected a map #{…} followed by '.'");
    const term = this.term();
    const termEnd = this.prevEnd;
    if (!this.isPunct('.')) {
      if (this.atEof()) throw new SyntaxErr(termEnd, "missing final '.'");
      throw new SyntaxErr(this.tok.start, `expected '.' after the term, found ${show(this.tok)}`);
    }
    const dot = this.advance();
    const after = this.text[dot.end];
    if (after !== undefined && !isSpace(after) && after !== '%') throw new SyntaxErr(dot.end, "expected whitespace or end of file after the final '.'");
    if (this.tok.kind !== 'eof') throw new SyntaxErr(this.tok.start, "a spec file holds one term: unexpected text after the final '.'");
    return term;
  }

  private term(): ErlTerm {
    const t = this.tok;
    const pos = this.pos(t.start);
    switch (t.kind) {
      case 'atom':
      case 'qatom':
        this.advance();
        return { type: 'atom', value: t.text, pos };
      case 'string': {
        let value = this.advance().text;
        // Adjacent strings concatenate: "abc" "def".
        while (this.tok.kind === 'string') value += this.advance().text;
        return { type: 'string', value, pos };
      }
      case 'char':
      case 'integer':
        this.advance();
        return { type: 'integer', value: t.num ?? 0, pos };
      case 'float':
        this.advance();
        return { type: 'float', value: t.num ?? 0, pos };
      case 'var':
        throw new SyntaxErr(t.start, `unexpected variable ${t.text}: a spec file holds values only (quote it as an atom: '${t.text}', or write <<"${t.text}">>)`);
      case 'eof':
        throw new SyntaxErr(t.start, 'unexpected end of file: expected a value');
      default:
        break;
    }
    switch (t.text) {
      case '-':
      case '+': {
        this.advance();
        const n = this.tok;
        if (n.kind !== 'integer' && n.kind !== 'float' && n.kind !== 'char') throw new SyntaxErr(n.start, `expected a number after '${t.text}'`);
        this.advance();
        const value = (t.text === '-' ? -1 : 1) * (n.num ?? 0);
        return { type: n.kind === 'float' ? 'float' : 'integer', value: value === 0 ? 0 : value, pos };
      }
      case '#{':
      case '[':
      case '{': {
        // Nesting is bounded before it can exhaust the stack (this parser is recursive).
        if (++this.depth > this.limits.maxDepth) throw new LimitErr(t.start, limitMessages.depth(this.what, this.limits.maxDepth));
        const out = t.text === '#{' ? this.map(pos) : this.seq(pos, t.text === '[' ? 'list' : 'tuple');
        this.depth--;
        return out;
      }
      case '<<':
        return this.binary(pos);
      default:
        throw new SyntaxErr(t.start, `unexpected ${show(t)}: expected a value`);
    }
  }

  private closeOrComma(open: ErlPos, close: string, what: string): boolean {
    if (this.isPunct(',')) {
      this.advance();
      return false;
    }
    if (this.isPunct(close)) {
      this.advance();
      return true;
    }
    if (this.atEof()) throw new SyntaxErr(open.offset, `unterminated ${what}: expected '${close}'`);
    if (this.isPunct('|') && what === 'list') throw new SyntaxErr(this.tok.start, "improper lists ('|') are not supported");
    throw new SyntaxErr(this.tok.start, `expected ',' or '${close}' in ${what}, found ${show(this.tok)}`);
  }

  private map(pos: ErlPos): ErlTerm {
    this.advance();
    const entries: ErlMapEntry[] = [];
    const seen = new Map<string, ErlPos>();
    if (this.isPunct('}')) {
      this.advance();
      return { type: 'map', entries, pos };
    }
    for (;;) {
      if (this.atEof()) throw new SyntaxErr(pos.offset, "unterminated map: expected '}'");
      if (++this.keys > this.limits.maxKeys) throw new LimitErr(this.tok.start, limitMessages.keys(this.what, this.limits.maxKeys));
      const key = this.term();
      const name = keyName(key);
      if (name === undefined) throw new SyntaxErr(key.pos.offset, 'a map key must be an atom, a binary, a string or a number');
      if (this.isPunct(':=')) throw new SyntaxErr(this.tok.start, "expected '=>' after map key (':=' only updates an existing map)");
      if (!this.isPunct('=>')) {
        if (this.atEof()) throw new SyntaxErr(pos.offset, "unterminated map: expected '}'");
        throw new SyntaxErr(this.tok.start, `expected '=>' after map key, found ${show(this.tok)}`);
      }
      this.advance();
      const value = this.term();
      const prev = seen.get(name);
      if (prev) throw new SyntaxErr(key.pos.offset, `duplicate key ${name} (first at ${prev.line}:${prev.col})`);
      seen.set(name, key.pos);
      entries.push({ key, name, value });
      if (this.closeOrComma(pos, '}', 'map')) return { type: 'map', entries, pos };
    }
  }

  private seq(pos: ErlPos, type: 'list' | 'tuple'): ErlTerm {
    const close = type === 'list' ? ']' : '}';
    this.advance();
    const items: ErlTerm[] = [];
    if (this.isPunct(close)) {
      this.advance();
      return { type, items, pos };
    }
    for (;;) {
      if (this.atEof()) throw new SyntaxErr(pos.offset, `unterminated ${type}: expected '${close}'`);
      if (++this.items > this.limits.maxItems) throw new LimitErr(this.tok.start, limitMessages.items(this.what, this.limits.maxItems));
      items.push(this.term());
      if (this.closeOrComma(pos, close, type)) return { type, items, pos };
    }
  }

  private binary(pos: ErlPos): ErlTerm {
    this.advance();
    let value = '';
    if (this.isPunct('>>')) {
      this.advance();
      return { type: 'binary', value, pos };
    }
    for (;;) {
      const t = this.tok;
      if (t.kind === 'eof') throw new SyntaxErr(pos.offset, 'unterminated binary');
      if (t.kind === 'string') {
        while (this.tok.kind === 'string') value += this.advance().text;
      } else if (t.kind === 'integer' || t.kind === 'char') {
        this.advance();
        const n = t.num ?? 0;
        if (n < 0 || n > 255) throw new SyntaxErr(t.start, `binary segment ${n} is not a byte (0 to 255)`);
        value += String.fromCharCode(n);
      } else {
        throw new SyntaxErr(t.start, `unexpected ${show(t)} in binary: expected a string or a byte`);
      }
      if (this.isPunct('/')) {
        this.advance();
        const spec = this.tok;
        if (spec.kind !== 'atom' || !['utf8', 'binary'].includes(spec.text)) {
          throw new SyntaxErr(spec.start, `binary segment type ${spec.text ? `/${spec.text} ` : ''}is not supported (use /utf8 or none)`);
        }
        this.advance();
      }
      if (this.isPunct(',')) this.advance();
      else if (this.isPunct('>>')) {
        this.advance();
        return { type: 'binary', value, pos };
      } else if (this.atEof()) throw new SyntaxErr(pos.offset, 'unterminated binary');
      else throw new SyntaxErr(this.tok.start, `unterminated binary: expected ',' or '>>', found ${show(this.tok)}`);
    }
  }
}

/** The JS property name of a map key, or undefined for keys that cannot be one (lists, tuples, maps). */
function keyName(key: ErlTerm): string | undefined {
  switch (key.type) {
    case 'atom':
    case 'binary':
    case 'string':
      return key.value;
    case 'integer':
    case 'float':
      return String(key.value);
    default:
      return undefined;
  }
}

const NULL_ATOMS = new Set(['undefined', 'nil']);

/** The JS view of a term (see the header). */
export function termToJS(t: ErlTerm): unknown {
  switch (t.type) {
    case 'atom':
      if (t.value === 'true') return true;
      if (t.value === 'false') return false;
      return NULL_ATOMS.has(t.value) ? null : t.value;
    case 'binary':
    case 'string':
    case 'integer':
    case 'float':
      return t.value;
    case 'list':
    case 'tuple':
      return t.items.map(termToJS);
    case 'map': {
      const out: Record<string, unknown> = {};
      // defineProperty: a key named __proto__ stays a plain field.
      for (const e of t.entries) Object.defineProperty(out, e.name, { value: termToJS(e.value), enumerable: true, writable: true, configurable: true });
      return out;
    }
  }
}

/**
 * A proplist `[{name, web}, {version, <<"1">>}]` (what file:consult users also write) as the
 * equivalent map; any other term unchanged.
 */
export function proplistToMap(t: ErlTerm): ErlTerm {
  if (t.type !== 'list') return t;
  const entries: ErlMapEntry[] = [];
  const names = new Set<string>();
  for (const item of t.items) {
    const key = item.type === 'tuple' && item.items.length === 2 ? item.items[0] : undefined;
    const value = item.type === 'tuple' ? item.items[1] : undefined;
    const name = key && keyName(key);
    if (!key || !value || name === undefined || names.has(name)) return t;
    names.add(name);
    entries.push({ key, name, value });
  }
  return { type: 'map', entries, pos: t.pos };
}

/** Finds the `line:col` of a field path in the JS view: a map field at its key, a list item at the item. */
export class ErlangLocator {
  /** Per map term: its entries by name (built once, so a lookup is not a scan of every key). */
  private readonly index = new WeakMap<ErlTerm, Map<string, ErlMapEntry>>();
  constructor(private readonly root: ErlTerm) {}

  private child(node: ErlTerm | undefined, seg: string | number): { at: ErlPos; node: ErlTerm } | undefined {
    if (!node) return undefined;
    if (node.type === 'map') {
      let byName = this.index.get(node);
      if (!byName) {
        byName = new Map();
        for (const x of node.entries) if (!byName.has(x.name)) byName.set(x.name, x);
        this.index.set(node, byName);
      }
      const e = byName.get(String(seg));
      return e && { at: e.key.pos, node: e.value };
    }
    if ((node.type === 'list' || node.type === 'tuple') && typeof seg === 'number') {
      const item = node.items[seg];
      return item && { at: item.pos, node: item };
    }
    return undefined;
  }

  locate(path: FieldPath): Position {
    let best: ErlPos = this.root.pos;
    let cur: ErlTerm | undefined = this.root;
    for (const seg of path) {
      const next = this.child(cur, seg);
      if (!next) break;
      best = next.at;
      cur = next.node;
    }
    return { line: best.line, col: best.col };
  }
}

/** 1-based line:col of every offset, in UTF-16 code units like the YAML line counter. */
function positions(text: string): (offset: number) => ErlPos {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { offset, line: lo + 1, col: offset - (starts[lo] as number) + 1 };
  };
}

/**
 * Parses one Erlang term followed by `.`; a syntax error comes back with its line:col, and so does
 * the first limit crossed (`limits`, by default those of a service spec: size, nesting, keys, items).
 */
export function parseErlangTerm(text: string, limits: ParseLimits = SPEC_LIMITS, what = 'a service spec'): ErlangParseResult {
  const big = checkBytes(text, limits, what);
  if (big) return { error: { line: 1, col: 1, message: big.message, limit: true } };
  const pos = positions(text);
  try {
    const term = new Parser(text, pos, limits, what).document();
    return { term, value: termToJS(term), locator: new ErlangLocator(term) };
  } catch (e) {
    if (!(e instanceof SyntaxErr)) throw e;
    const { line, col } = pos(e.offset);
    return { error: e instanceof LimitErr ? { line, col, message: e.message, limit: true } : { line, col, message: e.message } };
  }
}
