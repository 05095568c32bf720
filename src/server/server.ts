// The composition root: builds every adapter, wires them around the core and starts HTTP.
// This is the one place that knows which store, source and runtimes are in use.
import { mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { Hono } from 'hono';
import { ZvError, toZvError } from '../errors/registry.js';
import type { FunctionRuntimeKind } from '../core/desired.js';
import type { FunctionRuntime } from '../runtimes/types.js';
import { LuaRuntime } from '../runtimes/lua/index.js';
import { JsRuntime } from '../runtimes/js/index.js';
import { PythonRuntime } from '../runtimes/python/index.js';
import { DockerRuntime, instanceOf } from '../runtimes/docker/index.js';
import { GitSource } from '../sources/git/index.js';
import { validateRepoUrl } from '../git-cli/url.js';
import { setMaxGitProcesses } from '../git-cli/limit.js';
import { openSqliteStore } from '../store/sqlite/store.js';
import { FsBlobStore } from '../store/blobs/fs.js';
import { ServingTable } from '../serving/table.js';
import { createGateway } from '../gateway/http.js';
import { clientErrorHandler } from '../gateway/client-error.js';
import { closeIdleAfterPoll } from '../gateway/keep-alive.js';
import { lingerLimits } from '../gateway/linger.js';
import { managementApi } from '../api/index.js';
import { credentialsApi } from '../api/credentials.js';
import { CredentialService } from '../credentials/service.js';
import { publicRepoUrl, registerWithCredential } from '../credentials/registration.js';
import { loadMasterKey, type MasterKey } from '../secrets/master-key.js';
import { apiGuard } from '../api/guard.js';
import { TokenService } from '../auth/tokens.js';
import { ensureAdminToken, type AdminTokenOutcome } from '../auth/bootstrap.js';
import { Reconciler } from '../reconciler/reconciler.js';
import { Notifier } from '../notify/notifier.js';
import { TreeDesiredReader } from '../sources/desired-reader.js';
import { AgeKeyring } from '../secrets/keyring.js';
import { secretsApi } from '../api/secrets.js';
import { NodeServiceRuntime, PortPool } from '../runtimes/node-service/index.js';
import type { HostedServiceRuntime } from '../apply/services/host.js';
import { importAppliedFiles } from '../apply/services/state-file.js';
import { Metrics } from '../telemetry/metrics.js';
import { observeEvents } from '../telemetry/observe.js';
import { startTracing } from '../telemetry/tracing.js';
import { createLogger, type Logger } from '../telemetry/log.js';
import type { BootstrapRepo, ServeConfig } from './config.js';
import { validateAppName, validateNamespace } from '../core/names.js';
import type { AppRecord, Store } from '../store/types.js';
import { lockDataDir } from './lock.js';
import { LogStore, type LogStoreOptions } from '../logs/store.js';
import { webhooksApp } from '../hooks/index.js';
import { EventHub, EventTickets, eventsApi } from '../api/events.js';
import { webhookSecretAad } from '../core/webhooks.js';
import { consoleApp } from '../ui/console.js';

export interface RunningServer {
  url: string;
  app: Hono;
  store: Store;
  reconciler: Reconciler;
  /** Where the admin token is, and the token itself when this start made it (print it once). */
  adminToken: AdminTokenOutcome;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Replace or add runtimes (tests, embedding). */
  runtimes?: Map<FunctionRuntimeKind, FunctionRuntime>;
  metrics?: Metrics;
  /** Repository URLs accepted without --allow-file-repos (the bundled example's local repository). */
  trustedRepoUrls?: string[];
  /** Replace the Node service runtime (tests, embedding). */
  serviceRuntime?: (dir: string, namespace: string) => HostedServiceRuntime;
  /** Bounds of the kept function logs (default: src/logs/store.ts). */
  logs?: Omit<LogStoreOptions, 'dir'>;
}

/** The API's repository URL policy: the git policy, and never a path inside the data dir. */
function repoUrlChecker(allowFileRepos: boolean, dataDir: string): (url: string) => void {
  return (url) => {
    validateRepoUrl(url, { allowFileRepos });
    const local = url.startsWith('file://') ? fileURLToPath(url) : url.startsWith('/') ? url : null;
    if (local !== null) {
      const p = resolve(local);
      if (p === dataDir || p.startsWith(`${dataDir}${sep}`)) {
        throw new ZvError('INVALID_REPO_URL', `${url} is inside the server's data directory, which holds other applications' clones`);
      }
    }
  };
}

/** The webhook secret file's first line; CONFIG_INVALID when it cannot be read or is empty. */
async function readSecretFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ZvError('CONFIG_INVALID', `webhook-secret-file: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const secret = text.split(/\r?\n/, 1)[0]?.trim() ?? '';
  if (secret === '') throw new ZvError('CONFIG_INVALID', `webhook-secret-file: ${file} is empty`);
  return secret;
}

/**
 * An application's own webhook secret, opened. One that no longer opens (another master key) never
 * verifies: it must not fall back to the server secret, which the application opted out of.
 */
function openWebhookSecret(app: AppRecord, key: MasterKey, logger: Logger): string | null {
  if (!app.webhookSecret) return null;
  try {
    return key.open(app.webhookSecret, webhookSecretAad(app));
  } catch (e) {
    logger.error({ app: app.name, namespace: app.namespace }, `the application's webhook secret does not open: ${toZvError(e).message}`);
    return randomBytes(32).toString('hex');
  }
}

