// The shared contract suite every function runtime must pass (cf. hono's router/common.case.test.ts).
// A runtime's test file calls `runtimeContract(...)` with code samples written in its language.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../errors/registry.js';
import type { FunctionRequest } from '../core/function-contract.js';
import type { FunctionRuntime, FunctionSource, LoadedFunction, LogStream, RuntimeName } from './types.js';
import type { ResponseCapOptions } from './response-cap.js';

export interface ContractSamples {
  /** `handle(req)` returning `{status=200, body={method, path, query, headers, body}}` (a map body → JSON). */
  echo: string;
  /** Returns the plain string `hello`. */
  text: string;
  /** Returns status 201, header `x-test: yes`, string body `created`. */
  custom: string;
  /** An async handler returning the string `async ok` (omit for runtimes without async). */
  async?: string;
  /** Raises an error whose message contains `boom`. */
  throws: string;
  /** Never returns (busy loop). */
  loop: string;
  /** Allocates memory without bound. */
  memory: string;
  /** Does not compile; the error is on line 2 of the code. */
  syntaxError: string;
  /** Tries to read /etc/passwd and returns its contents as the body (must fail in a sandbox). */
  readHostFile: string;
  /** Tries to start a process running `id` and returns its output (must fail in a sandbox). */
  spawnProcess: string;
  /** Prints `hello log` to the function's log and returns `ok`. */
  print: string;
  /** Returns the value of the env variable GREETING as a plain string. */
  env: string;
  /** Sets a global variable `zv_leak` to `secret` and returns `ok`. */
  globalWrite: string;
  /** Returns the global `zv_leak` if it is set, else the string `absent`. */
  globalRead: string;
  /** Returns a plain string of N times `x`, N being the number in the request body. */
  bigText: string;
  /** Returns status 200 and the map body `{data = <N times x>}` (sent as JSON), N as for bigText. */
  bigJson: string;
  /** Returns the plain map `{ok = true, items = [1, 2, 3]}`: no status, headers or body (sent as JSON). */
  plainObject: string;
  /** An async handler returning the plain map `{ok = true, async = true}` (omit for runtimes without async). */
  asyncPlainObject?: string;
  /** Returns the map `{status = 201, data = "x"}`: a response key beside another key (refused). */
  mixedObject: string;
  /** Returns the plain map `{data = <N times x>}` (no status, headers or body), N as for bigText. */
  bigPlainObject: string;
}

export interface ContractOptions {
  name: RuntimeName;
  language?: 'javascript' | 'typescript';
  /** Makes a runtime; it must honour `maxResponseBytes` when given (the response-cap case does). */
  create: (opts?: ResponseCapOptions) => Promise<FunctionRuntime> | FunctionRuntime;
  samples: ContractSamples;
  /** Skip the whole suite with this reason (printed) when the runtime cannot run here. */
  skip?: string | false;
}

const REQ: FunctionRequest = {
  method: 'POST',
  path: '/api/echo/x',
  query: { a: '1', b: 'two' },
  headers: { 'x-h': 'v', 'content-type': 'text/plain' },
  body: 'hi there',
};

function bodyText(body: string | Uint8Array): string {
  return typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
}

