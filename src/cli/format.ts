// Human-readable output for `zerverless apps …` (`--json` prints the API's JSON instead).
import type { AppStatus } from '../core/status.js';
import type { SyncEntry } from './client.js';

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function formatList(apps: AppStatus[], total: number): string {
  const rows = [['NAMESPACE', 'NAME', 'STATUS', 'COMMIT', 'LAST SYNC', 'REPOSITORY']];
  for (const a of apps) {
    rows.push([a.namespace, a.name, a.status, a.source.commit?.slice(0, 12) ?? '-', a.lastSync ?? '-', `${a.source.repoURL}#${a.source.branch}`]);
  }
  return `${table(rows)}\n${apps.length} of ${total} application(s)`;
}

export function formatApp(a: AppStatus): string {
  const lines = [
    `${a.namespace}/${a.name}: ${a.status}${a.message ? ` — ${a.message}` : ''}`,
    `  source:    ${a.source.repoURL} (branch ${a.source.branch}${a.source.path ? `, path ${a.source.path}` : ''})`,
    `  commit:    ${a.source.commit ?? '-'}`,
    `  last sync: ${a.lastSync ?? '-'}`,
  ];
  if (a.retry) lines.push(`  retry:     attempt ${a.retry.attempt}, next at ${a.retry.nextAt} (or now: zerverless apps sync ${a.name})`);
  if (a.functions.length) {
    lines.push('  functions:');
    const rows = a.functions.map((f) => [`    ${f.path}`, f.runtime, f.status, f.url, f.container ? `${f.image ?? ''} container ${f.container.slice(0, 12)}` : '']);
    lines.push(table(rows));
    for (const f of a.functions) {
      if (f.message) lines.push(`    ${f.path}: ${f.message.split('\n')[0]}`);
      if (f.buildLog) lines.push(`    build log of ${f.path} (end):`, ...f.buildLog.split('\n').slice(-30).map((l) => `      ${l}`));
    }
  }
  if (a.static) lines.push(`  static:    ${a.static.files} file(s) from ${a.static.dir} at ${a.static.url}`);
  if (a.services.length) {
    lines.push('  services:');
    lines.push(table(a.services.map((s) => [`    ${s.name}`, s.version, s.status, s.health, s.route ? `/${a.namespace}${s.route}` : '', s.message ?? ''])));
  }
  for (const w of a.warnings ?? []) lines.push(`  warning:   ${w}`);
  return lines.join('\n');
}

export function formatHistory(syncs: SyncEntry[]): string {
  const rows = [['STARTED', 'RESULT', 'COMMIT', 'CHANGES', 'BY', 'MESSAGE']];
  for (const s of syncs) {
    const p = s.plan?.summary;
    const changes = p ? `+${p.create} ~${p.update} -${p.delete} =${p.unchanged}` : '-';
    // Who: the token's name for API calls, else what started it (poll, webhook, retry).
    const by = s.actor ?? s.trigger ?? '-';
    rows.push([s.startedAt, s.result, s.commit?.slice(0, 12) ?? '-', changes, by, s.message.split('\n')[0] ?? '']);
  }
  return table(rows);
}