async function availableRuntimes(all: FunctionRuntime[], logger: Logger): Promise<Map<FunctionRuntimeKind, FunctionRuntime>> {
  const out = new Map<FunctionRuntimeKind, FunctionRuntime>();
  for (const rt of all) {
    const av = await rt.available();
    if (av.ok) out.set(rt.name, rt);
    else if (rt.name === 'docker') {
      // The engine may just not be up yet: keep the runtime; each load checks again, and syncs
      // that fail for it are retried by the poll.
      logger.warn({ runtime: rt.name }, `runtime ${rt.name} is unavailable for now: ${av.reason}`);
      out.set(rt.name, rt);
    } else {
      logger.warn({ runtime: rt.name }, `runtime ${rt.name} is unavailable: ${av.reason}`);
      await rt.close();
    }
  }
  return out;
}

/** The `--repo` application: checked like an API registration; an existing one is kept (drift is logged). */
async function registerBootstrap(
  repo: BootstrapRepo, reconciler: Reconciler, store: Store, logger: Logger, checkUrl: (url: string) => void, credentials: CredentialService,
): Promise<void> {
  // A user:password@ in --repo becomes a credential; the URL is stored, shown and logged without it.
  const shownUrl = publicRepoUrl(repo.url);
  try {
    const nsErr = validateNamespace(repo.namespace);
    if (nsErr) throw new ZvError('INVALID_NAMESPACE', `--namespace: ${nsErr}`);
    const nameErr = validateAppName(repo.name);
    if (nameErr) throw new ZvError('VALIDATION_FAILED', `--name: ${nameErr}`);
    const existing = await store.getApp(repo.namespace, repo.name);
    if (existing) {
      if (existing.source.repoURL !== shownUrl || existing.source.branch !== repo.branch) {
        logger.warn({ app: repo.name, namespace: repo.namespace, registered: existing.source, configured: { repoURL: shownUrl, branch: repo.branch } },
          'the bootstrap application is registered with another repository or branch; keeping the registered one (delete it to change)');
      }
      return;
    }
    checkUrl(repo.url);
    await registerWithCredential({ store, credentials }, { name: repo.name, namespace: repo.namespace, repoURL: repo.url, createdBy: null },
      (repoURL) => reconciler.register({ name: repo.name, namespace: repo.namespace, source: { repoURL, branch: repo.branch, path: '' } }));
    logger.info({ repo: shownUrl, namespace: repo.namespace, app: repo.name }, 'registered the bootstrap application');
  } catch (e) {
    logger.error({ repo: shownUrl }, `cannot register the bootstrap application: ${toZvError(e).message}`);
  }
}

