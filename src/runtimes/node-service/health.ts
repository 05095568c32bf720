// One health check of a service process: http (GET path answers 2xx within the timeout), tcp (a
// connection opens) or custom (`sh -c command` with the service's env and PORT exits 0 in time).
import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthSpec } from '../../core/services/types.js';
import { runCommand } from './exec.js';

export interface HealthResult {
  ok: boolean;
  /** Why it failed (or the status that passed), for the state message. */
  detail: string;
}

export interface CheckTarget {
  /** The process's PORT (health.port overrides it). */
  port: number | null;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function checkHealth(h: HealthSpec, t: CheckTarget): Promise<HealthResult> {
  const port = h.port ?? t.port;
  const timeout = h.timeout > 0 ? h.timeout : 5000;
  if (h.type === 'custom') return checkCommand(h.command ?? '', timeout, t);
  if (port === null) return Promise.resolve({ ok: false, detail: 'no port to check' });
  return h.type === 'tcp' ? checkTcp(port, timeout) : checkHttp(port, h.path || '/', timeout);
}

function checkHttp(port: number, path: string, timeout: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: HealthResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = request({ host: '127.0.0.1', port, path: path.startsWith('/') ? path : `/${path}`, method: 'GET', agent: false,
      headers: { 'user-agent': 'zerverless-health', connection: 'close' } }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      finish(status >= 200 && status < 300 ? { ok: true, detail: `GET ${path}: ${status}` } : { ok: false, detail: `GET ${path} answered ${status}` });
    });
    const timer = setTimeout(() => finish({ ok: false, detail: `GET ${path} did not answer within ${timeout} ms` }), timeout);
    req.on('error', (e) => finish({ ok: false, detail: `GET ${path} on port ${port}: ${e.message}` }));
    req.end();
  });
}

function checkTcp(port: number, timeout: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const finish = (r: HealthResult): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, detail: `port ${port} did not accept within ${timeout} ms` }), timeout);
    sock.once('connect', () => finish({ ok: true, detail: `port ${port} accepts connections` }));
    sock.once('error', (e) => finish({ ok: false, detail: `port ${port}: ${e.message}` }));
  });
}

async function checkCommand(command: string, timeout: number, t: CheckTarget): Promise<HealthResult> {
  if (!command.trim()) return { ok: false, detail: 'custom health check without a command' };
  try {
    const r = await runCommand({ cmd: 'sh', args: ['-c', command], cwd: t.cwd, env: t.env, timeoutMs: timeout, what: 'health' });
    if (r.timedOut) return { ok: false, detail: `health command did not finish within ${timeout} ms` };
    if (r.code === 0) return { ok: true, detail: 'health command exited 0' };
    const last = r.tail.split('\n').pop() ?? '';
    return { ok: false, detail: `health command exited ${r.code ?? r.signal}${last ? `: ${last}` : ''}` };
  } catch (e) {
    return { ok: false, detail: `cannot run the health command: ${e instanceof Error ? e.message : String(e)}` };
  }
}
