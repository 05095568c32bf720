// The zerverless web console (PRODUCT.md §12): plain TypeScript modules on the DOM, bundled by
// esbuild (scripts/build-console.mjs). It talks to the management API with the token the user signs
// in with (kept in sessionStorage, sent as a Bearer header). Live updates come from GET /api/events
// when the server has it, else from polling; a log tail per function and service when the server
// has GET …/{name}/logs. Text from the server is always set as text, never as HTML.

type Role = 'admin' | 'deployer' | 'reader';
interface Who {
  name: string;
  role: Role;
  namespaces: string[] | null;
}
interface FunctionStatus {
  path: string;
  runtime: string;
  url: string;
  status: string;
  message?: string;
}
interface ServiceStatus {
  name: string;
  version: string;
  status: string;
  health: string;
  route?: string;
  message?: string;
}
interface AppStatus {
  name: string;
  namespace: string;
  source: { repoURL: string; branch: string; path: string; commit: string | null; seenCommit?: string };
  lastSync: string | null;
  status: string;
  message: string;
  functions: FunctionStatus[];
  static: { dir: string; files: number; url: string } | null;
  services: ServiceStatus[];
  warnings?: string[];
  retry?: { attempt: number; at?: string };
  suspended?: { at: string; by: string | null; reason: string; untilSync?: boolean };
}
interface Change {
  path?: string;
  name?: string;
  action: string;
  changes?: string[];
}
interface RecordedPlan {
  functions: Change[];
  static: Change[];
  staticSite: string | null;
  summary: { create: number; update: number; delete: number; unchanged: number };
  services?: Change[];
}
interface SyncRecord {
  trigger: string;
  actor: string | null;
  commit: string | null;
  commitInfo?: { message: string; author: string; time: string | null };
  result: string;
  message: string;
  startedAt?: string;
  finishedAt?: string;
  plan: RecordedPlan | null;
}
interface Revision {
  revision: string;
  message: string | null;
  author: string | null;
  time: string | null;
  deployedAt: string;
  by: string;
  trigger: string;
  functions: number;
  staticFiles: number;
  services: number;
  current: boolean;
}
interface PlanPreview {
  revision: string;
  commit: { sha: string; message: string; author: string; time: string | null };
  fromCommit: string | null;
  functions: { create: string[]; update: { path: string; changes: string[] }[]; delete: string[] };
  static: { added: number; changed: number; removed: number; unchanged: number };
  services: { create: string[]; update: { name: string; action: string; changes: string[] }[]; delete: string[] };
  warnings: string[];
  errors: { file: string; line?: number; col?: number; code: string; message: string }[];
}

const TOKEN_KEY = 'zerverless.token';
const POLL_MS = 3000;
const SAFETY_POLL_MS = 30_000;
const APPS = '/gitops/applications';

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// ---- state ----
let token: string | null = sessionStorage.getItem(TOKEN_KEY);
let who: Who | null = null;
let hasLogs = false;
let hasEvents = false;
const lastStatus = new Map<string, string>();
const commitMessages = new Map<string, string>();
let view: { stop(): void; refresh(): Promise<void> } | null = null;
let liveStop: (() => void) | null = null;

// ---- DOM helpers ----
type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | ((e: Event) => void) | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
const kids = (...c: Child[]): (Node | string)[] => c.filter((x): x is Node | string => x !== null && x !== undefined && x !== false);
const $ = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;
const short = (sha: string | null | undefined): string => (sha ? sha.slice(0, 7) : '—');
function ago(iso: string | null | undefined): string {
  if (!iso) return 'never';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toISOString().slice(0, 16).replace('T', ' ');
}
function announce(text: string): void {
  const live = $('live');
  live.textContent = text;
}
function badge(status: string): HTMLElement {
  return h('span', { class: `badge s-${status}` }, status);
}

