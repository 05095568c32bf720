// Limits on what a parser is given, checked before the expensive work (issue 8.1: a 200,000-key
// flow mapping froze the server in the YAML library's quadratic duplicate-key check; 100,000 nested
// `[` blocked the event loop; deep JSON and Erlang terms overflowed the stack). Every check here is
// linear in the text and stops at the first limit crossed, with its offset:
//
// - `utf8Bytes`: the size in UTF-8 bytes (what a file on disk holds), stopping early past a bound.
// - `scanYamlBounds`: one pass over the `yaml` package's lexer tokens (YAML, and JSON, which is
//   YAML's flow syntax), counting nesting (flow `[`/`{` exactly; block collections by indentation,
//   never more than they are), mapping keys and list items. The composer only runs on text that
//   passed, so it never recurses deeper than the limit allows nor sees more keys than it.
// - `checkYamlDocument`: after composing with `uniqueKeys: false`, an iterative walk of the document
//   that checks the exact depth and finds duplicate keys with one Set per mapping (linear; the
//   library's own check compares every key with every other).
import { Composer, isAlias, isCollection, isMap, isNode, isPair, isScalar, Lexer, LineCounter, Parser } from 'yaml';
import type { Document, Node, YAMLParseError } from 'yaml';

export interface ParseLimits {
  /** Size of the file in UTF-8 bytes. */
  maxBytes: number;
  /** Nesting of collections (maps, lists, tuples); the top-level value is level 1. */
  maxDepth: number;
  /** Mapping keys in the whole file. */
  maxKeys: number;
  /** List (and tuple) items in the whole file. */
  maxItems: number;
  /**
   * YAML/JSON lexer tokens (keys, values, indicators, comments, line breaks; a block scalar is one):
   * what the YAML library's work grows with. Erlang terms do not use it.
   */
  maxTokens: number;
}

/** Limits of one zerverless.yaml (docs/errors.md, MANIFEST_TOO_LARGE). */
export const MANIFEST_LIMITS = {
  maxBytes: 1024 * 1024,
  maxDepth: 64,
  maxKeys: 10_000,
  maxItems: 10_000,
  maxTokens: 150_000,
  maxFunctions: 1_000,
} as const satisfies ParseLimits & { maxFunctions: number };

/** Limits of one service spec file, apps/<name>/app.* (docs/errors.md, SERVICE_SPEC_TOO_LARGE). */
export const SPEC_LIMITS = {
  maxBytes: 256 * 1024,
  maxDepth: 64,
  maxKeys: 10_000,
  maxItems: 10_000,
  maxTokens: 100_000,
} as const satisfies ParseLimits;

/** A limit crossed: where (an offset in the text) and what. */
export interface LimitHit {
  offset: number;
  message: string;
}

