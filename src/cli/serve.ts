// `zerverless serve`: starts the server, optionally with the bundled example, and runs until a signal.
import { join } from 'node:path';
import { toZvError } from '../errors/registry.js';
import type { ServeConfig } from '../server/config.js';
import { startServer } from '../server/server.js';
import type { AdminTokenOutcome } from '../auth/bootstrap.js';
import { prepareExample, EXAMPLE } from '../server/example.js';
import { createLogger } from '../telemetry/log.js';

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Where the admin token is; the token itself only on the start that made it. */
function adminTokenLines(t: AdminTokenOutcome): string[] {
  if (t.created !== null) {
    return [
      `admin token (shown once; also in ${t.file ?? '?'}, mode 0600):`,
      `  ${t.created}`,
      '  the CLI on this host reads that file; elsewhere: zerverless login --server URL --token TOKEN',
    ];
  }
  if (t.from === 'environment') return ['admin token: from ZV_ADMIN_TOKEN'];
  if (t.file !== null) return [`admin token: in ${t.file}`];
  return ['admin token: none on disk (it was given at an earlier start); make tokens with an admin token: zerverless tokens create'];
}

export async function runServe(config: ServeConfig): Promise<number> {
  const logger = createLogger({ level: config.logLevel });
  let exampleRepo: string | null = null;
  const trustedRepoUrls: string[] = [];
  if (config.example) {
    exampleRepo = await prepareExample(config.dataDir);
    // The example is a local repository: trust exactly that one, not file repositories in general.
    trustedRepoUrls.push(exampleRepo);
    config = { ...config, repo: config.repo ?? { url: exampleRepo, branch: 'main', appsDir: 'apps', namespace: EXAMPLE.namespace, name: EXAMPLE.name } };
  }
  let server;
  try {
    server = await startServer(config, { logger, trustedRepoUrls });
  } catch (e) {
    const err = toZvError(e);
    process.stderr.write(`error: ${err.code}: ${err.message}\n`);
    return 1;
  }
  const u = server.url;
  const lines = [`zerverless is serving on ${u}`, `  health:   ${u}/healthz   metrics: ${u}/metrics${config.publicMetrics ? '' : ' (token)'}`, `  API:      ${u}/api/gitops/applications (token)`];
  // Never the secret itself: only whether one is set.
  const hookSecret = config.webhookSecret !== null || config.webhookSecretFile !== null;
  lines.push(`  webhooks: ${u}/hooks/{github,gitlab,gitea,bitbucket,generic}${hookSecret ? ' (signed with the webhook secret)' : ' (closed: no --webhook-secret; applications may set their own)'}`);
  lines.push(...adminTokenLines(server.adminToken));
  if (!isLoopback(config.host)) {
    logger.warn({ host: config.host }, `listening on ${config.host} beyond loopback over plain HTTP: put a TLS terminator in front and let only its port through the firewall (docs/security.md)`);
  }
  if (config.publicMetrics && !isLoopback(config.host)) {
    logger.warn({ host: config.host }, `--public-metrics is on and the server listens on ${config.host}, not loopback: anyone who reaches the port can read /metrics (application names and counts)`);
  }
  if (exampleRepo) {
    const ns = EXAMPLE.namespace;
    lines.push(
      `example application '${EXAMPLE.name}' from ${exampleRepo} (namespace ${ns}); try:`,
      ...EXAMPLE.tryPaths.map((p) => `  curl ${u}/${ns}${p}`),
      `  curl ${u}/static/${ns}/`,
      `  curl -H "authorization: Bearer $(cat ${join(config.dataDir, 'admin-token')})" ${u}/api/gitops/applications/${EXAMPLE.name}`,
      `  npx zerverless apps get ${EXAMPLE.name}        # the CLI on this host uses the admin token file`,
      `edit the files in ${exampleRepo}, commit, then: npx zerverless apps sync ${EXAMPLE.name} --server ${u}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info({ signal: sig }, 'shutting down');
      resolve();
    };
    // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal's process group and
    // forwarded by bin/zerverless.js), and a second signal must not kill it before it has closed
    // (stopped services, released the data dir lock). Repeats are ignored; SIGKILL still works.
    let stopping = false;
    const once = (sig: string) => {
      if (stopping) return;
      stopping = true;
      stop(sig);
    };
    process.on('SIGINT', once);
    process.on('SIGTERM', once);
  });
  await server.close();
  return 0;
}