// ---- API ----
async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${token ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
    if (res.status === 401) signOut(err?.message ?? 'the token was refused');
    throw new ApiError(res.status, err?.code ?? String(res.status), err?.message ?? res.statusText);
  }
  return data as T;
}
const appPath = (ns: string, name: string, sub = '') => `${APPS}/${encodeURIComponent(name)}${sub}?namespace=${encodeURIComponent(ns)}`;
function canChange(ns: string): boolean {
  if (!who || who.role === 'reader') return false;
  return who.role === 'admin' || who.namespaces === null || who.namespaces.includes(ns);
}

// ---- sign in / out ----
function signOut(reason?: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  who = null;
  stopAll();
  renderSignIn(reason);
}
function stopAll(): void {
  view?.stop();
  view = null;
  liveStop?.();
  liveStop = null;
}

function renderSignIn(reason?: string): void {
  $('who').replaceChildren();
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'token-help' });
  const error = h('p', { id: 'signin-error', class: 'error', role: 'alert' }, reason ?? '');
  const form = h(
    'form',
    { class: 'signin', onsubmit: (e: Event) => void submit(e) },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'muted' }, 'A token from zerverless tokens create (or the admin token). It is kept in this tab only and sent to this server.'),
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  async function submit(e: Event): Promise<void> {
    e.preventDefault();
    token = input.value.trim();
    try {
      await start();
    } catch (err) {
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = (err as Error).message;
    }
  }
  $('main').replaceChildren(form);
  input.focus();
}

async function start(): Promise<void> {
  who = await api<Who>('GET', '/whoami');
  sessionStorage.setItem(TOKEN_KEY, token ?? '');
  // Which optional routes this server has (the console works without them).
  try {
    const doc = await api<{ paths?: Record<string, unknown> }>('GET', '/openapi.json');
    const paths = Object.keys(doc.paths ?? {});
    hasLogs = paths.some((p) => /\/applications\/\{name\}\/logs$/.test(p));
    hasEvents = paths.some((p) => /\/api\/events$/.test(p));
  } catch {
    hasLogs = false;
    hasEvents = false;
  }
  $('who').replaceChildren(
    h('span', { class: 'muted' }, `${who.name} (${who.role}${who.namespaces ? `: ${who.namespaces.join(', ')}` : ''})`),
    h('button', { type: 'button', id: 'signout', class: 'link', onclick: () => signOut() }, 'Sign out'),
  );
  startLive();
  await route();
}

