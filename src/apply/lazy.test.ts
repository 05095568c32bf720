// LazyFunction with the real runtimes: loads on the first call (concurrent first calls share one
// load), frees the isolate / Lua state / Python worker after idle time (the runtime's live count
// says so) and loads again on the next call, reports failed loads and tries again, and frees a
// load that ends after the handle was disposed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ZvError, isZvError } from '../errors/registry.js';
import type { FunctionRequest } from '../core/function-contract.js';
import type { FunctionLogger, FunctionRuntime, FunctionSource, LoadedFunction, RuntimeName } from '../runtimes/types.js';
import { JsRuntime } from '../runtimes/js/index.js';
import { LuaRuntime } from '../runtimes/lua/index.js';
import { PythonRuntime } from '../runtimes/python/index.js';
import { LazyFunction } from './lazy.js';

const req: FunctionRequest = { method: 'GET', path: '/x', query: {}, headers: {}, body: '' };
const quiet: FunctionLogger = () => {};

function source(runtime: RuntimeName, code: string, id = 'ns/app/f@1'): FunctionSource {
  return { id, runtime, code, filename: `f.${runtime}`, timeoutMs: 5_000, memoryMb: 64, env: { GREETING: 'hi' } };
}

/** A runtime that counts loads and can be told to fail the next ones or to hold them until released. */
class Counting implements FunctionRuntime {
  loads = 0;
  failNext = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  constructor(readonly inner: FunctionRuntime & { liveCount: number }) {}

