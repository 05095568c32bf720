// `zerverless apps diff NAME [--revision R]`: the plan preview (GET …/{name}/plan) as text. What a
// sync of the revision would do, against what is deployed; nothing is changed by asking.

/** The preview as the API answers it (src/reconciler/preview.ts). */
export interface PlanPreviewView {
  revision: string;
  commit: { sha: string; message: string; author: string; time: string | null };
  fromCommit: string | null;
  functions: { create: string[]; update: { path: string; changes: string[] }[]; delete: string[] };
  static: { added: number; changed: number; removed: number; unchanged: number; sample: { added: string[]; changed: string[]; removed: string[] } };
  services: { create: string[]; update: { name: string; action: string; changes: string[] }[]; delete: string[] };
  warnings: string[];
  errors: { file: string | null; line: number | null; col?: number; code: string; message: string }[];
}

const short = (sha: string | null): string => (sha ? sha.slice(0, 12) : 'nothing');

/** One line per change, `+` created, `~` changed (with what), `-` removed; errors as file:line: message. */
export function formatPreview(p: PlanPreviewView): string {
  const lines: string[] = [];
  const first = p.commit.message.split('\n')[0] ?? '';
  lines.push(`${short(p.fromCommit)} -> ${short(p.commit.sha)} (${p.revision})${first ? `: ${first}` : ''}`);
  if (p.commit.author) lines.push(`  author: ${p.commit.author}${p.commit.time ? `, ${p.commit.time}` : ''}`);
  for (const e of p.errors) lines.push(`error: ${e.file ? `${e.file}:${e.line ?? 0}${e.col ? `:${e.col}` : ''}: ` : ''}${e.code}: ${e.message}`);
  for (const w of p.warnings) lines.push(`warning: ${w}`);
  if (p.errors.length) {
    lines.push('a sync of this revision would fail; nothing would change');
    return lines.join('\n');
  }
  const fn = p.functions;
  for (const path of fn.create) lines.push(`  + function ${path}`);
  for (const u of fn.update) lines.push(`  ~ function ${u.path}${u.changes.length ? ` (${u.changes.join(', ')})` : ''}`);
  for (const path of fn.delete) lines.push(`  - function ${path}`);
  const st = p.static;
  if (st.added + st.changed + st.removed > 0) {
    lines.push(`  static: +${st.added} ~${st.changed} -${st.removed} =${st.unchanged}`);
    const more = (n: number, shown: number): string[] => (n > shown ? [`      … and ${n - shown} more`] : []);
    for (const path of st.sample.added) lines.push(`    + ${path}`);
    lines.push(...more(st.added, st.sample.added.length));
    for (const path of st.sample.changed) lines.push(`    ~ ${path}`);
    lines.push(...more(st.changed, st.sample.changed.length));
    for (const path of st.sample.removed) lines.push(`    - ${path}`);
    lines.push(...more(st.removed, st.sample.removed.length));
  }
  const sv = p.services;
  for (const name of sv.create) lines.push(`  + service ${name}`);
  for (const u of sv.update) lines.push(`  ~ service ${u.name} (${u.action}${u.changes.length ? `: ${u.changes.join(', ')}` : ''})`);
  for (const name of sv.delete) lines.push(`  - service ${name}`);
  const changes = fn.create.length + fn.update.length + fn.delete.length + st.added + st.changed + st.removed + sv.create.length + sv.update.length + sv.delete.length;
  if (changes === 0) lines.push('  no changes');
  return lines.join('\n');
}
