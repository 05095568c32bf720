// `zerverless logs APP [FUNCTION|SERVICE] [-f] [--since 10m] [--tail N]` (PRODUCT.md §12): the kept
// output of an application's functions (a path, `/api/hello`) or of one service (a name), one line
// each as `<ISO time> <function|service> <stream> <text>`; -f keeps printing new lines until Ctrl-C.
import type { Command } from 'commander';
import { ZvError } from '../errors/registry.js';
import type { ClientOpts, CommandContext } from './context.js';

interface LogsOpts extends ClientOpts {
  namespace?: string;
  tail?: number;
  since?: string;
  follow?: boolean;
}

interface Line {
  at?: string;
  stream?: string;
  line?: string;
  function?: string;
  service?: string;
}

/** The query of GET …/logs for a target: a path is a function, anything else a service. */
export function logsQuery(target: string | undefined, o: { namespace?: string; tail?: number; since?: string; follow?: boolean }): string {
  const sp = new URLSearchParams();
  if (target !== undefined) sp.set(target.startsWith('/') ? 'function' : 'service', target);
  if (o.namespace !== undefined) sp.set('namespace', o.namespace);
  if (o.since !== undefined) sp.set('since', o.since);
  if (o.tail !== undefined) sp.set('tail', String(o.tail));
  if (o.follow) sp.set('follow', 'true');
  const s = sp.toString();
  return s ? `?${s}` : '';
}

/** One kept line as the CLI prints it. */
export function formatLogLine(l: Line): string {
  return `${l.at ?? ''} ${l.function ?? l.service ?? ''} ${l.stream ?? ''} ${l.line ?? ''}`;
}

export function addLogsCommand(program: Command, ctx: CommandContext): void {
  ctx.clientOptions(program.command('logs <app> [target]')
    .description("kept output of the application's functions, of one function (a path: /api/hello) or of one service (a name)"))
    .option('--namespace <ns>', 'namespace, when the application name exists in several')
    .option('--tail <n>', 'only the last n lines', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new ZvError('BAD_REQUEST', '--tail must be a non-negative integer');
      return n;
    })
    .option('--since <when>', 'only lines since a duration ago (10s, 10m, 2h, 1d) or an ISO time')
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .action(async (app: string, target: string | undefined, o: LogsOpts) => {
      const client = await ctx.client(o);
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await client.stream(`/gitops/applications/${encodeURIComponent(app)}/logs${logsQuery(target, o)}`, (raw) => {
          ctx.out(o.json ? raw : formatLogLine(JSON.parse(raw) as Line));
        }, abort.signal);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
