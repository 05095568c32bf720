// Manifests and handlers shared by the end-to-end tests.

export const ECHO_PY = `
def handle(req):
    return {"status": 200, "body": {"runtime": "python", "method": req["method"], "path": req["path"], "query": req["query"], "xh": req["headers"].get("x-h"), "body": req["body"]}}
`;

export const ECHO_JS = `
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const query = Object.fromEntries(url.searchParams);
    return Response.json({ runtime: 'js', method: request.method, path: url.pathname, query, xh: request.headers.get('x-h'), body: await request.text() });
  },
};
`;

export const ECHO_TS = `
type Req = { method: string; path: string; query: Record<string, string>; headers: Record<string, string>; body: string };
export function handle(req: Req): { status: number; body: unknown } {
  return { status: 200, body: { runtime: 'ts', method: req.method, path: req.path, query: req.query, xh: req.headers['x-h'], body: req.body } };
}
`;

export function manifest(opts: { namespace?: string; lua?: string; extra?: string; staticDir?: string | null } = {}): string {
  const lua = opts.lua ?? 'return {status=200, body={runtime="lua", method=req.method, path=req.path, query=req.query, xh=req.headers["x-h"], body=req.body}}';
  const staticDir = opts.staticDir === undefined ? 'site' : opts.staticDir;
  return `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
  namespace: ${opts.namespace ?? 'team'}
spec:
  functions:
    - path: /lua
      runtime: lua
      code: |
        function handle(req)
          ${lua}
        end
    - path: /py
      runtime: python
      codeFile: fn/echo.py
    - path: /js
      runtime: js
      codeFile: fn/echo.js
    - path: /ts
      runtime: typescript
      codeFile: fn/echo.ts
${opts.extra ?? ''}${staticDir ? `  static:\n    dir: ${staticDir}\n` : ''}`;
}

export function baseFiles(namespace = 'team'): Record<string, string> {
  return {
    'zerverless.yaml': manifest({ namespace }),
    'fn/echo.py': ECHO_PY,
    'fn/echo.js': ECHO_JS,
    'fn/echo.ts': ECHO_TS,
    'site/index.html': '<h1>v1</h1>',
    'site/about.txt': 'about v1',
    'site/css/app.css': 'body{}',
    'site/docs/index.html': 'docs',
  };
}

/** The smallest manifest: one Lua function at `path` answering `body` as text (no namespace: any registration's). */
export function luaManifest(body: string, opts: { name?: string; path?: string } = {}): string {
  return `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: ${opts.name ?? 'web'}
spec:
  functions:
    - path: ${opts.path ?? '/hi'}
      runtime: lua
      code: |
        function handle(req) return "${body}" end
`;
}