// ---- live updates: the events stream when the server has it, else polling ----
let refreshTimer: ReturnType<typeof setTimeout> | null = null;
function refreshSoon(): void {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    void view?.refresh().catch(() => undefined);
  }, 200);
}
function startLive(): void {
  liveStop?.();
  let stopped = false;
  let poll: ReturnType<typeof setInterval> | null = null;
  const ctl = new AbortController();
  // Polling every few seconds without the stream; with it, a slow poll as a safety net.
  const setPoll = (ms: number) => {
    if (poll) clearInterval(poll);
    poll = setInterval(() => void view?.refresh().catch(() => undefined), ms);
  };
  const startPolling = () => setPoll(POLL_MS);
  liveStop = () => {
    stopped = true;
    ctl.abort();
    if (poll) clearInterval(poll);
  };
  if (!hasEvents) return startPolling();
  const connect = async (lastId: string | null): Promise<void> => {
    let last = lastId;
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${token ?? ''}`, accept: 'text/event-stream' };
      if (last) headers['last-event-id'] = last;
      const res = await fetch('/api/events', { headers, signal: ctl.signal });
      if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
      setPoll(SAFETY_POLL_MS);
      $('mode').textContent = 'live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of block.split('\n')) if (line.startsWith('id:')) last = line.slice(3).trim();
          if (block.split('\n').some((l) => l.startsWith('data:'))) refreshSoon();
        }
      }
    } catch {
      // fall through: poll until the stream is back
    }
    if (stopped) return;
    $('mode').textContent = 'polling';
    startPolling();
    setTimeout(() => void connect(last), 5000);
  };
  void connect(null);
}

// ---- routing ----
async function route(): Promise<void> {
  view?.stop();
  view = null;
  if (!who) return;
  const m = /^#\/apps\/([^/]+)\/([^/]+)$/.exec(location.hash);
  view = m ? appView(decodeURIComponent(m[1] as string), decodeURIComponent(m[2] as string)) : listView();
  await view.refresh();
}
// A new screen: the focus moves to its content, so keyboard and screen reader users start there.
window.addEventListener('hashchange', () => {
  void route().then(() => $('main').focus(), () => undefined);
});

function noteStatus(s: AppStatus): void {
  const key = `${s.namespace}/${s.name}`;
  const before = lastStatus.get(key);
  const now = s.status + (s.suspended ? ' (suspended)' : '');
  if (before !== undefined && before !== now) announce(`${s.name} (${s.namespace}): ${now}`);
  else if (before === undefined && lastStatus.size > 0) announce(`${s.name} (${s.namespace}) appeared: ${now}`);
  lastStatus.set(key, now);
}

async function commitMessage(s: AppStatus): Promise<string | null> {
  const sha = s.source.commit;
  if (!sha) return null;
  const key = `${s.namespace}/${s.name}@${sha}`;
  const known = commitMessages.get(key);
  if (known !== undefined) return known;
  try {
    const { syncs } = await api<{ syncs: SyncRecord[] }>('GET', `${appPath(s.namespace, s.name, '/syncs')}&limit=20`);
    const rec = syncs.find((x) => x.commit === sha && x.commitInfo);
    if (!rec?.commitInfo) return null;
    commitMessages.set(key, rec.commitInfo.message);
    return rec.commitInfo.message;
  } catch {
    return null;
  }
}

function errorBox(s: AppStatus): HTMLElement | null {
  if (s.status !== 'error' && s.status !== 'degraded') return null;
  return h('p', { class: 'error-text' }, s.message || s.status);
}

// ---- the application list ----
function listView(): { stop(): void; refresh(): Promise<void> } {
  const list = h('ul', { class: 'apps', 'aria-label': 'Applications' });
  const count = h('p', { class: 'muted' }, 'Loading…');
  $('main').replaceChildren(h('h1', {}, 'Applications'), count, list);
  document.title = 'Applications — zerverless';
  let stopped = false;
  return {
    stop: () => (stopped = true),
    async refresh() {
      const { applications, total } = await api<{ applications: AppStatus[]; total: number }>('GET', `${APPS}?limit=500`);
      if (stopped) return;
      applications.forEach(noteStatus);
      const messages = await Promise.all(applications.map((a) => commitMessage(a)));
      if (stopped) return;
      count.textContent = total === 0 ? 'No applications yet: register one with zerverless apps add.' : `${total} application${total === 1 ? '' : 's'}`;
      const focused = document.activeElement?.id;
      list.replaceChildren(
        ...applications.map((a, i) =>
          h(
            'li',
            { class: 'card', 'data-app': `${a.namespace}/${a.name}` },
            h(
              'div',
              { class: 'row' },
              h('a', { id: `app-${a.namespace}-${a.name}`, class: 'app-link', href: `#/apps/${encodeURIComponent(a.namespace)}/${encodeURIComponent(a.name)}` }, a.name),
              h('span', { class: 'muted' }, a.namespace),
              badge(a.status),
              a.suspended ? h('span', { class: 'badge suspended', title: a.suspended.reason }, 'suspended') : null,
            ),
            h('p', { class: 'commit' }, h('code', {}, short(a.source.commit)), ' ', messages[i] ?? ''),
            h('p', { class: 'muted' }, `last sync ${ago(a.lastSync)} · ${a.source.branch}`),
            errorBox(a),
          ),
        ),
      );
      if (focused) document.getElementById(focused)?.focus();
    },
  };
}

