// Static files end to end: a real repository with precompressed variants (`x.br`, `x.gz`) and a
// 20 MB file, registered with the real server, read over HTTP with node:http (which, unlike fetch,
// does not decode content codings, so the bytes on the wire are what is checked).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';

const MANIFEST = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: site
  namespace: web
spec:
  static:
    dir: public
`;

const PAGE = `<!doctype html><title>page</title>${'<p>some text that compresses well</p>\n'.repeat(400)}`;
const INDEX = `<!doctype html><h1>home</h1>${'x'.repeat(2000)}`;
const CSS = `body { color: red; }\n${'/* padding */\n'.repeat(200)}`;
const BIG = 20 * 1024 * 1024;
/** Over the 1 MiB small-file cache: streamed, through the pool of read buffers. */
const MID = 4 * 1024 * 1024 + 5;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request, the body read whole (small answers only). */
function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** One request whose body is hashed as it arrives (nothing buffered): length and sha256. */
function download(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; length: string | undefined; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { headers }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length: res.headers['content-length'], bytes, sha256: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('static files: precompressed variants, streaming of large files', () => {
  let h: Harness;
  let repo: TestRepo;
  let base: string;
  const big = randomBytes(BIG);
  const mid = randomBytes(MID);
  const pageBr = brotliCompressSync(PAGE);
  const pageGz = gzipSync(PAGE);

  before(async () => {
    h = await startHarness();
    repo = await TestRepo.create();
    const files: Record<string, Uint8Array | string> = {
      'zerverless.yaml': MANIFEST,
      'public/page.html': PAGE,
      'public/page.html.br': pageBr,
      'public/page.html.gz': pageGz,
      'public/index.html': INDEX,
      'public/index.html.gz': gzipSync(INDEX),
      'public/style.css': CSS,
      'public/style.css.gz': gzipSync(CSS),
      'public/plain.txt': 'no variants here\n',
      'public/big.bin': big,
      'public/mid.bin': mid,
    };
    for (const [rel, content] of Object.entries(files)) {
      await mkdir(join(repo.dir, rel, '..'), { recursive: true });
      await writeFile(join(repo.dir, rel), content);
    }
    await repo.commit({}, 'site');
    const st = await h.register('site', 'web', repo.url);
    assert.equal(st.status, 'synced', st.message);
    base = `${h.url}/static/web/`;
  });
  after(async () => {
    await h.close();
    await repo.remove();
  });

  it('answers br, gzip or identity by Accept-Encoding and its q-values, with Vary and the original content type', async () => {
    const cases: [string | null, 'br' | 'gzip' | null][] = [
      [null, null],
      ['', null],
      ['br', 'br'],
      ['gzip', 'gzip'],
      ['gzip, deflate, br', 'br'],
      ['gzip;q=1, br;q=0.5', 'gzip'],
      ['br;q=0, gzip', 'gzip'],
      ['x-gzip', 'gzip'],
      ['*', 'br'],
      ['*;q=0.5, gzip;q=0.8', 'gzip'],
      ['deflate', null],
      ['br;q=0.5, identity', null],
      ['BR ; Q=0.9, identity;q=0.1', 'br'],
      // identity refused and no acceptable coding: identity anyway (never 406, see static.ts)
      ['identity;q=0', null],
      ['*;q=0', null],
      ['deflate, identity;q=0', null],
    ];
    for (const [accept, expected] of cases) {
      const res = await get(base, 'page.html', accept === null ? {} : { 'accept-encoding': accept });
      const what = `Accept-Encoding ${JSON.stringify(accept)}`;
      assert.equal(res.status, 200, what);
      assert.equal(res.headers['content-encoding'], expected ?? undefined, what);
      assert.equal(res.headers.vary, 'Accept-Encoding', what);
      assert.match(String(res.headers['content-type']), /^text\/html/, what);
      const expectedBytes = expected === 'br' ? pageBr : expected === 'gzip' ? pageGz : Buffer.from(PAGE);
      assert.equal(res.headers['content-length'], String(expectedBytes.length), what);
      assert.ok(res.body.equals(expectedBytes), what);
    }
    // the bytes are the committed variants: they decode to the page
    assert.equal(brotliDecompressSync((await get(base, 'page.html', { 'accept-encoding': 'br' })).body).toString(), PAGE);
    assert.equal(gunzipSync((await get(base, 'page.html', { 'accept-encoding': 'gzip' })).body).toString(), PAGE);
  });

  it('a file with only a .gz variant, a folder index with one, and a file without any', async () => {
    const css = await get(base, 'style.css', { 'accept-encoding': 'br' });
    assert.equal(css.headers['content-encoding'], undefined, 'no br variant: identity');
    assert.equal(css.body.toString(), CSS);
    const cssGz = await get(base, 'style.css', { 'accept-encoding': 'br, gzip' });
    assert.equal(cssGz.headers['content-encoding'], 'gzip');
    assert.match(String(cssGz.headers['content-type']), /^text\/css/);
    assert.equal(gunzipSync(cssGz.body).toString(), CSS);

    const index = await get(base, '', { 'accept-encoding': 'gzip' });
    assert.equal(index.headers['content-encoding'], 'gzip');
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.equal(gunzipSync(index.body).toString(), INDEX);

    const plain = await get(base, 'plain.txt', { 'accept-encoding': 'gzip, br' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers.vary, undefined, 'no variant, nothing varies');
    assert.equal(plain.body.toString(), 'no variants here\n');
  });

  it('the .br and .gz files themselves are still served as they are, without Content-Encoding', async () => {
    const br = await get(base, 'page.html.br', { 'accept-encoding': 'br, gzip' });
    assert.equal(br.status, 200);
    assert.equal(br.headers['content-encoding'], undefined);
    assert.doesNotMatch(String(br.headers['content-type']), /text\/html/);
    assert.ok(br.body.equals(pageBr));
    const gz = await get(base, 'page.html.gz');
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], undefined);
    assert.equal(gz.headers['content-type'], 'application/gzip');
    assert.ok(gz.body.equals(pageGz));
  });

  it('each coding has its own ETag; If-None-Match gives 304 for the coding it names only', async () => {
    const identity = await get(base, 'page.html');
    const br = await get(base, 'page.html', { 'accept-encoding': 'br' });
    const gz = await get(base, 'page.html', { 'accept-encoding': 'gzip' });
    const tags = [identity, br, gz].map((r) => String(r.headers.etag));
    assert.equal(new Set(tags).size, 3, `distinct ETags: ${tags.join(' ')}`);
    assert.equal(tags[0], `"${sha256(Buffer.from(PAGE))}"`);

    const notModified = await get(base, 'page.html', { 'accept-encoding': 'br', 'if-none-match': tags[1] as string });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, tags[1]);
    assert.equal(notModified.headers.vary, 'Accept-Encoding');
    assert.equal(notModified.headers['content-encoding'], 'br');
    assert.equal(notModified.body.length, 0);
    assert.equal((await get(base, 'page.html', { 'accept-encoding': 'gzip', 'if-none-match': tags[2] as string })).status, 304);
    assert.equal((await get(base, 'page.html', { 'if-none-match': tags[0] as string })).status, 304);
    // the br ETag does not validate the gzip or the identity answer
    const other = await get(base, 'page.html', { 'accept-encoding': 'gzip', 'if-none-match': tags[1] as string });
    assert.equal(other.status, 200);
    assert.equal(other.headers['content-encoding'], 'gzip');
    assert.equal((await get(base, 'page.html', { 'if-none-match': tags[1] as string })).status, 200);
    assert.equal((await get(base, 'page.html', { 'accept-encoding': 'br', 'if-none-match': `W/${tags[1] as string}, "other"` })).status, 304);
  });

  it('HEAD answers the headers of the chosen coding without a body', async () => {
    const head = await get(base, 'page.html', { 'accept-encoding': 'br' }, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-encoding'], 'br');
    assert.equal(head.headers['content-length'], String(pageBr.length));
    assert.equal(head.headers.vary, 'Accept-Encoding');
    assert.equal(head.body.length, 0);
    const bigHead = await get(base, 'big.bin', {}, 'HEAD');
    assert.equal(bigHead.status, 200);
    assert.equal(bigHead.headers['content-length'], String(BIG));
    assert.equal(bigHead.body.length, 0);
  });

  it('a Range request is answered from the identity file, whatever Accept-Encoding says', async () => {
    const r = await get(base, 'page.html', { 'accept-encoding': 'br, gzip', range: 'bytes=9-14' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers['content-range'], `bytes 9-14/${Buffer.byteLength(PAGE)}`);
    assert.equal(r.headers.vary, 'Accept-Encoding');
    assert.equal(r.headers.etag, `"${sha256(Buffer.from(PAGE))}"`);
    assert.equal(r.body.toString(), PAGE.slice(9, 15));
    const suffix = await get(base, 'plain.txt', { range: 'bytes=-6' });
    assert.equal(suffix.status, 206);
    assert.equal(suffix.body.toString(), 'no variants here\n'.slice(-6));
    const bad = await get(base, 'page.html', { 'accept-encoding': 'br', range: 'bytes=999999-' });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${Buffer.byteLength(PAGE)}`);
    // If-Range with another ETag: the whole file, which may then be encoded
    const stale = await get(base, 'page.html', { 'accept-encoding': 'gzip', range: 'bytes=0-3', 'if-range': '"stale"' });
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['content-encoding'], undefined, 'a request with Range is answered from identity');
    assert.equal(stale.body.toString(), PAGE);
  });

  it('a 20 MB file is streamed whole with its length and bytes, and byte ranges of it', async () => {
    const whole = await download(base, 'big.bin');
    assert.equal(whole.status, 200);
    assert.equal(whole.length, String(BIG));
    assert.equal(whole.bytes, BIG);
    assert.equal(whole.sha256, sha256(big));
    const start = 5 * 1024 * 1024 + 17;
    const end = 15 * 1024 * 1024 + 3;
    const part = await download(base, 'big.bin', { range: `bytes=${start}-${end}` });
    assert.equal(part.status, 206);
    assert.equal(part.length, String(end - start + 1));
    assert.equal(part.sha256, sha256(big.subarray(start, end + 1)));
  });

  it('a 4 MiB file asked for again and again (its read buffers reused) has the same bytes and ranges each time', async () => {
    const start = 1024 * 1024 - 3;
    const end = 3 * 1024 * 1024 + 11;
    for (let i = 0; i < 6; i++) {
      const whole = await download(base, 'mid.bin');
      assert.equal(whole.status, 200);
      assert.equal(whole.length, String(MID));
      assert.equal(whole.sha256, sha256(mid), `request ${i + 1}`);
      const part = await download(base, 'mid.bin', { range: `bytes=${start}-${end}` });
      assert.equal(part.status, 206);
      assert.equal(part.length, String(end - start + 1));
      assert.equal(part.sha256, sha256(mid.subarray(start, end + 1)), `range, request ${i + 1}`);
      const tail = await download(base, 'mid.bin', { range: 'bytes=-100' });
      assert.equal(tail.sha256, sha256(mid.subarray(MID - 100)), `suffix range, request ${i + 1}`);
    }
    const head = await get(base, 'mid.bin', {}, 'HEAD');
    assert.equal(head.headers['content-length'], String(MID));
    assert.equal(head.body.length, 0);
  });

  it('20 concurrent downloads of the 20 MB file do not hold the file in memory per download', async (t) => {
    // The server runs in this process; the downloads hash their bodies as they arrive. Were each
    // answer buffered, the resident set would grow by 20 × 20 MB = 400 MB; the bound is loose.
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const results = await Promise.all(Array.from({ length: 20 }, () => download(base, 'big.bin')));
      for (const r of results) {
        assert.equal(r.status, 200);
        assert.equal(r.bytes, BIG);
        assert.equal(r.sha256, sha256(big));
      }
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const grownMb = (peak - before) / 1024 / 1024;
    t.diagnostic(`RSS grew by at most ${grownMb.toFixed(1)} MB during 20 concurrent 20 MB downloads`);
    assert.ok(grownMb < 200, `RSS grew by ${grownMb.toFixed(1)} MB`);
  });

  it('after a sync that removes a variant, the file is answered from what is left', async () => {
    await repo.commit({ 'public/page.html.br': null }, 'drop br');
    const st = await h.sync('site', 'web');
    assert.equal(st.status, 'synced', st.message);
    const res = await get(base, 'page.html', { 'accept-encoding': 'br, gzip' });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.ok(res.body.equals(pageGz));
    assert.equal((await get(base, 'page.html.br')).status, 404);
  });
});
