// `zerverless validate [DIR]`: checks zerverless.yaml and the apps/*/ service specs locally.
// Exit 0 when valid; 1 with one `file:line:col: message` line per problem when not.
import { formatDiagnostic, type Diagnostic } from '../core/model.js';
import { validateTree } from '../sources/tree/index.js';

export async function runValidate(dir: string, opts: { json?: boolean }, out: (s: string) => void): Promise<number> {
  const warnings: Diagnostic[] = [];
  const problems = await validateTree(dir, { onWarning: (w) => warnings.push(w) });
  if (opts.json) {
    out(JSON.stringify({ valid: problems.length === 0, errors: problems, warnings }, null, 2));
  } else {
    for (const w of warnings) process.stderr.write(`warning: ${formatDiagnostic(w)}\n`);
    if (problems.length === 0) out(`${dir}: valid`);
    for (const p of problems) process.stderr.write(`${formatDiagnostic(p)}\n`);
  }
  return problems.length === 0 ? 0 : 1;
}
