// Maps a field path inside a parsed YAML document (`['spec', 'functions', 1, 'runtime']`) to the
// 1-based line:col users see, and names it the way messages do (`spec.functions[1].runtime`).
// A field is located at its key (`runtime:`), a list item at the item, a missing field at its parent.
import { isMap, isNode, isPair, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node, Pair } from 'yaml';

export type FieldPath = (string | number)[];

export interface Position {
  line: number;
  col: number;
}

export function fieldName(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Per mapping node: its first pair for each scalar key (built once, so a lookup is not a scan of every key). */
const pairIndex = new WeakMap<object, Map<string, Pair>>();

function pairIn(node: unknown, key: string): Pair | undefined {
  if (!isMap(node)) return undefined;
  let index = pairIndex.get(node);
  if (!index) {
    index = new Map();
    for (const p of node.items) {
      if (isPair(p) && isScalar(p.key)) {
        const k = String(p.key.value);
        if (!index.has(k)) index.set(k, p as Pair);
      }
    }
    pairIndex.set(node, index);
  }
  return index.get(key);
}

function child(node: unknown, seg: string | number): unknown {
  if (typeof seg === 'number') return isSeq(node) ? node.items[seg] : undefined;
  return pairIn(node, seg)?.value;
}

export class Locator {
  constructor(private readonly doc: Document, private readonly lc: LineCounter) {}

  positionOf(offset: number): Position {
    const { line, col } = this.lc.linePos(offset);
    return { line, col };
  }

  /** The value node at `path`, or undefined. */
  node(path: FieldPath): Node | undefined {
    let cur: unknown = this.doc.contents;
    for (const seg of path) {
      cur = child(cur, seg);
      if (cur === undefined || cur === null) return undefined;
    }
    return isNode(cur) ? cur : undefined;
  }

  /** Where a message about `path` points: the key of a mapping field, the item of a list, else the nearest ancestor. */
  locate(path: FieldPath): Position {
    for (let n = path.length; n > 0; n--) {
      const parentPath = path.slice(0, n - 1);
      const seg = path[n - 1] as string | number;
      const parent = parentPath.length ? this.node(parentPath) : this.doc.contents;
      if (typeof seg === 'string') {
        const pair = pairIn(parent, seg);
        const key = pair?.key;
        if (isNode(key) && key.range) return this.positionOf(key.range[0]);
      } else {
        const item = child(parent, seg);
        if (isNode(item) && item.range) return this.positionOf(item.range[0]);
      }
    }
    const root = this.doc.contents;
    if (isNode(root) && root.range) return this.positionOf(root.range[0]);
    return { line: 1, col: 1 };
  }

  /** The line where a scalar's content starts: the line after `|`/`>` for block scalars. */
  contentLine(path: FieldPath): number | undefined {
    const node = this.node(path);
    if (!isScalar(node) || !node.range) return undefined;
    const { line } = this.positionOf(node.range[0]);
    return node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED' ? line + 1 : line;
  }
}

/** Turns an ajv instancePath into a field path, using the data to tell list indexes from keys. */
export function toFieldPath(pointer: string, data: unknown): FieldPath {
  if (!pointer) return [];
  const out: FieldPath = [];
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const i = Number(seg);
      out.push(i);
      cur = cur[i];
    } else {
      out.push(seg);
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

/** `a`, `a or b`, `a, b or c`. */
export function joinOr(words: string[]): string {
  if (words.length <= 1) return words[0] ?? '';
  return `${words.slice(0, -1).join(', ')} or ${words[words.length - 1] ?? ''}`;
}