/** The size of `text` in UTF-8 bytes; counting stops once it is over `stopAbove` (when given). */
export function utf8Bytes(text: string, stopAbove = Infinity): number {
  let n = 0;
  for (let i = 0; i < text.length && n <= stopAbove; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const MIB = 1024 * 1024;
const KIB = 1024;
function human(bytes: number): string {
  if (bytes % MIB === 0) return `${bytes / MIB} MiB`;
  if (bytes % KIB === 0) return `${bytes / KIB} KiB`;
  return `${bytes} bytes`;
}

export const limitMessages = {
  bytes: (size: number, what: string, max: number) => `is ${size} bytes; ${what} may be at most ${max} bytes (${human(max)})`,
  depth: (what: string, max: number) => `nested more than ${max} levels deep (${what} may nest at most ${max} levels of maps and lists)`,
  keys: (what: string, max: number) => `more than ${max} mapping keys (${what} may hold at most ${max} keys in all)`,
  items: (what: string, max: number) => `more than ${max} list items (${what} may hold at most ${max} items in all)`,
  tokens: (what: string, max: number) => `more than ${max} YAML tokens (keys, values, indicators, comments and line breaks; ${what} may hold at most ${max})`,
};

/** The size check of a whole text, or null when it is within `limits.maxBytes`. */
export function checkBytes(text: string, limits: ParseLimits, what: string): LimitHit | null {
  // A UTF-8 byte is at least one UTF-16 unit and at most three per unit: skip the count when it cannot matter.
  if (text.length * 3 <= limits.maxBytes) return null;
  const size = utf8Bytes(text);
  return size > limits.maxBytes ? { offset: 0, message: limitMessages.bytes(size, what, limits.maxBytes) } : null;
}

// Lexer markers (see yaml's cst.ts): they carry no source text.
const DOCUMENT = '\x02';
const FLOW_END = '\x18';
const SCALAR = '\x1f';

interface Flow {
  map: boolean;
  /** The current item has content / has had its `:`; where its content starts. */
  content: boolean;
  colon: boolean;
  start: number;
}

/** Content of the current flow item starts (or goes on) at `at`. */
function touch(f: Flow, at: number): void {
  if (!f.content) f.start = at;
  f.content = true;
}

/**
 * One pass over the lexer's tokens of `text` (YAML or JSON): the first place where the nesting,
 * the number of keys or the number of list items goes over `limits`, or null. Block collections
 * are counted by their indentation and only where a `-`, `?` or `key:` opens one, so the count is
 * never more than the real depth (the exact depth is checked after composing: checkYamlDocument).
 */
export function scanYamlBounds(text: string, limits: ParseLimits, what: string): LimitHit | null {
  let offset = 0;
  let lineStart = 0;
  let keys = 0;
  let items = 0;
  const flow: Flow[] = [];
  /** Columns of the open block collections. */
  const block: number[] = [];
  /** Column of the first content token since the last line start or indicator (a possible key). */
  let pending = -1;
  let pendingAt = 0;
  let explicitKey = false;
  let scalarNext = false;

  const col = (at: number): number => at - lineStart;
  /** Content at `at`: part of the current flow item, or (block) possibly the start of a key. */
  const contentAt = (f: Flow | undefined, at: number): void => {
    if (f) touch(f, at);
    else if (pending < 0) {
      pending = col(at);
      pendingAt = at;
    }
  };
  const depthHit = (at: number): LimitHit => ({ offset: at, message: limitMessages.depth(what, limits.maxDepth) });
  /** A block collection starts (or continues) at column c. */
  const blockAt = (c: number, at: number): LimitHit | null => {
    while (block.length && (block[block.length - 1] as number) > c) block.pop();
    if (block[block.length - 1] !== c) {
      block.push(c);
      // Block nesting may be counted short (a list at its key's indentation): past the limit is
      // certain, and the exact first place comes from checkYamlDocument, so the scan only stops
      // what could overflow the composer (twice the limit).
      if (block.length > 2 * limits.maxDepth) return depthHit(at);
    }
    return null;
  };
  const key = (at: number): LimitHit | null => (++keys > limits.maxKeys ? { offset: at, message: limitMessages.keys(what, limits.maxKeys) } : null);
  const item = (at: number): LimitHit | null => (++items > limits.maxItems ? { offset: at, message: limitMessages.items(what, limits.maxItems) } : null);
  /** The end of a flow item (at `,` or the closing bracket). */
  const endFlowItem = (f: Flow, at: number, comma: boolean): LimitHit | null => {
    let hit: LimitHit | null = null;
    // Reported where the item starts.
    if (f.content) hit = f.map ? (f.colon ? null : key(f.start)) : item(f.start);
    else if (comma) hit = item(at); // An empty item: an error for the parser, counted so that many stay bounded.
    f.content = false;
    f.colon = false;
    return hit;
  };

  let tokens = 0;
  for (const tok of new Lexer().lex(text)) {
    const at = offset;
    if (++tokens > limits.maxTokens) return { offset: at, message: limitMessages.tokens(what, limits.maxTokens) };
    if (scalarNext) {
      // The source of a scalar (whatever characters it holds).
      scalarNext = false;
      offset += tok.length;
      const f = flow[flow.length - 1];
      contentAt(f, at);
      const nl = tok.lastIndexOf('\n');
      if (nl >= 0) lineStart = at + nl + 1;
      continue;
    }
    if (tok === SCALAR) {
      scalarNext = true;
      continue;
    }
    if (tok === DOCUMENT || tok === FLOW_END) continue;
    offset += tok.length;
    const f = flow[flow.length - 1];
    let hit: LimitHit | null = null;
    switch (tok) {
      case '\n':
      case '\r\n':
        lineStart = offset;
        pending = -1;
        break;
      case '---':
      case '...':
        block.length = 0;
        flow.length = 0;
        pending = -1;
        break;
      case '[':
      case '{':
        contentAt(f, at);
        flow.push({ map: tok === '{', content: false, colon: false, start: at });
        if (block.length + flow.length > limits.maxDepth) hit = depthHit(at);
        break;
      case ']':
      case '}':
        if (f) {
          hit = endFlowItem(f, at, false);
          flow.pop();
        } else hit = item(at); // Stray: an error for the parser; counted so a file of them stays bounded.
        break;
      case ',':
        hit = f ? endFlowItem(f, at, true) : item(at);
        break;
      case '-':
        if (!f) {
          hit = blockAt(col(at), at) ?? item(at);
          pending = -1;
        }
        break;
      case '?':
        if (f) touch(f, at);
        else {
          hit = blockAt(col(at), at);
          pending = -1;
        }
        hit ??= key(at);
        explicitKey = true;
        break;
      case ':':
        if (f) {
          touch(f, at);
          f.colon = true;
          if (!f.map) hit = key(f.start); // A single pair in a flow list: [a: 1].
          else if (!explicitKey) hit = key(f.start);
        } else {
          // A key is reported where it starts, not at its ':'.
          const keyAt = pending >= 0 ? pendingAt : at;
          hit = blockAt(pending >= 0 ? pending : col(at), keyAt);
          if (!explicitKey) hit ??= key(keyAt);
          pending = -1;
        }
        explicitKey = false;
        break;
      default: {
        const c = tok[0];
        if (c === ' ' || c === '\t' || c === '#' || c === '%' || c === '\ufeff') break;
        // Quoted scalars, aliases, anchors, tags, block scalar headers: content.
        contentAt(f, at);
        if (c === '"' || c === "'") {
          const nl = tok.lastIndexOf('\n');
          if (nl >= 0) lineStart = at + nl + 1;
        }
      }
    }
    if (hit) return hit;
  }
  return null;
}

/** A problem found by checkYamlDocument: a duplicate key (syntax) or the depth limit. */
export interface DocumentProblem {
  offset: number;
  message: string;
  kind: 'duplicate' | 'limit';
}

/**
 * Walks a document composed with `uniqueKeys: false` (iteratively, aliases not followed): the exact
 * depth against `maxDepth` (the first node past it), and every duplicate key of a mapping (scalar
 * keys equal by value, like the library's own check), in document order.
 */
export function checkYamlDocument(doc: Document, limits: ParseLimits, what: string): DocumentProblem[] {
  const out: DocumentProblem[] = [];
  const stack: [unknown, number][] = [[doc.contents, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (!isCollection(node)) continue;
    if (depth > limits.maxDepth) {
      return [{ offset: node.range?.[0] ?? 0, message: limitMessages.depth(what, limits.maxDepth), kind: 'limit' }];
    }
    const next: [unknown, number][] = [];
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const k = pair.key;
        if (isScalar(k)) {
          const id = `${typeof k.value}:${String(k.value)}`;
          if (seen.has(id)) out.push({ offset: k.range?.[0] ?? 0, message: 'Map keys must be unique', kind: 'duplicate' });
          else seen.add(id);
        } else if (isNode(k) && !isAlias(k)) next.push([k, depth + 1]);
        if (isNode(pair.value)) next.push([pair.value as Node, depth + 1]);
      }
    } else {
      for (const it of node.items) {
        if (isPair(it)) {
          // A single pair in a flow list ([a: 1]) is a one-key map.
          if (isNode(it.key)) next.push([it.key, depth + 2]);
          if (isNode(it.value)) next.push([it.value as Node, depth + 2]);
        } else if (isNode(it)) next.push([it, depth + 1]);
      }
    }
    for (let i = next.length - 1; i >= 0; i--) stack.push(next[i] as [unknown, number]);
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** 1-based line:col of an offset (col in UTF-16 units, like the yaml LineCounter); linear, for one message. */
export function positionAt(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  const end = Math.min(offset, text.length);
  for (let i = text.indexOf('\n'); i >= 0 && i < end; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

/** Syntax errors kept from one parse; the composer is stopped at this many (each costs an Error). */
export const MAX_SYNTAX_ERRORS = 20;
const STOP = Symbol('too many YAML errors');
type ErrorHook = (source: unknown, code: string, message: string, warning?: boolean) => void;

export interface SyntaxProblem {
  offset: number;
  message: string;
}

export type BoundedYaml =
  | { limit: LimitHit }
  /** `doc` is undefined when the composer was stopped after MAX_SYNTAX_ERRORS errors. */
  | { doc: Document | undefined; lineCounter: LineCounter; errors: SyntaxProblem[] };

/**
 * YAML (or JSON) text → one document, within `limits`: the linear pre-checks (size, tokens,
 * nesting, keys, items), then the library's parser and composer with `uniqueKeys: false` (its own
 * duplicate check is quadratic) stopped after MAX_SYNTAX_ERRORS errors, then the exact depth and
 * the duplicate keys (checkYamlDocument). `errors` are the syntax errors and duplicates, by offset.
 */
export function composeYaml(text: string, limits: ParseLimits, what: string): BoundedYaml {
  const pre = checkBytes(text, limits, what) ?? scanYamlBounds(text, limits, what);
  if (pre) return { limit: pre };
  const lineCounter = new LineCounter();
  const composer = new Composer({ uniqueKeys: false });
  // The composer reports each problem through this instance field (private in its types, stable
  // in yaml 2.x; parse.test.ts checks a file of many errors stays fast); past the cap it stops.
  const hooks = composer as unknown as { onError: ErrorHook; errors: YAMLParseError[] };
  const report = hooks.onError;
  let count = 0;
  let stopped = false;
  hooks.onError = (source, code, message, warning) => {
    // Once stopped, every later report throws again (some library paths catch and report).
    if (stopped) throw STOP;
    report(source, code, message, warning);
    if (!warning && ++count >= MAX_SYNTAX_ERRORS) {
      stopped = true;
      throw STOP;
    }
  };
  let doc: Document | undefined;
  const errors: SyntaxProblem[] = [];
  try {
    for (const d of composer.compose(new Parser(lineCounter.addNewLine).parse(text), true, text.length)) {
      if (stopped) break;
      if (doc) {
        errors.push({ offset: d.range[0], message: 'Source contains multiple documents; please use YAML.parseAllDocuments()' });
        break;
      }
      doc = d as Document;
    }
  } catch (e) {
    if (e !== STOP) throw e;
  }
  if (stopped) {
    const kept = hooks.errors.slice(0, MAX_SYNTAX_ERRORS).map((x) => ({ offset: x.pos[0], message: x.message }));
    const last = kept[kept.length - 1];
    if (last) last.message += ` (stopped after ${MAX_SYNTAX_ERRORS} errors)`;
    return { doc: undefined, lineCounter, errors: kept };
  }
  if (!doc) return { doc, lineCounter, errors };
  errors.unshift(...doc.errors.map((x) => ({ offset: x.pos[0], message: x.message })));
  const found = checkYamlDocument(doc, limits, what);
  const limit = found.find((p) => p.kind === 'limit');
  if (limit) return { limit: { offset: limit.offset, message: limit.message } };
  errors.push(...found.map((p) => ({ offset: p.offset, message: p.message })));
  return { doc, lineCounter, errors: errors.sort((a, b) => a.offset - b.offset) };
}
