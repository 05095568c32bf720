// The `zerverless` command line: serve, validate, apps. Commands are thin; main() returns the exit
// code and only bin/zerverless.js sets it on the process.
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { toZvError } from '../errors/registry.js';
import { camel, fromConfigFile, fromEnv, resolveServeConfig, SETTINGS, type RawSettings, type SettingName } from '../server/config.js';
import { ApiClient, ApiError } from './client.js';
import { DEFAULT_SERVER, resolveEndpoint, saveLogin } from './login.js';
import { addTokenCommands } from './tokens.js';
import type { ClientOpts as BaseClientOpts } from './context.js';
import { addSecretsCommands } from './secrets.js';
import { addLogsCommand } from './logs.js';
import { withProgress } from './progress.js';
import { formatApp, formatHistory, formatList, formatRevisions } from './format.js';
import { runValidate } from './validate.js';
import { formatPreview } from './diff.js';
import { runServe } from './serve.js';

type ClientOpts = BaseClientOpts & { namespace?: string };

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function readConfigFile(): Promise<RawSettings> {
  let text: string;
  try {
    text = await readFile('zerverless.config.yaml', 'utf8');
  } catch {
    return {};
  }
  return fromConfigFile(text);
}

function clientOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <url>', `zerverless server (ZV_SERVER, else the one of 'zerverless login', else ${DEFAULT_SERVER})`))
    .addOption(new Option('--token <token>', "API token (ZV_TOKEN, else the one of 'zerverless login', else <data-dir>/admin-token for a server on this host)"))
    .addOption(new Option('--data-dir <dir>', 'data dir of a server on this host, whose admin-token file is used when no token is given'))
    .option('--json', 'print the API answer as JSON');
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  // `zerverless … | head`: a reader that stops early is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(exitCode);
    throw e;
  });
  const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
  const json = argv.includes('--json');
  const fail = (e: unknown): void => {
    const { code, message } = e instanceof ApiError ? e : toZvError(e);
    // With --json the error is JSON too (the API's shape), on stdout where the answer would be.
    if (json) out(JSON.stringify({ error: { code, message } }, null, 2));
    else process.stderr.write(`error: ${code}: ${message}\n`);
    exitCode = 1;
  };
  const client = async (o: ClientOpts) => {
    const e = await resolveEndpoint(o);
    return new ApiClient(e.server, e.token);
  };
  const show = (o: ClientOpts, data: unknown, human: () => string) => out(o.json ? JSON.stringify(data, null, 2) : human());

  const program = new Command('zerverless')
    .description('GitOps for functions, static sites and Node services')
    .version(await packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError();

  const serve = program.command('serve').description('run the API, gateway and reconciler in one process');
  serve
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default 8000)')
    .option('--data-dir <dir>', 'state, clones and blobs (default ./.zerverless)')
    .option('--poll-interval <duration>', 'how often each branch is checked: 500ms, 30s, 5m, 1h (default 5m)')
    .option('--drift-interval <duration>', 'how often what runs is checked against what was deployed and repaired: 30s, 1m, 1h, or 0 / off (default 1m)')
    .option('--function-idle <duration>', 'unload a Lua, JS or Python function after this long without a call (the next call loads it again): 30s, 5m, 1h, or 0 / off (default 5m)')
    .option('--max-git-processes <n>', 'git processes running at once; more wait for a slot (default 4)')
    .option('--max-syncs <n>', 'application syncs running at once; more wait their turn, shown as syncing (default 4)')
    .option('--revisions <n>', 'deployed revisions kept per application for rollback (default 20)')
    .option('--python-workers <n>', 'worker processes at most per Python function; another starts while calls wait (default 4)')
    .option('--python-max-workers <n>', 'Python worker processes at most in all: a function with none takes the worker idle the longest from another (which keeps its code loaded), or its call waits, within its timeout, until one frees (default 4 per core, at least 8; up to 4 spare workers started ahead of calls are not counted)')
    .option('--allow-file-repos', 'accept file:// and local-path repository URLs')
    .option('--max-body <size>', 'request body limit, e.g. 10MiB (default 10 MiB)')
    .option('--max-response <size>', 'response limit of a Lua, JS or Python function, e.g. 10MiB (default 10 MiB)')
    .option('--log-level <level>', 'trace, debug, info, warn, error (default info)')
    .option('--repo <url>', 'register one bootstrap application at start')
    .option('--branch <branch>', 'branch of --repo (default main)')
    .option('--apps-dir <dir>', 'apps folder of --repo (default apps)')
    .option('--namespace <ns>', 'namespace of --repo (default default)')
    .option('--name <name>', 'application name of --repo (default: from the URL)')
    .option('--example', 'also serve the bundled example application')
    .option('--public-metrics', 'serve /metrics without a token')
    .option('--cors-origin <origins>', 'browser origins allowed to call the API, comma-separated (default: none)')
    .option('--webhook-secret <secret>', 'secret that signs webhook deliveries (POST /hooks/...); prefer ZV_WEBHOOK_SECRET or --webhook-secret-file, which keep it out of the process list')
    .option('--webhook-secret-file <file>', 'read the webhook secret from this file')
    .option('--admin-token-file <file>', 'read the admin token from this file (or set ZV_ADMIN_TOKEN); default: made on first start in <data-dir>/admin-token')
    .option('--notify <url>', 'POST every application\'s status changes (synced, error, degraded, recovered, rolledBack) to this URL; repeatable', (v: string, prev?: string) => (prev ? `${prev},${v}` : v))
    .option('--notify-secret <secret>', 'sign notifications with HMAC-SHA256 (X-Zerverless-Signature); prefer ZV_NOTIFY_SECRET')
    .action(async (opts: Record<string, string | boolean>) => {
      const flags: RawSettings = {};
      for (const s of SETTINGS) {
        const key = camel(s);
        if (opts[key] !== undefined) flags[s as SettingName] = opts[key];
      }
      const config = resolveServeConfig(flags, fromEnv(process.env), await readConfigFile(), { adminToken: process.env.ZV_ADMIN_TOKEN });
      exitCode = await runServe(config);
    });

  program
    .command('validate [dir]')
    .description("check zerverless.yaml (and apps/*/app.*) in DIR and compile the functions' code; exit 1 with file:line:col lines when invalid")
    .option('--json', 'print the diagnostics as JSON')
    .option('--no-compile', "do not compile the functions' code (compiling needs the runtimes: python3 and bwrap for Python)")
    .action(async (dir: string | undefined, opts: { json?: boolean; compile?: boolean }) => {
      exitCode = await runValidate(dir ?? '.', opts, out);
    });

  const apps = program.command('apps').description('manage applications through the HTTP API');
  clientOptions(apps.command('list').description('list applications'))
    .option('--namespace <ns>', 'only this namespace')
    .option('--limit <n>', 'at most n', (v) => Number(v))
    .option('--offset <n>', 'skip n', (v) => Number(v))
    .action(async (o: ClientOpts & { limit?: number; offset?: number }) => {
      const r = await (await client(o)).list({ namespace: o.namespace, limit: o.limit, offset: o.offset });
      show(o, r, () => formatList(r.applications, r.total));
    });
  clientOptions(apps.command('get <name>').description('show one application'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .action(async (name: string, o: ClientOpts) => {
      const r = await (await client(o)).get(name, o.namespace);
      show(o, r, () => formatApp(r));
    });
  clientOptions(apps.command('add <name> <repoURL>').description('register an application'))
    .requiredOption('--namespace <ns>', 'namespace to serve it under')
    .option('--branch <branch>', 'branch to follow', 'main')
    .option('--path <path>', 'folder of the repository holding zerverless.yaml')
    .option('--notify <url>', 'POST its status changes (synced, error, degraded, recovered, rolledBack) to this URL as JSON; repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--paths <glob>', 'monorepos: sync on a poll or webhook only when a changed file matches this glob (from the repository root; its zerverless.yaml and apps/ always count); repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--wait', 'wait for the first sync to finish, showing its steps (exit 1 when it fails)')
    .option('--quiet', 'with --wait: do not show the steps')
    .action(async (name: string, repoURL: string, o: ClientOpts & { branch: string; path?: string; notify?: string[]; paths?: string[]; wait?: boolean; quiet?: boolean }) => {
      const notify = o.notify?.map((url) => ({ url }));
      const c = await client(o);
      const add = () => c.add({ name, namespace: o.namespace as string, source: { repoURL, branch: o.branch, path: o.path, ...(o.paths ? { paths: o.paths } : {}) }, ...(notify ? { notify } : {}) });
      if (o.wait) {
        const settle = async () => {
          let s = await add();
          while (s.status === 'pending' || s.status === 'syncing') {
            await new Promise((r) => setTimeout(r, 300));
            s = await c.get(name, s.namespace);
          }
          return s;
        };
        const r = o.quiet || o.json ? await settle() : await withProgress({ ...(await resolveEndpoint(o)), app: name, namespace: o.namespace as string }, settle);
        show(o, r, () => formatApp(r));
        if (r.status === 'error') exitCode = 1;
        return;
      }
      const r = await add();
      show(o, r, () => `registered ${r.namespace}/${r.name} (${r.status}); the first sync runs in the background`);
    });
  clientOptions(apps.command('sync <name>').description('sync now and wait for the result'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .option('--async', 'do not wait for the sync to finish')
    .option('--quiet', 'do not show the steps as they happen')
    .action(async (name: string, o: ClientOpts & { async?: boolean; quiet?: boolean }) => {
      const c = await client(o);
      const r = o.async || o.quiet || o.json ? await c.sync(name, o.namespace, o.async)
        : await withProgress({ ...(await resolveEndpoint(o)), app: name, namespace: o.namespace }, () => c.sync(name, o.namespace));
      show(o, r, () => formatApp(r));
      if (r.status === 'error') exitCode = 1;
    });
  clientOptions(apps.command('history <name>').description('recent syncs with their plans (--json for the full plans)'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .option('--limit <n>', 'at most n syncs (default 20)', (v) => Number(v))
    .action(async (name: string, o: ClientOpts & { limit?: number }) => {
      const r = await (await client(o)).history(name, o.namespace, o.limit);
      show(o, r, () => formatHistory(r.syncs));
    });
  clientOptions(apps.command('diff <name>').description('what a sync would do (functions, static files, services, validation errors); changes nothing. Exit 1 when the revision would fail to sync'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .option('--revision <rev>', 'a branch or a full commit SHA (default: the branch head)')
    .action(async (name: string, o: ClientOpts & { revision?: string }) => {
      const r = await (await client(o)).plan(name, o.namespace, o.revision);
      show(o, r, () => formatPreview(r));
      if (r.errors.length) exitCode = 1;
    });
  clientOptions(apps.command('suspend <name>').description('pause automatic syncs (poll, webhooks, retries, drift repair); an explicit sync still runs'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .option('--reason <text>', 'why (shown in the status)')
    .action(async (name: string, o: ClientOpts & { reason?: string }) => {
      const r = await (await client(o)).suspend(name, o.namespace, o.reason);
      show(o, r, () => formatApp(r));
    });
  clientOptions(apps.command('resume <name>').description('resume automatic syncs (the branch is checked at once)'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .action(async (name: string, o: ClientOpts) => {
      const r = await (await client(o)).resume(name, o.namespace);
      show(o, r, () => formatApp(r));
    });
  clientOptions(apps.command('revisions <name>').description('the kept deployed revisions, newest first (* = served now)'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .action(async (name: string, o: ClientOpts) => {
      const r = await (await client(o)).revisions(name, o.namespace);
      show(o, r, () => formatRevisions(r.revisions));
    });
  clientOptions(apps.command('rollback <name> <revision>').description('switch back to a kept revision without git (a unique commit prefix will do) and suspend automatic syncs until resume or an explicit sync'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .option('--quiet', 'do not show the steps as they happen')
    .action(async (name: string, revision: string, o: ClientOpts & { quiet?: boolean }) => {
      const c = await client(o);
      const r = o.quiet || o.json ? await c.rollback(name, revision, o.namespace)
        : await withProgress({ ...(await resolveEndpoint(o)), app: name, namespace: o.namespace }, () => c.rollback(name, revision, o.namespace));
      show(o, r, () => formatApp(r));
      if (r.status === 'error') exitCode = 1;
    });
  clientOptions(apps.command('set <name>').description("change an application's repository, branch or folder; what it deployed serves until the new source syncs"))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .option('--repo <url>', 'repository URL')
    .option('--branch <branch>', 'branch to follow')
    .option('--path <path>', 'folder of the repository holding zerverless.yaml (\'\' for the root)')
    .option('--paths <glob>', 'monorepo globs replacing the current ones (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--no-paths', 'remove the monorepo globs')
    .action(async (name: string, o: ClientOpts & { repo?: string; branch?: string; path?: string; paths?: string[] | false }) => {
      const source = { ...(o.repo !== undefined ? { repoURL: o.repo } : {}), ...(o.branch !== undefined ? { branch: o.branch } : {}), ...(o.path !== undefined ? { path: o.path } : {}),
        ...(o.paths !== undefined ? { paths: o.paths === false ? [] : o.paths } : {}) };
      if (Object.keys(source).length === 0) throw new ApiError(400, 'BAD_REQUEST', 'give at least one of --repo, --branch, --path, --paths, --no-paths');
      const r = await (await client(o)).setSource(name, source, o.namespace);
      show(o, r, () => `${r.namespace}/${r.name} now follows ${r.source.repoURL}#${r.source.branch}${r.source.path ? ` (${r.source.path})` : ''}; a sync runs in the background`);
    });
  clientOptions(apps.command('delete <name>').description('remove an application and everything it deployed'))
    .option('--namespace <ns>', 'namespace, when the name exists in several')
    .action(async (name: string, o: ClientOpts) => {
      await (await client(o)).delete(name, o.namespace);
      if (!o.json) out(`deleted ${name}`);
    });

  program
    .command('login')
    .description("check a token against a server and keep both for later commands (in the user's config dir, mode 0600)")
    .requiredOption('--server <url>', 'zerverless server')
    .addOption(new Option('--token <token>', 'API token (or ZV_TOKEN)'))
    .action(async (o: { server: string; token?: string }) => {
      const token = o.token ?? process.env.ZV_TOKEN;
      if (!token) throw new ApiError(400, 'BAD_REQUEST', 'give the token with --token or ZV_TOKEN');
      const who = await new ApiClient(o.server, token).whoami();
      const file = await saveLogin(o.server, token);
      out(`logged in to ${o.server} as '${who.name}' (${who.role}${who.namespaces ? `, namespaces ${who.namespaces.join(', ')}` : ''}); kept in ${file}`);
    });

  addTokenCommands(program, { clientOptions, client, show, out });
  addSecretsCommands(program, { clientOptions, client, show, out });

  addLogsCommand(program, { clientOptions, client, show, out });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    fail(e);
  }
  return exitCode;
}
