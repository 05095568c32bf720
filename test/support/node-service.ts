// Test helper: a tiny Node service (an HTTP server with /health) and a bc_gitops-style spec of it in
// Erlang terms, for end-to-end tests of services from apps/.
import { TestRepo } from './repo.js';

/** The service's server.js: answers with its version; /health is 200. */
export const SERVICE_SERVER_JS = (version: string): string => `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(200); return res.end('ok'); }
  res.writeHead(200, { 'content-type': 'text/plain', 'x-version': '${version}' });
  res.end('web ${version} ' + req.url + ' prefix=' + (req.headers['x-forwarded-prefix'] || '') + ' pool=' + (process.env.POOL_SIZE || ''));
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

export const SERVICE_PACKAGE = JSON.stringify({ name: 'web', version: '0.0.0', private: true, scripts: { start: 'node server.js' } });

/** apps/web/app.config: service `web` from the git repository `url` at `ref`, routed at /web. */
export const serviceAppConfig = (url: string, ref: string, version: string, pool = 10): string => `%% A bc_gitops-style spec, in Erlang terms.
#{
    name => web,
    version => <<"${version}">>,
    source => #{type => git, url => <<"${url}">>, ref => <<"${ref}">>},
    env => #{pool_size => ${pool}},
    health => #{type => http, path => <<"/health">>, interval => 500, timeout => 2000},
    route => <<"/web">>,
    depends_on => []
}.
`;

/**
 * A git repository of the service, one commit a release in order, each tagged with its key: by
 * default v1 (answering as 1.0.0) and v2 (2.0.0); and an application's repository whose
 * apps/web/app.config deploys the first tag as version 1.0.0.
 */
export async function serviceRepos(
  releases: Record<string, string> = { v1: SERVICE_SERVER_JS('1.0.0'), v2: SERVICE_SERVER_JS('2.0.0') },
): Promise<{ svc: TestRepo; app: TestRepo }> {
  const [[first, serverJs], ...later] = Object.entries(releases) as [[string, string], ...[string, string][]];
  const svc = await TestRepo.create({ 'package.json': SERVICE_PACKAGE, 'server.js': serverJs });
  svc.git('tag', first);
  for (const [tag, js] of later) {
    await svc.commit({ 'server.js': js });
    svc.git('tag', tag);
  }
  const app = await TestRepo.create({ 'apps/web/app.config': serviceAppConfig(svc.url, first, '1.0.0') });
  return { svc, app };
}