export async function startServer(config: ServeConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true });

  const lock = await lockDataDir(dataDir);
  let store: Store;
  let adminToken: AdminTokenOutcome;
  let masterKey: Awaited<ReturnType<typeof loadMasterKey>>;
  let keyring: AgeKeyring;
  try {
    // Seals git credentials at rest: ZV_MASTER_KEY, or <data-dir>/master.key (made on first start).
    masterKey = await loadMasterKey(dataDir);
    // Decrypts functions' envFrom files: <data-dir>/age.key (made on first start).
    keyring = await AgeKeyring.load(dataDir);
    store = openSqliteStore(join(dataDir, 'state.db'));
  } catch (e) {
    await lock.release();
    throw e;
  }
  const tokenService = new TokenService(store);
  try {
    adminToken = await ensureAdminToken(tokenService, dataDir, { token: config.adminToken, file: config.adminTokenFile });
  } catch (e) {
    await store.close();
    await lock.release();
    throw e;
  }
  const blobs = new FsBlobStore(join(dataDir, 'blobs'), { gcGraceMs: 10 * 60_000 });
  // What functions print, kept per function and bounded (<data-dir>/logs; PRODUCT.md §12).
  const logs = await LogStore.open({ ...opts.logs, dir: join(dataDir, 'logs') });
  const credentials = new CredentialService({ store, key: masterKey, tmpDir: join(dataDir, 'git', 'tmp') });
  // Process-wide: every git process (the git source, the Node service runtime's fetches) takes a slot.
  setMaxGitProcesses(config.maxGitProcesses);
  const source = new GitSource({
    dataDir, allowFileRepos: config.allowFileRepos, trustedUrls: opts.trustedRepoUrls ?? [], credentials: (ref) => credentials.resolve(ref),
  });
  // Containers carry an instance label derived from the data dir: servers sharing an engine never
  // adopt or remove each other's containers.
  const instance = instanceOf(dataDir);
  const runtimes = opts.runtimes ?? (await availableRuntimes([
    new LuaRuntime({ maxResponseBytes: config.maxResponseBytes }), new JsRuntime({ maxResponseBytes: config.maxResponseBytes }),
    new PythonRuntime({ maxResponseBytes: config.maxResponseBytes, workersPerFunction: config.pythonWorkers, maxWorkers: config.pythonMaxWorkers }), new DockerRuntime({ instance, log: logger.child({ component: 'docker' }) }),
  ], logger));
  const serving = new ServingTable();
  const servicePorts = new PortPool(40000, 44999);
  const metrics = opts.metrics ?? new Metrics();
  // Notifications (--notify, per application `notify`): queued per URL, never in a sync's way.
  const notifier = new Notifier({
    urls: config.notifyUrls ?? [], secret: config.notifySecret ?? null, unseal: (sealed, aad) => masterKey.open(sealed, aad),
    logger: logger.child({ component: 'notify' }), count: (result) => metrics.notifications.inc({ result }),
  });
  const reconciler = new Reconciler({
    store,
    source,
    // --apps-dir names the services folder of every application (default apps).
    reader: new TreeDesiredReader(config.repo?.appsDir ?? 'apps', keyring),
    runtimes,
    serving,
    blobs,
    logger,
    metrics,
    pollIntervalMs: config.pollIntervalMs,
    maxSyncs: config.maxSyncs,
    driftIntervalMs: config.driftIntervalMs,
    functionIdleMs: config.functionIdleMs,
    revisionsKept: config.revisions,
    functionOutput: (fn, stream, line) => logs.write(fn, stream, line),
    removeLogs: (a) => logs.removeApp(a.namespace, a.name),
    onNotify: (a, n) => notifier.emit(a, n),
    ...(config.retry ? { retry: config.retry } : {}),
    dataDir,
    secrets: keyring,
    // One port pool for the service runtimes of every application, so two never pick one port.
    serviceRuntime: opts.serviceRuntime ?? ((dir, namespace, appName) => new NodeServiceRuntime({
      dataDir: dir, namespace, application: appName, logger: logger.child({ component: 'node-services', namespace }), allowFileRepos: config.allowFileRepos, ports: servicePorts,
      // After a takeover the old process keeps answering requests already sent to it for a while.
      drainMs: 15_000,
      onLog: (service, stream, line) => logs.write({ namespace, app: appName, path: service, secrets: [] }, stream, line),
    })),
  });
  // Live events (GET /api/events): the telemetry channels and status changes, per token's namespaces.
  const events = new EventHub({
    statusOf: async (namespace, name, settled) => {
      const a = await store.getApp(namespace, name);
      return a ? reconciler.status(a, { settled }) : null;
    },
  });
  const eventTickets = new EventTickets();
  const checkRepoUrl = repoUrlChecker(config.allowFileRepos, dataDir);
  const api = managementApi({ store, reconciler, checkRepoUrl, tokens: tokenService, credentials, logs, sealSecret: (plain, aad) => masterKey.seal(plain, aad), extra: { '/credentials': credentialsApi({ store, credentials }), '/secrets': secretsApi({ keyring }), '/events': eventsApi({ hub: events, tickets: eventTickets }) } });
  const guard = apiGuard({ tokens: tokenService, metrics, logger, corsOrigins: config.corsOrigins, redeemTicket: (t) => eventTickets.redeem(t) });
  // Webhooks are signed, not token-authenticated: mounted beside the API, outside its guard.
  const hooks = webhooksApp({
    apps: async () => (await store.listApps({})).apps,
    appSecret: (app) => openWebhookSecret(app, masterKey, logger),
    serverSecret: config.webhookSecret ?? (config.webhookSecretFile ? await readSecretFile(config.webhookSecretFile) : null),
    sync: (appId, cause) => void reconciler.sync(appId, { cause }).catch(() => undefined),
    metrics,
    logger: logger.child({ component: 'webhooks' }),
  });
  let closing = false;
  // Function requests are answered on the raw node path, ahead of the app (gateway/function-path.ts).
  const { app, listener } = createGateway({
    hooks, console: consoleApp(),
    serving, blobs, metrics, api, guard, publicMetrics: config.publicMetrics, ready: () => !closing, maxBodyBytes: config.maxBodyBytes,
    maxResponseBytes: config.maxResponseBytes,
  });

  // Serve the last synced state before accepting any request: no request (and no API call) ever
  // sees a half-restored server. Applied service specs an older zerverless kept in
  // <data-dir>/services/<id>/applied.json move into the store first (schema v5).
  await importAppliedFiles(store, dataDir, logger.child({ component: 'services' }));
  await reconciler.restore();

  let server: Server;
  try {
    server = await new Promise<Server>((resolveListen, reject) => {
      const s = createServer(listener);
      // 431/400 for what the parser refuses, in the error shape, closed without a reset
      s.on('clientError', clientErrorHandler(lingerLimits(config.maxBodyBytes)));
      // a request sent on an idle kept-alive connection while the loop was blocked is not reset
      closeIdleAfterPoll(s);
      s.once('error', (e) => reject(new ZvError('CONFIG_INVALID', `cannot listen on ${config.host}:${config.port}: ${e.message}`)));
      s.once('listening', () => resolveListen(s));
      s.listen(config.port, config.host);
    });
  } catch (e) {
    // Nothing may keep the process (or state.db, or the lock) alive after a failed start.
    closing = true;
    events.close();
    await reconciler.stop();
    await notifier.close();
    await logs.close();
    await Promise.all([...runtimes.values()].map((rt) => rt.close().catch(() => undefined)));
    await source.close();
    await store.close();
    await lock.release();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;

  // Sync, git and build metrics from the telemetry events; traces when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set.
  const stopObserving = observeEvents(metrics, { functionsOf: (ns, name) => [...(serving.getApp(`${ns}/${name}`)?.functions.values() ?? [])].map((f) => f.path) });
  const tracing = await startTracing({ onError: (message) => logger.warn({ component: 'telemetry' }, `trace export: ${message}`) });
  await reconciler.startPolling();
  if (config.repo) await registerBootstrap(config.repo, reconciler, store, logger, (u) => (opts.trustedRepoUrls?.includes(u) ? undefined : checkRepoUrl(u)), credentials);

  let closed = false;
  return {
    url,
    app,
    store,
    reconciler,
    adminToken,
    async close() {
      if (closed) return;
      closed = true;
      closing = true;
      // Event streams end now: the drain below does not wait for them.
      events.close();
      // Ends the log followers first: their open responses would hold server.close.
      await logs.close();
      await reconciler.stop();
      stopObserving();
      await tracing?.close();
      await notifier.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections?.();
      });
      await Promise.all([...runtimes.values()].map((rt) => rt.close().catch(() => undefined)));
      await source.close();
      await store.close();
      await lock.release();
    },
  };
}
