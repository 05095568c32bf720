// `validate` compiles every function's code with the runtimes the server uses, so a Lua file
// missing `end` is an error on the laptop, not at the next sync. Docker functions are not built
// (that needs an engine and can take minutes); a runtime this host lacks is a warning.
import type { Diagnostic, DesiredFunction } from '../core/desired.js';
import { isZvError, toZvError } from '../errors/registry.js';
import type { FunctionRuntime } from '../runtimes/types.js';
import { LuaRuntime } from '../runtimes/lua/index.js';
import { JsRuntime } from '../runtimes/js/index.js';
import { PythonRuntime } from '../runtimes/python/index.js';

const POSITION = /^(.+?):(\d+)(?::(\d+))?: ([\s\S]*)$/;

function diagnostic(f: DesiredFunction, message: string): Diagnostic {
  const m = POSITION.exec(message);
  if (m) return { file: m[1] as string, line: Number(m[2]), col: m[3] ? Number(m[3]) : 1, message: `${f.path}: ${m[4] ?? ''}` };
  return { file: f.filename, line: f.lineOffset ?? 1, col: 1, message: `${f.path}: ${message}` };
}

export async function compileFunctions(functions: DesiredFunction[], onWarning: (d: Diagnostic) => void): Promise<Diagnostic[]> {
  const wanted = new Set(functions.map((f) => f.runtime));
  const runtimes = new Map<string, FunctionRuntime>();
  if (wanted.has('lua')) runtimes.set('lua', new LuaRuntime());
  if (wanted.has('js')) runtimes.set('js', new JsRuntime());
  if (wanted.has('python')) runtimes.set('python', new PythonRuntime());
  const problems: Diagnostic[] = [];
  try {
    for (const f of functions) {
      const rt = runtimes.get(f.runtime);
      if (!rt) continue; // docker: built by the server
      const av = await rt.available();
      if (!av.ok) {
        onWarning({ file: f.filename, line: f.lineOffset ?? 1, col: 1, message: `${f.path}: not compiled here (${f.runtime} is unavailable: ${av.reason})` });
        continue;
      }
      try {
        const source = {
          id: `validate${f.path}`, runtime: f.runtime, ...(f.language ? { language: f.language } : {}), code: f.code, filename: f.filename,
          ...(f.lineOffset !== undefined ? { lineOffset: f.lineOffset } : {}), timeoutMs: f.timeoutMs, memoryMb: f.memoryMb, env: {},
        };
        // compile (python: a fork of one check process) when the runtime has it, else load and dispose
        if (rt.compile) await rt.compile(source, () => undefined);
        else await (await rt.load(source, () => undefined)).dispose();
      } catch (e) {
        if (isZvError(e, 'FUNCTION_COMPILE_ERROR')) problems.push(diagnostic(f, e.message));
        else onWarning({ file: f.filename, line: f.lineOffset ?? 1, col: 1, message: `${f.path}: not compiled here: ${toZvError(e).message}` });
      }
    }
  } finally {
    await Promise.all([...runtimes.values()].map((rt) => rt.close().catch(() => undefined)));
  }
  return problems;
}
