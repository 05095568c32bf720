interface Req {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

export async function handle(req: Req) {
  return { status: 200, body: { youSent: { method: req.method, path: req.path, query: req.query, body: req.body } } };
}
