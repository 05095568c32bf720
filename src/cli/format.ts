// Human-readable output for `zerverless apps …` (`--json` prints the API's JSON instead).
import type { AppStatus } from '../core/status.js';
import type { RevisionEntry, SyncEntry } from './client.js';

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function formatList(apps: AppStatus[], total: number): string {
  const rows = [['NAMESPACE', 'NAME', 'STATUS', 'COMMIT', 'LAST SYNC', 'REPOSITORY']];
  for (const a of apps) {
    rows.push([a.namespace, a.name, a.suspended ? `${a.status} (suspended)` : a.status, a.source.commit?.slice(0, 12) ?? '-', a.lastSync ?? '-', `${a.source.repoURL}#${a.source.branch}`]);
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
  if (a.source.paths?.length) lines.splice(2, 0, `  paths:     ${a.source.paths.join(' ')}`);
  if (a.source.seenCommit) lines.push(`  seen:      ${a.source.seenCommit} (changes nothing this application reads; not synced)`);
  if (a.suspended) {
    const why = a.suspended.reason ? `: ${a.suspended.reason}` : '';
    const until = a.suspended.untilSync ? `zerverless apps resume ${a.name}, or an explicit sync` : `zerverless apps resume ${a.name}`;
    lines.push(`  suspended: since ${a.suspended.at}${a.suspended.by ? ` by ${a.suspended.by}` : ''}${why} (automatic syncs paused until ${until})`);
  }
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

const SIGN: Record<string, string> = { create: '+', deploy: '+', update: '~', upgrade: '~', reconfigure: '~', apply: '~', delete: '-', remove: '-' };

/**
 * What a sync changed, by kind: `functions: +/api/new ~/api/hello (code)`, `static: +3 ~1 -0`,
 * `services: ~web (env.PORT)`; '-' when it changed nothing, or for a sync without a plan.
 */
export function describeChanges(plan: SyncEntry['plan']): string {
  if (!plan) return '-';
  const parts: string[] = [];
  const fns = plan.functions.filter((f) => f.action !== 'unchanged');
  if (fns.length) {
    const shown = fns.slice(0, 5).map((f) => `${SIGN[f.action] ?? ''}${f.path}${f.changes?.length ? ` (${f.changes.join(', ')})` : ''}`);
    parts.push(`functions: ${shown.join(' ')}${fns.length > 5 ? ` …${fns.length - 5} more` : ''}`);
  }
  const files = { create: 0, update: 0, delete: 0 };
  for (const f of plan.static) if (f.action !== 'unchanged') files[f.action]++;
  if (files.create + files.update + files.delete > 0) parts.push(`static: +${files.create} ~${files.update} -${files.delete}`);
  else if (plan.staticSite === 'delete') parts.push('static: removed');
  const svcs = (plan.services ?? []).filter((c) => c.action !== 'unchanged');
  if (svcs.length) {
    parts.push(`services: ${svcs.map((c) => {
      const what = c.action === 'upgrade' && c.toVersion ? `${c.fromVersion ?? '?'}→${c.toVersion}` : c.changes?.join(', ');
      return `${SIGN[c.action] ?? ''}${c.name}${what ? ` (${what})` : ''}`;
    }).join(' ')}`);
  }
  return parts.length ? parts.join('; ') : 'no changes';
}

/** Who asked for the sync: the token's name for an API call, else what started it (poll, webhook, retry, drift, rollback by a token, register by a token). */
export function describeTrigger(s: Pick<SyncEntry, 'trigger' | 'actor'>): string {
  if (s.trigger === 'api') return s.actor ? `token ${s.actor}` : 'api';
  // A webhook's actor is the provider and its delivery id (github:<id>), not a token.
  if (s.trigger === 'webhook') return s.actor ? `webhook (${s.actor})` : 'webhook';
  return s.actor ? `${s.trigger} (token ${s.actor})` : s.trigger;
}

/** `apps revisions`: newest first, the served one marked with `*`. */
export function formatRevisions(revs: RevisionEntry[]): string {
  if (revs.length === 0) return 'no revisions kept yet (one is kept for each sync that changes what is deployed)';
  const rows = [['', 'REVISION', 'DEPLOYED', 'BY', 'FUNCTIONS', 'STATIC', 'SERVICES', 'MESSAGE']];
  for (const r of revs) {
    const msg = (r.message ?? '').split('\n')[0] ?? '';
    rows.push([r.current ? '*' : '', r.revision.slice(0, 12), r.deployedAt, r.by, String(r.functions), String(r.staticFiles), String(r.services),
      `${msg.length > 60 ? `${msg.slice(0, 57)}...` : msg}${r.author ? ` (${r.author.replace(/\s*<.*>$/, '')})` : ''}`]);
  }
  return table(rows);
}

export function formatHistory(syncs: SyncEntry[]): string {
  const rows = [['STARTED', 'RESULT', 'COMMIT', 'CHANGES', 'BY']];
  const details: string[][] = [];
  for (const s of syncs) {
    const p = s.plan?.summary;
    rows.push([s.startedAt, s.result, s.commit?.slice(0, 12) ?? '-', p ? `+${p.create} ~${p.update} -${p.delete} =${p.unchanged}` : '-', describeTrigger(s)]);
    const more: string[] = [];
    if (s.plan && (p?.create || p?.update || p?.delete)) more.push(describeChanges(s.plan));
    if (s.commitInfo) more.push(`commit: ${s.commitInfo.message.split('\n')[0] ?? ''}${s.commitInfo.author ? ` (${s.commitInfo.author}${s.commitInfo.time ? `, ${s.commitInfo.time}` : ''})` : ''}`);
    const msg = s.message.split('\n')[0] ?? '';
    if (msg) more.push(`${s.result === 'error' ? 'error' : 'note'}: ${msg}`);
    details.push(more);
  }
  const lines = table(rows).split('\n');
  const out = [lines[0] as string];
  lines.slice(1).forEach((l, i) => out.push(l, ...(details[i] ?? []).map((d) => `    ${d}`)));
  return out.join('\n');
}
