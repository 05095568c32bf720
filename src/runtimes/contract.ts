// The shared contract suite every function runtime must pass (cf. hono's router/common.case.test.ts).
// A runtime's test file calls `runtimeContract(...)` with code samples written in its language.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isZvError } from '../errors/registry.js';
import type { FunctionRequest } from '../core/function-contract.js';
import type { FunctionRuntime, FunctionSource, LoadedFunction, LogStream, RuntimeName } from './types.js';
import type { ResponseCapOptions } from './response-cap.js';

/**
 * One sample per behaviour. `S` is what a runtime's sample is: the code (a string) for in-process
 * runtimes; for a runtime whose functions are not a string of code (docker: a Dockerfile and a
 * server), whatever its `source` option turns into a FunctionSource. For a proxied runtime each
 * sample answers the equivalent HTTP response (e.g. `throws`: a 500 whose body says `boom`).
 */
export interface ContractSamples<S = string> {
  /** `handle(req)` returning `{status=200, body={method, path, query, headers, body}}` (a map body → JSON). */
  echo: S;
  /** Returns the plain string `hello`. */
  text: S;
  /** Returns status 201, header `x-test: yes`, string body `created`. */
  custom: S;
  /** An async handler returning the string `async ok` (omit for runtimes without async). */
  async?: S;
  /** Raises an error whose message contains `boom`. */
  throws: S;
  /** Never returns (busy loop). */
  loop: S;
  /** Allocates memory without bound. */
  memory: S;
  /** Does not compile; the error is on line 2 of the code. */
  syntaxError: S;
  /** Tries to read /etc/passwd and returns its contents as the body (must fail in a sandbox). */
  readHostFile: S;
  /**
   * Tries to start a process running `id` and returns its output (must fail in a sandbox); under
   * container isolation, runs `hostname` and `id` (they run, but in the function's own container).
   */
  spawnProcess: S;
  /** Prints `hello log` to the function's log and returns `ok`. */
  print: S;
  /** Returns the value of the env variable GREETING as a plain string. */
  env: S;
  /** Sets a global variable `zv_leak` to `secret` and returns `ok`. */
  globalWrite: S;
  /** Returns the global `zv_leak` if it is set, else the string `absent`. */
  globalRead: S;
  /** Returns a plain string of N times `x`, N being the number in the request body. */
  bigText: S;
  /** Returns status 200 and the map body `{data = <N times x>}` (sent as JSON), N as for bigText. */
  bigJson: S;
  /** Returns the plain map `{ok = true, items = [1, 2, 3]}`: no status, headers or body (sent as JSON). */
  plainObject: S;
  /** An async handler returning the plain map `{ok = true, async = true}` (omit for runtimes without async). */
  asyncPlainObject?: S;
  /** Returns the map `{status = 201, data = "x"}`: a response key beside another key (refused). */
  mixedObject: S;
  /** Returns the plain map `{data = <N times x>}` (no status, headers or body), N as for bigText. */
  bigPlainObject: S;
}

/** The cases a runtime may mark `todo` (a known bug, with a one-line reason): see `todo` below. */
export type ContractCase =
  | 'echo' | 'text' | 'custom' | 'plainObject' | 'asyncPlainObject' | 'mixedObject' | 'async' | 'throws' | 'compileError'
  | 'timeout' | 'memory' | 'hostFiles' | 'processes' | 'log' | 'env' | 'isolation' | 'concurrency' | 'responseCap'
  | 'defaultCap' | 'dispose';

