// `zerverless validate [DIR]`: checks zerverless.yaml and the apps/*/ service specs locally, then
// compiles every function's code (unless --no-compile). Exit 0 when valid; 1 with one
// `file:line:col: message` line per problem when not.
import { formatDiagnostic, type Diagnostic } from '../core/desired.js';
import { loadApp, validateTree } from '../sources/tree/index.js';
import { FsSnapshot } from '../sources/fs-snapshot.js';
import { compileFunctions } from './validate-code.js';

export async function runValidate(dir: string, opts: { json?: boolean; compile?: boolean }, out: (s: string) => void): Promise<number> {
  const warnings: Diagnostic[] = [];
  const onWarning = (w: Diagnostic) => warnings.push(w);
  const problems = await validateTree(dir, { onWarning });
  if (problems.length === 0 && opts.compile !== false) {
    const app = await loadApp(new FsSnapshot(dir), { commit: '0'.repeat(40), path: '' });
    if (app) problems.push(...(await compileFunctions(app.state.functions, onWarning)));
  }
  if (opts.json) {
    out(JSON.stringify({ valid: problems.length === 0, errors: problems, warnings }, null, 2));
  } else {
    for (const w of warnings) process.stderr.write(`warning: ${formatDiagnostic(w)}\n`);
    if (problems.length === 0) out(`${dir}: valid`);
    for (const p of problems) process.stderr.write(`${formatDiagnostic(p)}\n`);
  }
  return problems.length === 0 ? 0 : 1;
}
