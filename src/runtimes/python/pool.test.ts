// The Python worker pool: more workers while calls wait (bounded per function and in all), extra
// workers stopped after idle, and `compile` (what a sync runs) keeping no process.
// The pool tests run unsandboxed so calls can meet at a barrier in a shared temp folder: a call
// waits there until `n` different worker processes have arrived, which proves they ran at once
// without timing anything.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import type { FunctionSource } from '../types.js';
import { PythonRuntime } from './index.js';
import type { PythonFunction } from './function.js';

const py = (...lines: string[]): string => `${lines.join('\n')}\n`;
const REQ: FunctionRequest = { method: 'GET', path: '/p', query: {}, headers: {}, body: '' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = () => {};

async function until(what: string, cond: () => boolean): Promise<void> {
  for (const end = Date.now() + 60_000; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

// Each call writes its pid into BARRIER and waits (up to 60 s) until `n` different pids are there.
const BARRIER = py(
  'import os, time',
  'def handle(req):',
  '    d, n = os.environ["BARRIER"], int(req["body"])',
  '    open(os.path.join(d, str(os.getpid())), "w").close()',
  '    end = time.time() + 60',
  '    while len(os.listdir(d)) < n and time.time() < end:',
  '        time.sleep(0.01)',
  '    return str(os.getpid())',
);

describe('python worker pool', () => {
  const dirs: string[] = [];
  let n = 0;
  const source = (code: string, env: Record<string, string> = {}): FunctionSource =>
    ({ id: `pool/f${n++}`, runtime: 'python', code, filename: 'handler.py', timeoutMs: 90_000, memoryMb: 64, env });
  const barrier = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'zv-pool-'));
    dirs.push(d);
    return d;
  };
  const pids = async (fn: PythonFunction, calls: number, meet: number): Promise<Set<string>> => {
    const all = await Promise.all(Array.from({ length: calls }, () => fn.invoke({ ...REQ, body: String(meet) })));
    return new Set(all.map((r) => String(r.body)));
  };
  let skip: string | false = false;

  before(async () => {
    const av = await new PythonRuntime({ sandbox: false }).available();
    if (!av.ok) skip = av.reason;
  });
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('starts more workers while calls wait, up to --python-workers, and stops the extra ones after idle', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ sandbox: false, workersPerFunction: 3, workerIdleMs: 200 });
    try {
      const fn = (await rt.load(source(BARRIER, { BARRIER: barrier() }), quiet)) as PythonFunction;
      // 3 workers meet at the barrier; 6 calls: never more than 3 processes.
      const seen = await pids(fn, 6, 3);
      assert.equal(seen.size, 3, [...seen].join(' '));
      assert.ok(fn.workerCount <= 3, String(fn.workerCount));
      await until('the extra workers are stopped', () => fn.workerCount === 1 && rt.workerCount === 1);
      // The one left still answers.
      assert.equal((await fn.invoke({ ...REQ, body: '1' })).status, 200);
    } finally {
      await rt.close();
    }
    assert.equal(rt.workerCount, 0);
  });

  it('keeps to --python-max-workers in all, and a function always gets its first worker', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ sandbox: false, workersPerFunction: 4, maxWorkers: 2, workerIdleMs: 60_000 });
    try {
      const a = (await rt.load(source(BARRIER, { BARRIER: barrier() }), quiet)) as PythonFunction;
      // Two workers meet; the 4 calls could use 4 but the total is 2.
      const seen = await pids(a, 4, 2);
      assert.equal(seen.size, 2);
      assert.equal(a.workerCount, 2);
      const b = (await rt.load(source(py('def handle(req):', '    return "b"')), quiet)) as PythonFunction;
      assert.equal(String((await b.invoke(REQ)).body), 'b');
      assert.equal(b.workerCount, 1);
      assert.equal(rt.workerCount, 3);
      // Over budget: waiting calls of `a` do not start a third worker.
      await pids(a, 4, 2);
      assert.equal(a.workerCount, 2);
    } finally {
      await rt.close();
    }
  });

  it('answers every waiting call when one of several workers dies mid-call', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ sandbox: false, workersPerFunction: 2, workerIdleMs: 60_000 });
    try {
      const fn = (await rt.load(source(py(
        'import os, time',
        'def handle(req):',
        '    if req["body"] == "die":',
        '        os._exit(3)',
        '    time.sleep(0.01)',
        '    return "ok"',
      )), quiet)) as PythonFunction;
      const bodies = ['a', 'die', 'b', 'c', 'd', 'e', 'f'];
      const out = await Promise.all(bodies.map((b) => fn.invoke({ ...REQ, body: b }).then((r) => String(r.body), (e: unknown) => e)));
      assert.ok(isZvError(out[1], 'FUNCTION_ERROR'), String(out[1]));
      assert.deepEqual(out.filter((_, i) => i !== 1), Array(6).fill('ok'));
      assert.equal(String((await fn.invoke(REQ)).body), 'ok');
    } finally {
      await rt.close();
    }
  });
});

describe('python compile (a sync)', () => {
  const rt = new PythonRuntime();
  let skip: string | false = false;
  const source = (code: string): FunctionSource =>
    ({ id: 'compile/f', runtime: 'python', code, filename: 'handler.py', timeoutMs: 5000, memoryMb: 64, env: { NEEDED: 'yes' } });

  before(async () => {
    const av = await rt.available();
    if (!av.ok) skip = av.reason;
  });
  after(() => rt.close());

  it('fails a module that does not compile, raises at import or has no handle, and keeps no process', async (t) => {
    if (skip) return t.skip(skip);
    await rt.compile(source(py('import os', 'X = os.environ["NEEDED"]', 'def handle(req):', '    return X')), quiet);
    for (const bad of [py('def handle(req):', '    return 1 +'), py('raise ValueError("at import")'), py('x = 1')]) {
      await assert.rejects(rt.compile(source(bad), quiet), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR'));
    }
    assert.equal(rt.workerCount, 0);
    assert.equal(rt.liveCount, 0);
  });

  it('compiles many modules at once, a few processes at a time', async (t) => {
    if (skip) return t.skip(skip);
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => rt.compile(source(py('def handle(req):', `    return ${i}`)), quiet).then(() => 'ok', (e: unknown) => e)));
    assert.deepEqual(all, Array(12).fill('ok'));
    assert.equal(rt.workerCount, 0);
  });
});