export function runtimeContract(opts: ContractOptions): void {
  const { samples } = opts;
  describe(`runtime contract: ${opts.name}${opts.language ? ` (${opts.language})` : ''}`, { skip: opts.skip || false }, () => {
    let runtime: FunctionRuntime;
    const loaded: LoadedFunction[] = [];
    const logs: { id: string; stream: LogStream; line: string }[] = [];
    let n = 0;

    const load = async (code: string, extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
      const id = `contract/${opts.name}/f${n++}`;
      const fn = await runtime.load(
        { id, runtime: opts.name, language: opts.language, code, filename: 'handler', timeoutMs: 2000, memoryMb: 64, env: {}, ...extra },
        (stream, line) => logs.push({ id, stream, line }),
      );
      loaded.push(fn);
      return fn;
    };

    before(async () => {
      runtime = await opts.create();
      const av = await runtime.available();
      assert.ok(av.ok, `runtime ${opts.name} unavailable: ${av.ok ? '' : av.reason}`);
    });
    after(async () => {
      for (const f of loaded) await f.dispose().catch(() => {});
      await runtime.close();
    });

    it('passes every request field to handle(req)', async () => {
      const fn = await load(samples.echo);
      const res = await fn.invoke(REQ);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /application\/json/);
      const got = JSON.parse(bodyText(res.body));
      assert.deepEqual(got, { method: REQ.method, path: REQ.path, query: REQ.query, headers: REQ.headers, body: REQ.body });
    });

    it('sends a returned plain string as a 200 text/plain body', async () => {
      const res = await (await load(samples.text)).invoke(REQ);
      assert.equal(res.status, 200);
      assert.equal(bodyText(res.body), 'hello');
      assert.match(res.headers['content-type'] ?? '', /text\/plain/);
    });

    it('keeps status, headers and body the function sets', async () => {
      const res = await (await load(samples.custom)).invoke(REQ);
      assert.equal(res.status, 201);
      assert.equal(res.headers['x-test'], 'yes');
      assert.equal(bodyText(res.body), 'created');
    });

    it('sends a returned map without status, headers and body as a JSON 200', async () => {
      const res = await (await load(samples.plainObject)).invoke(REQ);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.deepEqual(JSON.parse(bodyText(res.body)), { ok: true, items: [1, 2, 3] });
    });

    it('sends a map an async handler returns as a JSON 200', { skip: samples.asyncPlainObject === undefined }, async () => {
      const res = await (await load(samples.asyncPlainObject ?? '')).invoke(REQ);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.deepEqual(JSON.parse(bodyText(res.body)), { ok: true, async: true });
    });

    it('refuses a response with keys beside status, headers and body with FUNCTION_BAD_RESPONSE naming them', async () => {
      const fn = await load(samples.mixedObject);
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE') && /"data"/.test(e.message) && /body/.test(e.message));
      // and it still answers afterwards
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE'));
    });

    it('awaits an async handler', { skip: samples.async === undefined }, async () => {
      const res = await (await load(samples.async ?? '')).invoke(REQ);
      assert.equal(bodyText(res.body), 'async ok');
    });

    it('rejects with FUNCTION_ERROR when the function throws', async () => {
      const fn = await load(samples.throws);
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && /boom/.test(e.message));
      // and it still answers afterwards
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR'));
    });

    it('rejects with FUNCTION_COMPILE_ERROR naming the file and line', async () => {
      await assert.rejects(
        runtime.load({ id: 'contract/bad', runtime: opts.name, language: opts.language, code: samples.syntaxError, filename: 'handlers/bad', timeoutMs: 1000, memoryMb: 64, env: {} }, () => {}),
        (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /handlers\/bad:2\b/.test(e.message),
      );
    });

    it('stops an endless loop with FUNCTION_TIMEOUT while other functions keep answering', async () => {
      const loop = await load(samples.loop, { timeoutMs: 700 });
      const echo = await load(samples.echo);
      const started = Date.now();
      const looping = loop.invoke(REQ).then(() => 'answered', (e: unknown) => e);
      // while the loop runs, another function answers
      await new Promise((r) => setTimeout(r, 100));
      const res = await echo.invoke(REQ);
      assert.equal(res.status, 200);
      const err = await looping;
      assert.ok(isZvError(err, 'FUNCTION_TIMEOUT'), `expected FUNCTION_TIMEOUT, got ${String(err)}`);
      assert.ok(Date.now() - started < 700 + 5000, 'the timeout was not enforced');
      // the looping function can be called again (its instance was replaced)
      const again = await loop.invoke(REQ).then(() => 'answered', (e: unknown) => e);
      assert.ok(isZvError(again, 'FUNCTION_TIMEOUT'));
    });

    it('stops a memory hog with FUNCTION_MEMORY_LIMIT and keeps serving', async () => {
      const hog = await load(samples.memory, { memoryMb: 32, timeoutMs: 10000 });
      await assert.rejects(hog.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_MEMORY_LIMIT'));
      const res = await (await load(samples.text)).invoke(REQ);
      assert.equal(bodyText(res.body), 'hello');
    });

    it('cannot read the host\'s files', async () => {
      const fn = await load(samples.readHostFile);
      const out = await fn.invoke(REQ).then((r) => bodyText(r.body), (e: unknown) => String(e));
      assert.doesNotMatch(out, /root:.*:0:0:/);
    });

    it('cannot start processes', async () => {
      const fn = await load(samples.spawnProcess);
      const out = await fn.invoke(REQ).then((r) => bodyText(r.body), (e: unknown) => String(e));
      assert.doesNotMatch(out, /uid=\d+/);
    });

    it('sends printed lines to the function log, not the response', async () => {
      const fn = await load(samples.print);
      const res = await fn.invoke(REQ);
      assert.equal(bodyText(res.body), 'ok');
      const deadline = Date.now() + 2000;
      while (!logs.some((l) => l.line.includes('hello log')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(logs.some((l) => l.line.includes('hello log')), 'printed line not in the log');
    });

    it('exposes the function env', async () => {
      const fn = await load(samples.env, { env: { GREETING: 'hi env' } });
      assert.equal(bodyText((await fn.invoke(REQ)).body), 'hi env');
    });

    it('keeps functions isolated from each other', async () => {
      const w = await load(samples.globalWrite);
      const r = await load(samples.globalRead);
      assert.equal(bodyText((await w.invoke(REQ)).body), 'ok');
      assert.equal(bodyText((await r.invoke(REQ)).body), 'absent');
    });

    it('answers concurrent invocations', async () => {
      const fn = await load(samples.echo);
      const all = await Promise.all(Array.from({ length: 20 }, (_, i) => fn.invoke({ ...REQ, body: `n${i}` })));
      all.forEach((res, i) => assert.equal(JSON.parse(bodyText(res.body)).body, `n${i}`));
    });

    it('refuses a response over maxResponseBytes with FUNCTION_RESPONSE_TOO_LARGE and keeps answering', async () => {
      const cap = 64 * 1024;
      const capped = await opts.create({ maxResponseBytes: cap });
      try {
        for (const [name, code] of [['bigText', samples.bigText], ['bigJson', samples.bigJson], ['bigPlainObject', samples.bigPlainObject]] as const) {
          const fn = await capped.load(
            { id: `contract/${opts.name}/cap-${name}`, runtime: opts.name, language: opts.language, code, filename: 'handler', timeoutMs: 5000, memoryMb: 64, env: {} },
            () => {},
          );
          try {
            const small = await fn.invoke({ ...REQ, body: '1000' });
            assert.equal(small.status, 200, name);
            assert.ok(bodyText(small.body).includes('x'.repeat(1000)), name);
            await assert.rejects(fn.invoke({ ...REQ, body: String(cap + 1) }), (e: unknown) => isZvError(e, 'FUNCTION_RESPONSE_TOO_LARGE'), name);
            await assert.rejects(fn.invoke({ ...REQ, body: String(200 * 1024 * 1024) }), (e: unknown) => isZvError(e, 'FUNCTION_RESPONSE_TOO_LARGE') || isZvError(e, 'FUNCTION_MEMORY_LIMIT'), name);
            assert.equal(bodyText((await fn.invoke({ ...REQ, body: '10' })).body).includes('x'.repeat(10)), true, name);
          } finally {
            await fn.dispose();
          }
        }
      } finally {
        await capped.close();
      }
    });

    it('caps responses at 10 MiB by default', async () => {
      const fn = await load(samples.bigText, { memoryMb: 128, timeoutMs: 10000 });
      assert.equal(bodyText((await fn.invoke({ ...REQ, body: String(1024 * 1024) })).body).length, 1024 * 1024);
      await assert.rejects(fn.invoke({ ...REQ, body: String(10 * 1024 * 1024 + 1) }), (e: unknown) => isZvError(e, 'FUNCTION_RESPONSE_TOO_LARGE'));
    });

    it('refuses invocations after dispose with FUNCTION_UNAVAILABLE', async () => {
      const fn = await load(samples.text);
      await fn.dispose();
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_UNAVAILABLE'));
    });
  });
}
