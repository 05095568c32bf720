// `zerverless tokens create|list|revoke`: thin commands over /api/tokens (admin only).
import { Option, type Command } from 'commander';
import type { TokenView } from './client.js';
import type { ClientOpts, CommandContext } from './context.js';

function formatTokens(tokens: TokenView[]): string {
  if (tokens.length === 0) return 'no tokens';
  const rows = tokens.map((t) => [
    t.id, t.name, t.role, t.namespaces === null ? '*' : t.namespaces.join(','), t.services ? 'yes' : 'no', t.expiresAt ?? 'never', t.createdBy ?? '-',
  ]);
  const head = ['ID', 'NAME', 'ROLE', 'NAMESPACES', 'SERVICES', 'EXPIRES', 'CREATED BY'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function addTokenCommands(program: Command, ctx: CommandContext): void {
  const tokens = program.command('tokens').description('API tokens (admin only): create, list, revoke');
  const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

  ctx.clientOptions(tokens.command('create <name>').description('make a token; its secret is shown once'))
    .addOption(new Option('--role <role>', 'admin, deployer or reader').choices(['admin', 'deployer', 'reader']).makeOptionMandatory())
    .option('--namespace <ns>', 'a namespace the token covers (repeat or comma-separate; required for deployer)', collect)
    .option('--services', 'a deployer may deploy services from apps/ (host processes)')
    .option('--expires-in <duration>', 'e.g. 12h, 30d (default: never)')
    .action(async (name: string, o: ClientOpts & { role: string; namespace?: string[]; services?: boolean; expiresIn?: string }) => {
      const r = await (await ctx.client(o)).createToken({ name, role: o.role, namespaces: o.namespace, services: o.services, expiresIn: o.expiresIn });
      ctx.show(o, r, () => [
        `token '${r.name}' (${r.role}${r.namespaces ? `, namespaces ${r.namespaces.join(', ')}` : ''}) id ${r.id}; it is shown once:`,
        r.token,
      ].join('\n'));
    });

  ctx.clientOptions(tokens.command('list').description('the tokens (never their secrets)'))
    .action(async (o: ClientOpts) => {
      const r = await (await ctx.client(o)).listTokens();
      ctx.show(o, r, () => formatTokens(r.tokens));
    });

  ctx.clientOptions(tokens.command('revoke <id>').description('revoke a token at once'))
    .action(async (id: string, o: ClientOpts) => {
      await (await ctx.client(o)).revokeToken(id);
      if (!o.json) ctx.out(`revoked ${id}`);
    });
}
