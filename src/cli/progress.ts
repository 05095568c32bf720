// Progress of long work in the CLI (`apps add --wait`, `apps sync`, `apps rollback`): the steps of
// the application's sync as they happen, read from GET /api/events (server-sent events) and written
// to stderr as one line, e.g. `snapshot 0.2s · read 0.1s · build /api/x … 12.3s · commit 0.0s`.
// Silent when the server has no /api/events (an older server) or the stream cannot be opened.

export interface ProgressOptions {
  server: string;
  token?: string | undefined;
  app: string;
  namespace?: string | undefined;
  /** Where the line goes (default stderr). */
  write?: (s: string) => void;
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Splits a text/event-stream into events (comments and unknown fields skipped). Feed it chunks. */
export class SseParser {
  private buf = '';
  private cur: { id?: string; event?: string; data: string[] } = { data: [] };

  push(chunk: string): SseEvent[] {
    this.buf += chunk;
    const out: SseEvent[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (line === '') {
        if (this.cur.data.length) out.push({ event: this.cur.event ?? 'message', data: this.cur.data.join('\n'), ...(this.cur.id !== undefined ? { id: this.cur.id } : {}) });
        this.cur = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') this.cur.data.push(value);
      else if (field === 'event') this.cur.event = value;
      else if (field === 'id') this.cur.id = value;
    }
    return out;
  }
}

const secs = (ms: unknown): string => (typeof ms === 'number' ? `${(ms / 1000).toFixed(1)}s` : '');

/** One event as a progress item, or null when it shows nothing. */
export function progressItem(type: string, d: Record<string, unknown>): string | null {
  const result = d.result === 'error' ? ' failed' : '';
  switch (type) {
    case 'step':
      // The sync's own bookkeeping steps are left out; the others show when they end.
      if (d.phase !== 'end' || d.step === 'ownership' || d.step === 'finish') return null;
      if (d.step === 'services' && typeof d.duration === 'number' && d.duration < 1) return null;
      return `${String(d.step)} ${secs(d.duration)}${result}`;
    case 'build':
      return d.phase === 'start' ? `build ${d.service !== undefined ? `service ${String(d.service)} ${String(d.version ?? '')}` : String(d.path ?? '')} …` : `${secs(d.duration)}${result}`;
    case 'deploy':
    case 'upgrade':
      // A service (a function deploy is the prepare step, already shown).
      if (d.action === undefined) return null;
      return d.phase === 'start' ? `${type} service ${String(d.service ?? d.app)} …` : `${secs(d.duration)}${result}`;
    case 'rollback':
      return `rolled back to ${String(d.commit ?? '').slice(0, 7)}`;
    case 'health':
      return d.result === 'healthy' ? null : `health ${String(d.service ?? d.app)}: ${String(d.result)}`;
    default:
      return null;
  }
}

/**
 * Opens the event stream of the application and writes its progress while `run` runs; returns what
 * `run` returns (or throws what it throws). The stream is open before `run` starts, so no step is missed.
 */
export async function withProgress<T>(o: ProgressOptions, run: () => Promise<T>): Promise<T> {
  const write = o.write ?? ((s: string) => void process.stderr.write(s));
  const abort = new AbortController();
  const params = new URLSearchParams({ app: o.app, ...(o.namespace ? { namespace: o.namespace } : {}) });
  let printed = false;
  let reading: Promise<void> = Promise.resolve();
  let finished = false;
  let sawEnd: () => boolean = () => true;
  try {
    const res = await fetch(`${o.server.replace(/\/+$/, '')}/api/events?${params.toString()}`, {
      headers: { accept: 'text/event-stream', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
      signal: abort.signal,
    });
    if (res.ok && res.body && (res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const body = res.body;
      let pendingBuild = false;
      sawEnd = () => finished;
      reading = (async () => {
        for await (const chunk of body) {
          for (const e of parser.push(decoder.decode(chunk as Uint8Array, { stream: true }))) {
            let d: Record<string, unknown>;
            try {
              d = JSON.parse(e.data) as Record<string, unknown>;
            } catch {
              continue;
            }
            if ((e.event === 'step' && d.step === 'finish' && d.phase === 'end') || e.event === 'rollback') finished = true;
            const item = progressItem(e.event, d);
            if (item === null) continue;
            // A build's end completes its `…`; anything else is a new item.
            const continues = pendingBuild && (e.event === 'build' || e.event === 'deploy' || e.event === 'upgrade') && d.phase === 'end';
            write(continues ? ` ${item}` : `${printed ? ' · ' : ''}${item}`);
            pendingBuild = (e.event === 'build' || e.event === 'deploy' || e.event === 'upgrade') && d.phase === 'start';
            printed = true;
          }
        }
      })().catch(() => undefined);
    } else {
      await res.body?.cancel().catch(() => undefined);
    }
  } catch {
    // No stream (an older server, a proxy that buffers): the command works as before, silently.
  }
  try {
    return await run();
  } finally {
    // The sync's last events travel on another connection than its answer: wait a little for them.
    for (let i = 0; i < 40 && !sawEnd(); i++) await new Promise((r) => setTimeout(r, 50));
    abort.abort();
    await reading;
    if (printed) write('\n');
  }
}
