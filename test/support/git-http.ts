// Test helper: a smart-HTTP git server over HTTPS on 127.0.0.1: `git http-backend` run as CGI behind
// node:https, with HTTP basic auth and a self-signed certificate made by openssl (the CA a
// credential's caCert names). Repositories are served by path: https://127.0.0.1:PORT/<dir name>.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

export class TestGitHttps {
  /** Requests answered, by status. */
  readonly statuses: number[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly certPem: string,
    private readonly dir: string,
  ) {}

  /**
   * Serves the repositories in `root` (their parent folder) to the users of `users` (name → password);
   * any other (or no) Authorization gets 401.
   */
  static async start(root: string, users: Record<string, string>): Promise<TestGitHttps> {
    const dir = await mkdtemp(join(tmpdir(), 'zv-https-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
      '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    const expected = new Set(Object.entries(users).map(([u, p]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`));
    const box: { self?: TestGitHttps } = {};
    const server = createServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
      if (!expected.has(req.headers.authorization ?? '')) {
        box.self?.statuses.push(401);
        res.writeHead(401, { 'www-authenticate': 'Basic realm="git"', 'content-type': 'text/plain' });
        res.end('authentication required\n');
        return;
      }
      cgi(root, req, res, (status) => box.self?.statuses.push(status));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    box.self = new TestGitHttps(server, port, await readFile(cert, 'utf8'), dir);
    return box.self;
  }

  url(repoDir: string): string {
    return `https://127.0.0.1:${this.port}/${basename(repoDir)}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** One request through `git http-backend` (CGI/1.1): headers parsed from its output, the body streamed. */
function cgi(root: string, req: IncomingMessage, res: ServerResponse, done: (status: number) => void): void {
  const url = new URL(req.url ?? '/', 'https://x');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_USER: 'git',
    REMOTE_ADDR: '127.0.0.1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
  };
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
  if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
  const child = spawn('git', ['http-backend'], { env, cwd: dirname(root), stdio: ['pipe', 'pipe', 'ignore'] });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    const endLf = head.indexOf('\n\n');
    const cut = end !== -1 ? end : endLf;
    if (cut === -1) return;
    const sep = end !== -1 ? 4 : 2;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, cut).toString('latin1').split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i === -1) continue;
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      if (k.toLowerCase() === 'status') status = Number.parseInt(v, 10) || 200;
      else headers[k] = v;
    }
    headersDone = true;
    done(status);
    res.writeHead(status, headers);
    res.write(head.subarray(cut + sep));
  });
  child.on('close', () => {
    if (!headersDone) {
      done(500);
      res.writeHead(500);
    }
    res.end();
  });
  child.on('error', () => {
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
}
