// Runs the shared runtime contract against the JS runtime, once with JavaScript and once with
// TypeScript samples. JS-specific behaviour is tested in forms.test.ts, limits.test.ts and web.test.ts.
import { runtimeContract } from '../contract.js';
import type { ContractSamples } from '../contract.js';
import { JsRuntime } from './index.js';

const LEAK_JS = (what: string): string => `
async function handle() {
  const out = [];
  try { out.push(String(${what.replace('$mod', "require('$M')")})); } catch (e) { out.push('require: ' + e); }
  try { out.push(String(process.binding('$M'))); } catch (e) { out.push('process: ' + e); }
  try { const m = await import('$M'); out.push(String(${what.replace('$mod', 'm')})); } catch (e) { out.push('import: ' + e); }
  return out.join('\\n');
}`;

const js: ContractSamples = {
  echo: `function handle(req) {
  return { status: 200, body: { method: req.method, path: req.path, query: req.query, headers: req.headers, body: req.body } };
}`,
  text: `function handle(req) { return 'hello'; }`,
  custom: `function handle() { return { status: 201, headers: { 'x-test': 'yes' }, body: 'created' }; }`,
  async: `async function handle() {
  await null;
  await new Promise((resolve) => setTimeout(resolve, 10));
  return 'async ok';
}`,
  throws: `function handle() { throw new Error('boom'); }`,
  loop: `function handle() { for (;;) {} }`,
  memory: `function handle() {
  const keep = [];
  for (;;) keep.push(new Array(100000).fill(Math.random()));
}`,
  syntaxError: `function handle() {
  return ;;) 'x';
}`,
  readHostFile: LEAK_JS("$mod.readFileSync('/etc/passwd', 'utf8')").replaceAll('$M', 'fs'),
  spawnProcess: LEAK_JS("$mod.execSync('id').toString()").replaceAll('$M', 'child_process'),
  print: `function handle() { console.log('hello log'); return 'ok'; }`,
  env: `function handle(req, env) { return env.GREETING; }`,
  globalWrite: `function handle() { globalThis.zv_leak = 'secret'; return 'ok'; }`,
  globalRead: `function handle() { return typeof globalThis.zv_leak === 'string' ? globalThis.zv_leak : 'absent'; }`,
  bigText: `function handle(req) { return 'x'.repeat(Number(req.body)); }`,
  bigJson: `function handle(req) { return { status: 200, body: { data: 'x'.repeat(Number(req.body)) } }; }`,
  plainObject: `function handle() { return { ok: true, items: [1, 2, 3] }; }`,
  asyncPlainObject: `async function handle() {
  await new Promise((resolve) => setTimeout(resolve, 10));
  return { ok: true, async: true };
}`,
  mixedObject: `function handle() { return { status: 201, data: 'x' }; }`,
  bigPlainObject: `function handle(req) { return { data: 'x'.repeat(Number(req.body)) }; }`,
};

const REQ_TYPES = `interface Req { method: string; path: string; query: Record<string, string>; headers: Record<string, string>; body: string }
interface Res { status?: number; headers?: Record<string, string>; body?: unknown }
`;

const ts: ContractSamples = {
  echo: `${REQ_TYPES}export function handle(req: Req): Res {
  const { method, path, query, headers, body } = req;
  return { status: 200, body: { method, path, query, headers, body } as Record<string, unknown> };
}`,
  text: `export function handle(_req: unknown): string { return 'hello' as const; }`,
  custom: `${REQ_TYPES}export default { handle(): Res { return { status: 201, headers: { 'x-test': 'yes' }, body: 'created' }; } };`,
  async: `const wait = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));
export async function handle(): Promise<string> {
  await wait(10);
  return 'async ok';
}`,
  throws: `enum Kind { Boom = 'boom' }
function handle(): never { throw new Error(Kind.Boom); }`,
  loop: `function handle(): void { let i: number = 0; for (;;) { i++; } }`,
  memory: `function handle(): void {
  const keep: string[][] = [];
  for (;;) keep.push(new Array<string>(100000).fill(String(Math.random())));
}`,
  syntaxError: `function handle(): string {
  const x: number = ;
  return 'x';
}`,
  readHostFile: LEAK_JS("$mod.readFileSync('/etc/passwd', 'utf8')").replaceAll('$M', 'fs').replace('async function handle()', 'async function handle(): Promise<string>').replace('const out = []', 'const out: string[] = []').replaceAll('(e)', '(e: unknown)'),
  spawnProcess: LEAK_JS("$mod.execSync('id').toString()").replaceAll('$M', 'child_process').replace('async function handle()', 'async function handle(): Promise<string>').replace('const out = []', 'const out: string[] = []').replaceAll('(e)', '(e: unknown)'),
  print: `export default { async fetch(_request: Request): Promise<Response> { console.log('hello log'); return new Response('ok'); } };`,
  env: `type Env = { GREETING: string };
export default { fetch(_request: Request, env: Env): Response { return new Response(env.GREETING); } };`,
  globalWrite: `declare global { var zv_leak: string | undefined }
export function handle(): string { globalThis.zv_leak = 'secret'; return 'ok'; }`,
  globalRead: `const g = globalThis as unknown as { zv_leak?: string };
export function handle(): string { return typeof g.zv_leak === 'string' ? g.zv_leak : 'absent'; }`,
  bigText: `export default { fetch: async (request: Request): Promise<Response> => new Response('x'.repeat(Number(await request.text()))) };`,
  bigJson: `export default { fetch: async (request: Request): Promise<Response> => Response.json({ data: 'x'.repeat(Number(await request.text())) }) };`,
  plainObject: `export function handle(): { ok: boolean; items: number[] } { return { ok: true, items: [1, 2, 3] }; }`,
  asyncPlainObject: `export default {
  async handle(): Promise<Record<string, boolean>> {
    await new Promise<void>((resolve) => setTimeout(resolve, 10));
    return { ok: true, async: true };
  },
};`,
  mixedObject: `export function handle(): Record<string, unknown> { return { status: 201, data: 'x' }; }`,
  bigPlainObject: `${REQ_TYPES}export function handle(req: Req): { data: string } { return { data: 'x'.repeat(Number(req.body)) }; }`,
};

runtimeContract({ name: 'js', language: 'javascript', create: (o) => new JsRuntime(o), samples: js });
runtimeContract({ name: 'js', language: 'typescript', create: (o) => new JsRuntime(o), samples: ts });
