// `zerverless serve`: starts the server, optionally with the bundled example, and runs until a signal.
import { toZvError } from '../errors/registry.js';
import type { ServeConfig } from '../server/config.js';
import { startServer } from '../server/server.js';
import { prepareExample, EXAMPLE } from '../server/example.js';
import { createLogger } from '../telemetry/log.js';

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
  const lines = [`zerverless is serving on ${u}`, `  health:   ${u}/healthz   metrics: ${u}/metrics`, `  API:      ${u}/api/gitops/applications`];
  if (exampleRepo) {
    const ns = EXAMPLE.namespace;
    lines.push(
      `example application '${EXAMPLE.name}' from ${exampleRepo} (namespace ${ns}); try:`,
      ...EXAMPLE.tryPaths.map((p) => `  curl ${u}/${ns}${p}`),
      `  curl ${u}/static/${ns}/`,
      `  curl ${u}/api/gitops/applications/${EXAMPLE.name}`,
      `edit the files in ${exampleRepo}, commit, then: npx zerverless apps sync ${EXAMPLE.name} --server ${u}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info({ signal: sig }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