// ---- one application ----
function planChanges(p: RecordedPlan | null): string {
  if (!p) return 'no plan recorded';
  const parts: string[] = [];
  for (const f of p.functions) if (f.action !== 'unchanged') parts.push(`${f.action} ${f.path ?? ''}${f.changes?.length ? ` (${f.changes.join(', ')})` : ''}`);
  if (p.staticSite && p.staticSite !== 'unchanged') parts.push(`static site: ${p.staticSite}`);
  const st = p.static.filter((x) => x.action !== 'unchanged').length;
  if (st) parts.push(`${st} static file${st === 1 ? '' : 's'} changed`);
  for (const s of p.services ?? []) if (s.action !== 'unchanged') parts.push(`service ${s.name ?? ''}: ${s.action}`);
  return parts.length ? parts.join('; ') : 'nothing changed';
}

function section(title: string, id: string, ...children: Child[]): HTMLElement {
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

function appView(ns: string, name: string): { stop(): void; refresh(): Promise<void> } {
  let stopped = false;
  const header = h('div', { class: 'app-head' });
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' });
  const result = h('p', { id: 'action-result', class: 'muted', role: 'status' });
  const fns = h('ul', { class: 'plain' });
  const site = h('div');
  const svcs = h('ul', { class: 'plain' });
  const revs = h('ol', { class: 'plain revisions' });
  const preview = h('div', { id: 'preview' }, h('p', { class: 'muted' }, 'Loading the branch head…'));
  const logs = h('div', { id: 'logs' });
  let logCtl: AbortController | null = null;
  const canWrite = canChange(ns);
  const why = canWrite ? undefined : `your token (${who?.role ?? '?'}) may not change applications in ${ns}`;

  $('main').replaceChildren(
    ...kids(
    h('p', {}, h('a', { href: '#/' }, '← Applications')),
    header,
    actions,
    result,
    section('Functions', 'h-fns', fns),
    section('Static site', 'h-site', site),
    section('Services', 'h-svcs', svcs),
    hasLogs ? section('Logs', 'h-logs', logs) : null,
    section('Branch head preview', 'h-preview', h('button', { type: 'button', id: 'preview-refresh', onclick: () => void loadPreview() }, 'Check the branch again'), preview),
    section('Revisions', 'h-revs', revs),
    ),
  );
  document.title = `${name} — zerverless`;

  async function act(label: string, method: string, path: string, body?: unknown): Promise<void> {
    result.textContent = `${label}…`;
    for (const b of actions.querySelectorAll('button')) b.disabled = true;
    try {
      const s = await api<AppStatus>(method, appPath(ns, name, path), body);
      result.textContent = `${label}: done (${s.status}${s.suspended ? ', suspended' : ''}).`;
      announce(result.textContent);
    } catch (e) {
      result.textContent = `${label} failed: ${(e as Error).message}`;
      announce(result.textContent);
    }
    await refresh().catch(() => undefined);
    void loadPreview();
  }

  function button(id: string, label: string, onclick: () => void): HTMLButtonElement {
    return h('button', { type: 'button', id, disabled: !canWrite, title: why, onclick }, label);
  }

  async function loadPreview(): Promise<void> {
    try {
      const p = await api<PlanPreview>('GET', appPath(ns, name, '/plan'));
      if (stopped) return;
      const items: string[] = [];
      for (const f of p.functions.create) items.push(`+ function ${f}`);
      for (const f of p.functions.update) items.push(`~ function ${f.path} (${f.changes.join(', ')})`);
      for (const f of p.functions.delete) items.push(`- function ${f}`);
      if (p.static.added || p.static.changed || p.static.removed) items.push(`static: +${p.static.added} ~${p.static.changed} -${p.static.removed}`);
      for (const s of p.services.create) items.push(`+ service ${s}`);
      for (const s of p.services.update) items.push(`~ service ${s.name}: ${s.action}${s.changes.length ? ` (${s.changes.join(', ')})` : ''}`);
      for (const s of p.services.delete) items.push(`- service ${s}`);
      preview.replaceChildren(
        h('p', {}, 'Head ', h('code', {}, short(p.commit.sha)), ` ${p.commit.message}`, p.fromCommit ? ` (serving ${short(p.fromCommit)})` : ''),
        items.length ? h('pre', { class: 'diff' }, items.join('\n')) : h('p', { class: 'muted' }, 'A sync of the head changes nothing.'),
        ...p.errors.map((e) => h('p', { class: 'error-text' }, `${e.file}${e.line ? `:${e.line}` : ''}${e.col ? `:${e.col}` : ''}: ${e.code}: ${e.message}`)),
        ...p.warnings.map((w) => h('p', { class: 'muted' }, `warning: ${w}`)),
      );
    } catch (e) {
      if (!stopped) preview.replaceChildren(h('p', { class: 'error-text' }, `Preview failed: ${(e as Error).message}`));
    }
  }

  function followLog(kind: 'function' | 'service', target: string): void {
    logCtl?.abort();
    const ctl = new AbortController();
    logCtl = ctl;
    const out = h('pre', { class: 'log', role: 'log', 'aria-label': `Log of ${target}`, tabindex: '0' });
    logs.replaceChildren(
      h('p', {}, `Following ${kind} ${target} `, h('button', { type: 'button', id: 'log-stop', onclick: () => ctl.abort() }, 'Stop')),
      out,
    );
    void (async () => {
      try {
        const res = await fetch(`/api${appPath(ns, name, '/logs')}&${kind}=${encodeURIComponent(target)}&since=10m&follow=true`, {
          headers: { authorization: `Bearer ${token ?? ''}` },
          signal: ctl.signal,
        });
        if (!res.ok || !res.body) throw new Error(`${res.status} ${res.statusText}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i: number;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (!line.trim()) continue;
            let text = line;
            try {
              const o = JSON.parse(line) as Record<string, unknown>;
              const msg = o.line ?? o.message ?? o.text ?? o.msg;
              const at = o.at ?? o.time;
              text = `${typeof at === 'string' ? `${at} ` : ''}${o.stream ? `[${String(o.stream)}] ` : ''}${typeof msg === 'string' ? msg : line}`;
            } catch {
              // not JSON: shown as it came
            }
            out.append(`${text}\n`);
            if (out.childNodes.length > 2000) out.firstChild?.remove();
            out.scrollTop = out.scrollHeight;
          }
        }
      } catch (e) {
        if (!ctl.signal.aborted) out.append(`(log ended: ${(e as Error).message})\n`);
      }
    })();
  }

  async function refresh(): Promise<void> {
    const [s, { revisions }, { syncs }] = await Promise.all([
      api<AppStatus>('GET', appPath(ns, name)),
      api<{ revisions: Revision[] }>('GET', appPath(ns, name, '/revisions')),
      api<{ syncs: SyncRecord[] }>('GET', `${appPath(ns, name, '/syncs')}&limit=50`),
    ]);
    if (stopped) return;
    noteStatus(s);
    const focused = document.activeElement?.id;
    const msg = syncs.find((x) => x.commit === s.source.commit && x.commitInfo)?.commitInfo?.message ?? '';
    header.replaceChildren(
      ...kids(
      h('h1', {}, s.name, ' ', badge(s.status), s.suspended ? h('span', { class: 'badge suspended' }, 'suspended') : null),
      h('p', { class: 'muted' }, `${s.namespace} · ${s.source.repoURL} · ${s.source.branch}${s.source.path ? ` · ${s.source.path}` : ''}`),
      h('p', { class: 'commit' }, 'Serving ', h('code', { id: 'serving-commit' }, short(s.source.commit)), ` ${msg} · last sync ${ago(s.lastSync)}`),
      s.suspended ? h('p', { class: 'muted' }, `Suspended ${ago(s.suspended.at)} by ${s.suspended.by ?? 'the server'}: ${s.suspended.reason}`) : null,
      errorBox(s),
      ...(s.warnings ?? []).map((w) => h('p', { class: 'muted' }, `warning: ${w}`)),
      ),
    );
    actions.replaceChildren(
      button('do-sync', 'Sync now', () => void act('Sync', 'POST', '/sync')),
      s.suspended
        ? button('do-resume', 'Resume', () => void act('Resume', 'POST', '/resume'))
        : button('do-suspend', 'Suspend', () => void act('Suspend', 'POST', '/suspend', { reason: `suspended from the console by ${who?.name ?? '?'}` })),
    );
    fns.replaceChildren(
      ...(s.functions.length
        ? s.functions.map((f) =>
            h(
              'li',
              {},
              h('a', { href: f.url, target: '_blank', rel: 'noopener noreferrer' }, f.url),
              ` ${f.runtime} `,
              badge(f.status),
              f.message ? h('span', { class: 'muted' }, ` ${f.message}`) : null,
              hasLogs ? h('button', { type: 'button', class: 'small', 'data-log': f.path, onclick: () => followLog('function', f.path) }, 'Logs') : null,
            ),
          )
        : [h('li', { class: 'muted' }, 'none')]),
    );
    site.replaceChildren(
      s.static ? h('p', {}, h('a', { href: s.static.url, target: '_blank', rel: 'noopener noreferrer' }, s.static.url), ` ${s.static.files} files from ${s.static.dir}`) : h('p', { class: 'muted' }, 'none'),
    );
    svcs.replaceChildren(
      ...(s.services.length
        ? s.services.map((v) =>
            h(
              'li',
              {},
              h('strong', {}, v.name),
              ` ${v.version} `,
              badge(v.status),
              ' health ',
              badge(v.health),
              v.route ? h('a', { href: v.route, target: '_blank', rel: 'noopener noreferrer' }, ` ${v.route}`) : null,
              v.message ? h('span', { class: 'muted' }, ` ${v.message}`) : null,
              hasLogs ? h('button', { type: 'button', class: 'small', 'data-log': v.name, onclick: () => followLog('service', v.name) }, 'Logs') : null,
            ),
          )
        : [h('li', { class: 'muted' }, 'none')]),
    );
    revs.replaceChildren(
      ...revisions.map((r) => {
        // The sync that first deployed this revision (history is newest first): the oldest of its
        // commit that changed something, not a later rollback to it.
        const mine = syncs.filter((x) => x.commit === r.revision && x.plan && x.result === 'success' && x.trigger !== 'rollback').reverse();
        const plan = (mine.find((x) => x.plan && x.plan.summary.create + x.plan.summary.update + x.plan.summary.delete > 0) ?? mine[0])?.plan ?? null;
        return h(
          'li',
          { class: r.current ? 'card current' : 'card', 'data-revision': r.revision },
          h('p', {}, h('code', {}, short(r.revision)), ` ${r.message ?? ''}`, r.current ? h('strong', {}, ' (serving)') : null),
          h('p', { class: 'muted' }, `deployed ${ago(r.deployedAt)} by ${r.by} (${r.trigger}) · ${r.functions} functions, ${r.staticFiles} static files, ${r.services} services`),
          h('p', { class: 'plan' }, `plan: ${planChanges(plan)}`),
          r.current ? null : button(`rollback-${r.revision.slice(0, 12)}`, `Roll back to ${short(r.revision)}`, () => void act(`Roll back to ${short(r.revision)}`, 'POST', '/rollback', { revision: r.revision })),
        );
      }),
    );
    if (focused) document.getElementById(focused)?.focus();
  }

  void loadPreview();
  return {
    stop() {
      stopped = true;
      logCtl?.abort();
    },
    refresh,
  };
}

// ---- boot ----
void (async () => {
  if (!token) return renderSignIn();
  try {
    await start();
  } catch (e) {
    if (token) signOut((e as Error).message);
  }
})();