export interface ContractOptions<S = string> {
  name: RuntimeName;
  language?: 'javascript' | 'typescript';
  /** Makes a runtime; it must honour `maxResponseBytes` when given (the response-cap case does). */
  create: (opts?: ResponseCapOptions) => Promise<FunctionRuntime> | FunctionRuntime;
  samples: ContractSamples<S>;
  /**
   * Turns a sample into what `load` takes, given the fields the contract sets (id, filename, limits,
   * env …). Default: the sample is the code. A docker runtime adds its build (Dockerfile, context).
   */
  source?: (sample: S, base: FunctionSource) => FunctionSource | Promise<FunctionSource>;
  /**
   * `invoked` (default): the runtime calls `handle(req)` and turns its value into a response.
   * `proxied` (docker, PRODUCT.md §4): the function answers HTTP itself and its status, headers and
   * body come back unchanged, so an error is the status it sends (not a rejection), there is no
   * returned value to refuse, the response cap (which applies to invoked functions, the gateway
   * streams proxied ones) does not apply, and the request the function sees carries the headers
   * the proxy adds (`proxyHeaders`).
   */
  kind?: 'invoked' | 'proxied';
  /** Request headers a proxied runtime adds on the way (ignored when comparing the echoed request). */
  proxyHeaders?: string[];
  /**
   * `sandbox` (default): no host files, no processes. `container` (docker, PRODUCT.md §4): the
   * function has its own filesystem and may start processes inside it, but never sees the host's.
   */
  isolation?: 'sandbox' | 'container';
  /** Cases failing because of a known bug of the runtime, each with a one-line reason: run as `todo`. */
  todo?: Partial<Record<ContractCase, string>>;
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

export function runtimeContract<S = string>(opts: ContractOptions<S>): void {
  const { samples } = opts;
  const proxied = opts.kind === 'proxied';
  const container = opts.isolation === 'container';
  const todo = (c: ContractCase): { todo?: string } => (opts.todo?.[c] ? { todo: opts.todo[c] } : {});
  const sourceOf = async (sample: S, base: Omit<FunctionSource, 'code'>): Promise<FunctionSource> => {
    if (opts.source) return opts.source(sample, { ...base, code: '' });
    assert.equal(typeof sample, 'string', 'a sample that is not code needs the source option');
    return { ...base, code: sample as unknown as string };
  };
  describe(`runtime contract: ${opts.name}${opts.language ? ` (${opts.language})` : ''}`, { skip: opts.skip || false }, () => {
    let runtime: FunctionRuntime;
    const loaded: LoadedFunction[] = [];
    const logs: { id: string; stream: LogStream; line: string }[] = [];
    let n = 0;

    // A generous default time limit: the cases that test the limit set their own, and 20 concurrent
    // calls on a loaded 2-core machine (a shell server in a container, Python workers) take seconds.
    const load = async (sample: S, extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
      const id = `contract/${opts.name}/f${n++}`;
      const fn = await runtime.load(
        await sourceOf(sample, { id, runtime: opts.name, language: opts.language, filename: 'handler', timeoutMs: 30_000, memoryMb: 64, env: {}, ...extra }),
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

    it('passes every request field to handle(req)', todo('echo'), async () => {
      const fn = await load(samples.echo);
      const res = await fn.invoke(REQ);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /application\/json/);
      const got = JSON.parse(bodyText(res.body)) as { headers: Record<string, string> };
      for (const h of opts.proxyHeaders ?? []) delete got.headers[h];
      assert.deepEqual(got, { method: REQ.method, path: REQ.path, query: REQ.query, headers: REQ.headers, body: REQ.body });
    });

    it('sends a returned plain string as a 200 text/plain body', todo('text'), async () => {
      const res = await (await load(samples.text)).invoke(REQ);
      assert.equal(res.status, 200);
      assert.equal(bodyText(res.body), 'hello');
      assert.match(res.headers['content-type'] ?? '', /text\/plain/);
    });

    it('keeps status, headers and body the function sets', todo('custom'), async () => {
      const res = await (await load(samples.custom)).invoke(REQ);
      assert.equal(res.status, 201);
      assert.equal(res.headers['x-test'], 'yes');
      assert.equal(bodyText(res.body), 'created');
    });

    it('sends a returned map without status, headers and body as a JSON 200', todo('plainObject'), async () => {
      const res = await (await load(samples.plainObject)).invoke(REQ);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.deepEqual(JSON.parse(bodyText(res.body)), { ok: true, items: [1, 2, 3] });
    });

    it('sends a map an async handler returns as a JSON 200', { skip: samples.asyncPlainObject === undefined, ...todo('asyncPlainObject') }, async () => {
      const res = await (await load(samples.asyncPlainObject as S)).invoke(REQ);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.deepEqual(JSON.parse(bodyText(res.body)), { ok: true, async: true });
    });

    it('passes a proxied response with keys beside status, headers and body on unchanged', { skip: !proxied, ...todo('mixedObject') }, async () => {
      const res = await (await load(samples.mixedObject)).invoke(REQ);
      assert.equal(res.status, 201);
      assert.deepEqual(JSON.parse(bodyText(res.body)), { status: 201, data: 'x' });
    });

    it('refuses a response with keys beside status, headers and body with FUNCTION_BAD_RESPONSE naming them', { skip: proxied, ...todo('mixedObject') }, async () => {
      const fn = await load(samples.mixedObject);
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE') && /"data"/.test(e.message) && /body/.test(e.message));
      // and it still answers afterwards
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE'));
    });

    it('awaits an async handler', { skip: samples.async === undefined, ...todo('async') }, async () => {
      const res = await (await load(samples.async as S)).invoke(REQ);
      assert.equal(bodyText(res.body), 'async ok');
    });

    it('answers the 500 a proxied function sends when it fails, and keeps answering', { skip: !proxied, ...todo('throws') }, async () => {
      const fn = await load(samples.throws);
      for (let i = 0; i < 2; i++) {
        const res = await fn.invoke(REQ);
        assert.equal(res.status, 500);
        assert.match(bodyText(res.body), /boom/);
      }
    });

    it('rejects with FUNCTION_ERROR when the function throws', { skip: proxied, ...todo('throws') }, async () => {
      const fn = await load(samples.throws);
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && /boom/.test(e.message));
      // and it still answers afterwards
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR'));
    });

    it('rejects with FUNCTION_COMPILE_ERROR naming the file and line', todo('compileError'), async () => {
      const src = await sourceOf(samples.syntaxError, { id: 'contract/bad', runtime: opts.name, language: opts.language, filename: 'handlers/bad', timeoutMs: 1000, memoryMb: 64, env: {} });
      await assert.rejects(
        runtime.load(src, () => {}),
        (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /handlers\/bad:2\b/.test(e.message),
      );
    });

    it('stops an endless loop with FUNCTION_TIMEOUT while other functions keep answering', todo('timeout'), async () => {
      const loop = await load(samples.loop, { timeoutMs: 700 });
      const echo = await load(samples.echo);
      const looping = loop.invoke(REQ).then(() => 'answered', (e: unknown) => e);
      // while the loop runs, another function answers
      await new Promise((r) => setTimeout(r, 100));
      const res = await echo.invoke(REQ);
      assert.equal(res.status, 200);
      const err = await looping;
      // FUNCTION_TIMEOUT is the proof the timeout was enforced: the loop never ends by itself.
      assert.ok(isZvError(err, 'FUNCTION_TIMEOUT'), `expected FUNCTION_TIMEOUT, got ${String(err)}`);
      // the looping function can be called again (its instance was replaced)
      const again = await loop.invoke(REQ).then(() => 'answered', (e: unknown) => e);
      assert.ok(isZvError(again, 'FUNCTION_TIMEOUT'));
    });

    it('stops a memory hog with FUNCTION_MEMORY_LIMIT and keeps serving', todo('memory'), async () => {
      const hog = await load(samples.memory, { memoryMb: 32, timeoutMs: 10000 });
      await assert.rejects(hog.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_MEMORY_LIMIT'));
      const res = await (await load(samples.text)).invoke(REQ);
      assert.equal(bodyText(res.body), 'hello');
    });

    it('cannot read the host\'s files', todo('hostFiles'), async () => {
      const fn = await load(samples.readHostFile);
      const out = await fn.invoke(REQ).then((r) => bodyText(r.body), (e: unknown) => String(e));
      if (!container) assert.doesNotMatch(out, /root:.*:0:0:/);
      // Its own /etc/passwd (a container's) may be there; none of the host's other accounts is.
      const host = readFileSync('/etc/passwd', 'utf8').split('\n').filter((l) => l && !l.startsWith('root:'));
      for (const line of host) assert.ok(!out.includes(line), `the host's ${line.split(':')[0]} account is readable`);
    });

    it('cannot start processes', { skip: container, ...todo('processes') }, async () => {
      const fn = await load(samples.spawnProcess);
      const out = await fn.invoke(REQ).then((r) => bodyText(r.body), (e: unknown) => String(e));
      assert.doesNotMatch(out, /uid=\d+/);
    });

    it('starts processes only inside its own container', { skip: !container, ...todo('processes') }, async () => {
      const fn = await load(samples.spawnProcess);
      const out = bodyText((await fn.invoke(REQ)).body);
      assert.match(out, /uid=\d+/, 'the process ran');
      assert.ok(!out.split(/\s+/).includes(hostname()), `the process sees the host's name ${hostname()}: ${out}`);
    });

    it('sends printed lines to the function log, not the response', todo('log'), async () => {
      const fn = await load(samples.print);
      const res = await fn.invoke(REQ);
      assert.equal(bodyText(res.body), 'ok');
      const deadline = Date.now() + 60_000;
      while (!logs.some((l) => l.line.includes('hello log')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(logs.some((l) => l.line.includes('hello log')), 'printed line not in the log');
    });

    it('exposes the function env', todo('env'), async () => {
      const fn = await load(samples.env, { env: { GREETING: 'hi env' } });
      assert.equal(bodyText((await fn.invoke(REQ)).body), 'hi env');
    });

    it('keeps functions isolated from each other', todo('isolation'), async () => {
      const w = await load(samples.globalWrite);
      const r = await load(samples.globalRead);
      assert.equal(bodyText((await w.invoke(REQ)).body), 'ok');
      assert.equal(bodyText((await r.invoke(REQ)).body), 'absent');
    });

    it('answers concurrent invocations', todo('concurrency'), async () => {
      const fn = await load(samples.echo);
      const all = await Promise.all(Array.from({ length: 20 }, (_, i) => fn.invoke({ ...REQ, body: `n${i}` })));
      all.forEach((res, i) => assert.equal(JSON.parse(bodyText(res.body)).body, `n${i}`));
    });

    const uncapped = proxied && 'the cap applies to invoked functions: the gateway streams a proxied response (gateway/http.ts)';
    it('refuses a response over maxResponseBytes with FUNCTION_RESPONSE_TOO_LARGE and keeps answering', { skip: uncapped, ...todo('responseCap') }, async () => {
      const cap = 64 * 1024;
      const capped = await opts.create({ maxResponseBytes: cap });
      try {
        for (const [name, code] of [['bigText', samples.bigText], ['bigJson', samples.bigJson], ['bigPlainObject', samples.bigPlainObject]] as const) {
          const fn = await capped.load(
            // A generous timeout: building a 200 MiB answer on a loaded machine is slow, and the timeout is not what is tested.
            await sourceOf(code, { id: `contract/${opts.name}/cap-${name}`, runtime: opts.name, language: opts.language, filename: 'handler', timeoutMs: 60_000, memoryMb: 64, env: {} }),
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

    it('caps responses at 10 MiB by default', { skip: uncapped, ...todo('defaultCap') }, async () => {
      const fn = await load(samples.bigText, { memoryMb: 128, timeoutMs: 10000 });
      assert.equal(bodyText((await fn.invoke({ ...REQ, body: String(1024 * 1024) })).body).length, 1024 * 1024);
      await assert.rejects(fn.invoke({ ...REQ, body: String(10 * 1024 * 1024 + 1) }), (e: unknown) => isZvError(e, 'FUNCTION_RESPONSE_TOO_LARGE'));
    });

    it('refuses invocations after dispose with FUNCTION_UNAVAILABLE', todo('dispose'), async () => {
      const fn = await load(samples.text);
      await fn.dispose();
      await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_UNAVAILABLE'));
    });
  });
}
