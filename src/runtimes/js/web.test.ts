// JS runtime: the Web-standard shims inside the isolate (URL, URLSearchParams, Headers, Request,
// Response, TextEncoder/TextDecoder, atob/btoa), checked against what Node's own classes return.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadedFunction } from '../types.js';
import { JsRuntime } from './index.js';

const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));

describe('js runtime: Web shims', () => {
  const rt = new JsRuntime();
  let fn: LoadedFunction;
  // evaluates the expression in the request body inside the isolate and returns it as JSON
  const run = async (expr: string): Promise<unknown> => {
    const res = await fn.invoke({ method: 'POST', path: '/', query: {}, headers: {}, body: expr });
    return JSON.parse(text(res.body));
  };

  before(async () => {
    fn = await rt.load({
      id: 'web', runtime: 'js', filename: 'web.js', timeoutMs: 2000, memoryMb: 32, env: {},
      code: 'async function handle(req) { return { body: { v: await (0, eval)(req.body) } }; }',
    }, () => {});
  });
  after(async () => {
    await fn.dispose();
    await rt.close();
  });

  const same = async (expr: string): Promise<void> => {
    const expected: unknown = await (0, eval)(expr);
    assert.deepEqual(await run(expr), { v: expected }, expr);
  };

  it('parses and serializes URLs like Node', async () => {
    for (const u of [
      'http://localhost/a/b?x=1&y=two%20words#frag',
      'HTTPS://User:Pw@Example.COM:443/./a/../b/c?q',
      'http://h:8080/p a/ü?s=ä',
      'http://h',
    ]) {
      await same(`(() => { const u = new URL(${JSON.stringify(u)}); return [u.href, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.origin, u.pathname, u.search, u.hash]; })()`);
    }
    await same(`new URL('../c?d=1', 'http://h/a/b/').href`);
    await same(`new URL('/x', 'https://h:444/a').href`);
    await same(`(() => { try { new URL('not a url'); return 'parsed'; } catch (e) { return e instanceof TypeError; } })()`);
    await same(`(() => { const u = new URL('http://h/p?a=1'); u.searchParams.append('b', 'x y'); u.hash = 'h'; return u.href; })()`);
  });

  it('handles URLSearchParams like Node', async () => {
    await same(`(() => { const p = new URLSearchParams('?a=1&b=2&a=3&c=x+y&d=%26'); p.set('b', '9'); p.delete('c');
      return [p.get('a'), p.getAll('a'), p.has('d'), p.get('d'), p.toString(), [...p.keys()], p.size]; })()`);
    await same(`new URLSearchParams({ q: "it's a ~test!", e: '' }).toString()`);
  });

  it('handles Headers like the Fetch standard', async () => {
    await same(`(() => { const h = new Headers({ 'Content-Type': 'text/plain' }); h.append('X-A', '1'); h.append('x-a', '2'); h.set('B', ' v ');
      return [h.get('content-type'), h.get('X-A'), h.has('b'), h.get('b'), h.get('missing'), [...h]]; })()`);
  });

  it('builds Requests and Responses like the Fetch standard', async () => {
    await same(`(async () => { const r = new Request('http://h/p', { method: 'post', body: 'x', headers: { a: 'b' } });
      return [r.url, r.method, r.headers.get('a'), r.headers.get('content-type'), await r.text(), r.bodyUsed]; })()`);
    await same(`(async () => { const r = Response.json({ a: 1 }, { status: 201 }); return [r.status, r.ok, r.headers.get('content-type'), await r.json()]; })()`);
    await same(`(async () => { const r = new Response(new URLSearchParams('a=1')); return [r.headers.get('content-type'), await r.text()]; })()`);
    await same(`(async () => { const r = new Response('x'); await r.text(); try { await r.text(); return 'again'; } catch (e) { return e instanceof TypeError; } })()`);
    await same(`(() => { try { new Response('', { status: 99 }); return 'made'; } catch (e) { return e instanceof RangeError; } })()`);
    await same(`(() => { try { new Request('http://h/', { body: 'x' }); return 'made'; } catch (e) { return e instanceof TypeError; } })()`);
    await same(`(async () => { const r = Response.redirect('http://h/x', 301); return [r.status, r.headers.get('location')]; })()`);
  });

  it('encodes and decodes UTF-8 and base64 like Node', async () => {
    await same(`Array.from(new TextEncoder().encode('aé€😀'))`);
    await same(`new TextDecoder().decode(new Uint8Array([97, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]))`);
    await same(`new TextDecoder().decode(new Uint8Array([0xff, 97, 0xc3]))`);
    await same(`(async () => new TextDecoder().decode(await new Response('héllo').arrayBuffer()))()`);
    await same(`[btoa('hello'), btoa('hi'), btoa(''), atob('aGVsbG8='), atob('aGk')]`);
  });
});