  get name(): RuntimeName {
    return this.inner.name;
  }

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }

  release(): void {
    this.open?.();
    this.gate = null;
  }

  async load(s: FunctionSource, log: FunctionLogger): Promise<LoadedFunction> {
    this.loads++;
    if (this.gate) await this.gate;
    if (this.failNext > 0) {
      this.failNext--;
      throw new ZvError('RUNTIME_UNAVAILABLE', 'the runtime is down for the test');
    }
    return this.inner.load(s, log);
  }

  available(): Promise<{ ok: true } | { ok: false; reason: string }> {
    return this.inner.available();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Waits (up to a generous deadline) until `pred` holds. */
async function until(what: string, pred: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function text(fn: LoadedFunction): Promise<string> {
  return String((await fn.invoke(req)).body);
}

describe('LazyFunction (js)', () => {
  let js: JsRuntime;
  before(() => {
    js = new JsRuntime();
  });
  after(async () => {
    await js.close();
  });

  it('loads nothing until called; concurrent first calls share one load', async () => {
    const rt = new Counting(js);
    const fn = new LazyFunction({ runtime: rt, source: source('js', 'function handle(req, env) { return env.GREETING; }'), log: quiet, idleMs: 0 });
    assert.equal(fn.state, 'unloaded');
    assert.equal(rt.loads, 0);
    assert.equal(js.liveCount, 0);
    const answers = await Promise.all(Array.from({ length: 10 }, () => text(fn)));
    assert.deepEqual(answers, Array(10).fill('hi'));
    assert.equal(rt.loads, 1);
    assert.equal(js.liveCount, 1);
    assert.equal(fn.state, 'loaded');
    assert.deepEqual(fn.stats, { loads: 1, evictions: 0 });
    await fn.dispose();
    assert.equal(js.liveCount, 0);
    await assert.rejects(fn.invoke(req), (e: unknown) => isZvError(e, 'FUNCTION_UNAVAILABLE'));
  });

  it('frees the isolate after idle time and loads again on the next call', async () => {
    const rt = new Counting(js);
    let evicted = 0;
    let liveAtLoad = -1;
    const fn = new LazyFunction({
      runtime: rt, source: async () => source('js', 'let n = 0; function handle() { return String(++n); }'), log: quiet, idleMs: 200,
      onEvict: () => evicted++, onLoad: () => (liveAtLoad = js.liveCount),
    });
    assert.deepEqual((await Promise.all([text(fn), text(fn)])).sort(), ['1', '2']);
    assert.equal(liveAtLoad, 1);
    await until('the idle function is unloaded', () => js.liveCount === 0);
    assert.equal(fn.state, 'unloaded');
    assert.equal(evicted, 1);
    // a fresh load: the module state starts over
    assert.equal(await text(fn), '1');
    assert.equal(rt.loads, 2);
    assert.deepEqual(fn.stats, { loads: 2, evictions: 1 });
    await fn.dispose();
    assert.equal(js.liveCount, 0);
  });

  it('never unloads a function with a call in flight, however long the call', async () => {
    const rt = new Counting(js);
    const code = 'async function handle() { await new Promise((r) => setTimeout(r, 600)); return "slow"; }';
    const fn = new LazyFunction({ runtime: rt, source: source('js', code), log: quiet, idleMs: 100 });
    assert.equal(await text(fn), 'slow');
    assert.equal(fn.stats.evictions, 0, 'unloaded while the call ran');
    await fn.dispose();
  });

  it('starts warm when given what a sync loaded, and is evicted after idle like the others', async () => {
    const rt = new Counting(js);
    const s = source('js', 'function handle() { return "warm"; }');
    const fn = new LazyFunction({ runtime: rt, source: s, log: quiet, idleMs: 200, loaded: await js.load(s, quiet) });
    assert.equal(fn.state, 'loaded');
    assert.equal(await text(fn), 'warm');
    assert.equal(rt.loads, 0);
    await until('the warm function is unloaded', () => fn.state === 'unloaded');
    assert.equal(js.liveCount, 0);
    assert.equal(await text(fn), 'warm');
    assert.equal(rt.loads, 1);
    await fn.dispose();
  });

  it('a failed load answers FUNCTION_UNAVAILABLE with the cause, is reported, and the next call tries again', async () => {
    const rt = new Counting(js);
    rt.failNext = 1;
    const errors: ZvError[] = [];
    let loadedMs = -1;
    const fn = new LazyFunction({
      runtime: rt, source: source('js', 'function handle() { return "back"; }'), log: quiet, idleMs: 0,
      onLoadError: (e) => errors.push(e), onLoad: (ms) => (loadedMs = ms),
    });
    await assert.rejects(fn.invoke(req), (e: unknown) => isZvError(e, 'FUNCTION_UNAVAILABLE') && /RUNTIME_UNAVAILABLE: the runtime is down/.test(e.message));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, 'RUNTIME_UNAVAILABLE');
    assert.equal(fn.lastError?.code, 'RUNTIME_UNAVAILABLE');
    assert.equal(fn.state, 'unloaded');
    assert.equal(await text(fn), 'back');
    assert.equal(fn.lastError, null);
    assert.ok(loadedMs >= 0);
    assert.equal(rt.loads, 2);
    await fn.dispose();
  });

  it('disposed while loading: the load ends, its result is freed, the waiting call is refused', async () => {
    const rt = new Counting(js);
    rt.hold();
    const fn = new LazyFunction({ runtime: rt, source: source('js', 'function handle() { return "x"; }'), log: quiet, idleMs: 0 });
    const call = fn.invoke(req);
    await until('the load started', () => rt.loads === 1);
    assert.equal(fn.state, 'loading');
    const disposed = fn.dispose();
    rt.release();
    await disposed;
    await assert.rejects(call, (e: unknown) => isZvError(e, 'FUNCTION_UNAVAILABLE'));
    assert.equal(js.liveCount, 0);
    assert.equal(fn.state, 'disposed');
  });

  it('a handle that is not loaded disposes at once without loading', async () => {
    const rt = new Counting(js);
    const fn = new LazyFunction({ runtime: rt, source: source('js', 'function handle() { return "x"; }'), log: quiet, idleMs: 100 });
    await fn.dispose();
    assert.equal(rt.loads, 0);
    assert.equal(fn.state, 'disposed');
  });

  it('keeps the runtime limits: a timeout is the runtime\'s answer, and the function still works after it', async () => {
    const s = { ...source('js', 'function handle(req) { if (req.body === "loop") for (;;) {} return "ok"; }'), timeoutMs: 300 };
    const fn = new LazyFunction({ runtime: js, source: s, log: quiet, idleMs: 0 });
    await assert.rejects(fn.invoke({ ...req, method: 'POST', body: 'loop' }), (e: unknown) => isZvError(e, 'FUNCTION_TIMEOUT'));
    assert.equal(await text(fn), 'ok');
    await fn.dispose();
  });
});

describe('LazyFunction (lua)', () => {
  let lua: LuaRuntime;
  before(() => {
    lua = new LuaRuntime({ workers: 2 });
  });
  after(async () => {
    await lua.close();
  });

  it('frees the Lua state after idle time and loads again on the next call', async () => {
    const rt = new Counting(lua);
    let liveAtLoad = -1;
    const fn = new LazyFunction({ runtime: rt, source: source('lua', 'function handle(req) return os.getenv("GREETING") end'), log: quiet, idleMs: 200, onLoad: () => (liveAtLoad = lua.liveCount) });
    assert.equal(lua.liveCount, 0);
    const answers = await Promise.all(Array.from({ length: 5 }, () => text(fn)));
    assert.deepEqual(answers, Array(5).fill('hi'));
    assert.equal(rt.loads, 1);
    assert.equal(liveAtLoad, 1);
    await until('the idle function is unloaded', () => lua.liveCount === 0);
    assert.equal(await text(fn), 'hi');
    assert.equal(rt.loads, 2);
    await fn.dispose();
    assert.equal(lua.liveCount, 0);
  });
});

describe('LazyFunction (python)', () => {
  let py: PythonRuntime;
  let skip: string | false = false;
  before(async () => {
    py = new PythonRuntime();
    const av = await py.available();
    if (!av.ok) skip = av.reason;
  });
  after(async () => {
    await py.close();
  });

  it('stops the worker process after idle time and starts one on the next call', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new Counting(py);
    let liveAtLoad = -1;
    const fn = new LazyFunction({
      runtime: rt, source: source('python', 'import os\ndef handle(req):\n    return os.environ.get("GREETING", "")\n'), log: quiet, idleMs: 300,
      onLoad: () => (liveAtLoad = py.liveCount),
    });
    assert.equal(py.liveCount, 0);
    const answers = await Promise.all(Array.from({ length: 3 }, () => text(fn)));
    assert.deepEqual(answers, Array(3).fill('hi'));
    assert.equal(rt.loads, 1);
    assert.equal(liveAtLoad, 1);
    await until('the idle function is unloaded', () => py.liveCount === 0);
    assert.equal(await text(fn), 'hi');
    assert.equal(rt.loads, 2);
    await fn.dispose();
    assert.equal(py.liveCount, 0);
  });
});
