// Load-time compilation of JS/TS function code with esbuild, and the `file:line:col: message`
// formatting of compile errors (shifted by `lineOffset` for code inlined in zerverless.yaml).
import { transform } from 'esbuild';
import { ZvError } from '../../errors/registry.js';
import type { FunctionSource } from '../types.js';
import { WRAP_PREFIX } from './shims-glue.js';
import { SourceMap, positionMapper } from './sourcemap.js';
import type { PositionMapper } from './sourcemap.js';

export interface CompiledCode {
  /** CommonJS code, to be wrapped by `wrapModule`. */
  code: string;
  /** Maps positions in the wrapped code back to the source file. */
  mapper: PositionMapper;
}

interface EsbuildMessage {
  text: string;
  location: { line: number; column: number } | null;
}

function isBuildFailure(e: unknown): e is { errors: EsbuildMessage[] } {
  return typeof e === 'object' && e !== null && Array.isArray((e as { errors?: unknown }).errors);
}

/** `filename:line:col: message`, with `line` shifted by the source's lineOffset. */
export function compileError(source: Pick<FunctionSource, 'filename' | 'lineOffset'>, message: string, line?: number, column?: number): ZvError {
  let where = source.filename;
  if (line !== undefined) {
    const shifted = source.lineOffset !== undefined ? source.lineOffset + line - 1 : line;
    where += `:${shifted}` + (column !== undefined ? `:${column}` : '');
  }
  return new ZvError('FUNCTION_COMPILE_ERROR', `${where}: ${message}`, {
    file: source.filename,
    ...(line !== undefined ? { line: source.lineOffset !== undefined ? source.lineOffset + line - 1 : line } : {}),
  });
}

export async function compileSource(source: FunctionSource): Promise<CompiledCode> {
  try {
    const out = await transform(source.code, {
      loader: source.language === 'typescript' ? 'ts' : 'js',
      format: 'cjs',
      target: 'es2022',
      sourcefile: source.filename,
      logLevel: 'silent',
      sourcemap: 'external',
    });
    let map: SourceMap | null = null;
    try {
      map = out.map ? new SourceMap(out.map) : null;
    } catch {
      map = null;
    }
    return { code: out.code, mapper: positionMapper(map, source.filename, WRAP_PREFIX.length, source.lineOffset) };
  } catch (e) {
    if (isBuildFailure(e) && e.errors.length > 0) {
      const first = e.errors[0] as EsbuildMessage;
      const loc = first.location;
      const more = e.errors.length > 1 ? ` (and ${e.errors.length - 1} more error${e.errors.length > 2 ? 's' : ''})` : '';
      return Promise.reject(compileError(source, first.text + more, loc?.line, loc ? loc.column + 1 : undefined));
    }
    throw compileError(source, e instanceof Error ? e.message : String(e));
  }
}

/** Turns a V8 compile error from isolated-vm (`message [file:line:col]`) into FUNCTION_COMPILE_ERROR. */
export function v8CompileError(source: FunctionSource, compiled: CompiledCode, e: unknown): ZvError {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^(.*) \[[^\]]*?:(\d+):(\d+)\]$/s.exec(msg);
  const name = e instanceof Error && e.name && e.name !== 'Error' ? `${e.name}: ` : '';
  if (!m) return compileError(source, name + msg);
  const p = compiled.mapper.map(Number(m[2]), Number(m[3]));
  return compileAt(source, name + (m[1] ?? ''), p.line, p.column);
}

/** Like compileError, for a line that is already shifted by lineOffset. */
export function compileAt(source: Pick<FunctionSource, 'filename'>, message: string, line: number, column: number): ZvError {
  return new ZvError('FUNCTION_COMPILE_ERROR', `${source.filename}:${line}:${column}: ${message}`, { file: source.filename, line });
}

/** The first `filename:line:col` of a stack trace, mapped to the source. */
export function firstFrame(compiled: CompiledCode, filename: string, stack: string): { line: number; column: number } | null {
  for (const l of stack.split('\n')) {
    const i = l.lastIndexOf(`${filename}:`);
    if (i < 0 || l.includes('zerverless:setup')) continue;
    const m = /^:(\d+):(\d+)/.exec(l.slice(i + filename.length));
    if (m) return compiled.mapper.map(Number(m[1]), Number(m[2]));
  }
  return null;
}
