// Maps positions in esbuild's compiled output back to the function's source, so that stack traces
// in the function log and top-level errors name the user's own lines (shifted by lineOffset).
// Only what esbuild emits for one input file is supported: a v3 map with a `mappings` string.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** One mapping: generated column → original line/column (all 0-based). */
type Segment = [genCol: number, srcLine: number, srcCol: number];

function decodeVlq(s: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of s) {
    const d = B64_INDEX.get(ch);
    if (d === undefined) break;
    value += (d & 31) << shift;
    if (d & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

export class SourceMap {
  private readonly lines: Segment[][] = [];

  constructor(json: string) {
    const map = JSON.parse(json) as { mappings?: unknown };
    const mappings = typeof map.mappings === 'string' ? map.mappings : '';
    let srcLine = 0;
    let srcCol = 0;
    for (const line of mappings.split(';')) {
      const segs: Segment[] = [];
      let genCol = 0;
      for (const part of line.split(',')) {
        if (!part) continue;
        const f = decodeVlq(part);
        genCol += f[0] ?? 0;
        if (f.length >= 4) {
          srcLine += f[2] ?? 0;
          srcCol += f[3] ?? 0;
          segs.push([genCol, srcLine, srcCol]);
        }
      }
      this.lines.push(segs);
    }
  }

  /** 1-based generated line/column → 1-based original line/column, when mapped. */
  lookup(line: number, column: number): { line: number; column: number } | null {
    const segs = this.lines[line - 1];
    if (!segs || segs.length === 0) return null;
    let best: Segment | undefined;
    for (const s of segs) {
      if (s[0] <= column - 1) best = s;
      else break;
    }
    best ??= segs[0];
    if (!best) return null;
    return { line: best[1] + 1, column: best[2] + 1 };
  }
}

export interface PositionMapper {
  /** Maps a 1-based line/column of the code as V8 sees it to the source file's line/column. */
  map(line: number, column: number): { line: number; column: number };
  /** Rewrites `filename:line:col` in a stack trace and drops the runtime's own frames. */
  stack(stack: string): string;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `firstLinePrefix` is the length of the wrapper text put before the code on line 1; `lineOffset`
 * is where inline code starts in its file.
 */
export function positionMapper(map: SourceMap | null, filename: string, firstLinePrefix: number, lineOffset: number | undefined): PositionMapper {
  const shift = (line: number): number => (lineOffset !== undefined ? lineOffset + line - 1 : line);
  const mapper: PositionMapper = {
    map(line, column) {
      const col = line === 1 ? Math.max(1, column - firstLinePrefix) : column;
      const found = map?.lookup(line, col);
      return found ? { line: shift(found.line), column: found.column } : { line: shift(line), column: col };
    },
    stack(stack) {
      const re = new RegExp(`${escapeRegExp(filename)}:(\\d+):(\\d+)`, 'g');
      return stack
        .split('\n')
        .filter((l) => !l.includes('zerverless:setup'))
        .map((l) => l.replace(re, (_m, a: string, b: string) => {
          const p = mapper.map(Number(a), Number(b));
          return `${filename}:${p.line}:${p.column}`;
        }))
        .join('\n');
    },
  };
  return mapper;
}
