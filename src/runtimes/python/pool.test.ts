// The Python worker pool: more workers while calls wait (bounded per function and in all), extra
// workers stopped after idle, the bound in all (--python-max-workers: real worker processes counted
// from /proc, a function with none taking an idle one from another or waiting in line within its
// timeout, no starvation), and `compile` (what a sync runs) keeping no process.
// The pool tests run unsandboxed so calls can meet at a barrier in a shared temp folder: a call
// waits there until `n` different worker processes have arrived, which proves they ran at once
// without timing anything.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import type { FunctionSource } from '../types.js';
import { PythonRuntime } from './index.js';
import type { PythonFunction } from './function.js';
import { childPids } from '../../../test/support/procs.js';

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

/**
 * Counts this process's python children (the unsandboxed workers; spares are off where it is used)
 * from /proc, every few ms and whenever `check` is called; `stop` gives the most seen at once.
 */
function sample(): { max: number; check: () => void; stop: () => number } {
  const s = {
    max: 0,
    check: () => {
      s.max = Math.max(s.max, childPids('python').length);
    },
    stop: () => {
      clearInterval(timer);
      s.check();
      return s.max;
    },
  };
  const timer = setInterval(s.check, 2);
  return s;
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

  it('keeps to --python-max-workers in all: a function with no worker takes the one idle the longest, and the other keeps its code', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ sandbox: false, workersPerFunction: 4, maxWorkers: 2, workerIdleMs: 60_000, spares: { perCommand: 0 } });
    const sampler = sample();
    try {
      const a = (await rt.load(source(BARRIER, { BARRIER: barrier() }), quiet)) as PythonFunction;
      // Two workers meet; the 4 calls could use 4 but the total is 2.
      const seen = await pids(a, 4, 2);
      assert.equal(seen.size, 2);
      assert.equal(a.workerCount, 2);
      const b = (await rt.load(source(py('def handle(req):', '    return "b"')), quiet)) as PythonFunction;
      assert.equal(String((await b.invoke(REQ)).body), 'b');
      assert.equal(b.workerCount, 1);
      assert.equal(a.workerCount, 1, 'b took the worker of a idle the longest');
      assert.equal(rt.workerCount, 2);
      // b's worker is not idle for workerIdleMs: a's calls share its one worker.
      assert.equal((await pids(a, 4, 1)).size, 1);
      assert.equal(a.workerCount, 1);
      assert.equal(rt.liveCount, 2);
    } finally {
      await rt.close();
    }
    assert.ok(sampler.stop() <= 2, `${sampler.max} python processes at once`);
  });

  it('never runs more worker processes than --python-max-workers: 5 functions called in turn on 2', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ sandbox: false, maxWorkers: 2, spares: { perCommand: 0 } });
    const sampler = sample();
    try {
      const fns: PythonFunction[] = [];
      for (let i = 0; i < 5; i++) {
        fns.push((await rt.load(source(py('import os', 'calls = 0', 'def handle(req):', '    global calls', '    calls += 1', `    return "f${i} %d" % calls`)), quiet)) as PythonFunction);
        sampler.check();
      }
      for (let round = 1; round <= 3; round++) {
        for (const [i, fn] of fns.entries()) {
          // A worker taken from a function (its module state goes with it) comes back on its next call.
          assert.match(String((await fn.invoke(REQ)).body), new RegExp(`^f${i} \\d+$`));
          sampler.check();
          assert.ok(rt.workerCount <= 2, String(rt.workerCount));
        }
        // All at once too: 5 functions, 2 workers, every call answers.
        const all = await Promise.all(fns.map((fn) => fn.invoke(REQ)));
        all.forEach((r, i) => assert.match(String(r.body), new RegExp(`^f${i} \\d+$`)));
        sampler.check();
      }
      assert.equal(rt.liveCount, 5, 'every function keeps its code loaded');
      assert.equal(fns.reduce((n, fn) => n + fn.workerCount, 0), rt.workerCount);
    } finally {
      await rt.close();
    }
    // 2: the sampler does see the workers (the first two functions had one each at once).
    assert.equal(sampler.stop(), 2, `${sampler.max} python processes at once`);
  });

  it('a call waiting while every worker is busy answers once one frees, or times out cleanly', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ sandbox: false, maxWorkers: 2, spares: { perCommand: 0 } });
    const sampler = sample();
    try {
      // a and b hold both workers until the gate file appears.
      const gate = barrier();
      const held = py(
        'import os, time',
        'def handle(req):',
        '    end = time.time() + 60',
        '    while not os.path.exists(os.path.join(os.environ["GATE"], req["body"])) and time.time() < end:',
        '        time.sleep(0.01)',
        '    return "held " + req["body"]',
      );
      const a = await rt.load(source(held, { GATE: gate }), quiet);
      const b = await rt.load(source(held, { GATE: gate }), quiet);
      const heldA = a.invoke({ ...REQ, body: 'one' });
      const heldB = b.invoke({ ...REQ, body: 'one' });
      await until('a and b run', () => rt.workerCount === 2 && (a as PythonFunction).workerCount === 1 && (b as PythonFunction).workerCount === 1);
      // c loads with every worker busy (a place in line, no worker) and its call times out cleanly.
      const short = { ...source(py('def handle(req):', '    return "c"')), timeoutMs: 300 };
      const c = (await rt.load(short, quiet)) as PythonFunction;
      assert.equal(c.workerCount, 0);
      await assert.rejects(c.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_TIMEOUT'));
      assert.equal(rt.waitingForWorker, 0, 'c left the line with its call');
      // d waits in line (its timeout is long) and answers once a's call ends and frees a worker.
      const d = (await rt.load(source(py('def handle(req):', '    return "d"')), quiet)) as PythonFunction;
      const waiting = d.invoke(REQ);
      await until('d waits in line', () => rt.waitingForWorker === 1);
      writeFileSync(join(gate, 'one'), '');
      assert.equal(String((await waiting).body), 'd');
      assert.equal(String((await heldA).body), 'held one');
      assert.equal(String((await heldB).body), 'held one');
      // c's next call gets a worker.
      assert.equal(String((await c.invoke(REQ)).body), 'c');
      assert.ok(rt.workerCount <= 2);
    } finally {
      await rt.close();
    }
    assert.ok(sampler.stop() <= 2, `${sampler.max} python processes at once`);
  });

  it('does not starve a function waiting for a first worker behind busy ones (their extra workers first)', async (t) => {
    if (skip) return t.skip(skip);
    for (const max of [2, 1]) {
      const rt = new PythonRuntime({ sandbox: false, maxWorkers: max, workersPerFunction: 2, spares: { perCommand: 0 } });
      const sampler = sample();
      try {
        const busy = (await rt.load(source(py('import time', 'def handle(req):', '    time.sleep(0.02)', '    return "busy"')), quiet)) as PythonFunction;
        // `busy` always has 4 calls waiting or running: its queue never empties while `other` waits.
        let done = false;
        let busyCalls = 0;
        const keepBusy = async (): Promise<void> => {
          while (!done) {
            assert.equal(String((await busy.invoke(REQ)).body), 'busy');
            busyCalls++;
          }
        };
        const loops = Array.from({ length: 4 }, () => keepBusy());
        await until('busy runs on every worker', () => busy.workerCount === max);
        // Loaded with every worker busy: in line, and its call waits there.
        const other = (await rt.load(source(py('def handle(req):', '    return "other"')), quiet)) as PythonFunction;
        const answer = await other.invoke(REQ);
        done = true;
        await Promise.all(loops);
        assert.equal(String(answer.body), 'other');
        assert.ok(busyCalls > 0);
      } finally {
        await rt.close();
      }
      assert.ok(sampler.stop() <= max, `${sampler.max} python processes at once (max ${max})`);
    }
  });

  it('gives a function that wants one more worker the worker of another idle for workerIdleMs', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ sandbox: false, maxWorkers: 2, workersPerFunction: 2, workerIdleMs: 300, spares: { perCommand: 0 } });
    try {
      const b = (await rt.load(source(py('def handle(req):', '    return "b"')), quiet)) as PythonFunction;
      assert.equal(String((await b.invoke(REQ)).body), 'b');
      const a = (await rt.load(source(BARRIER, { BARRIER: barrier() }), quiet)) as PythonFunction;
      // Two calls of a meet only on two workers: the second is b's, once idle for 300 ms.
      assert.equal((await pids(a, 2, 2)).size, 2);
      assert.equal(b.workerCount, 0);
      assert.equal(String((await b.invoke(REQ)).body), 'b');
      assert.ok(rt.workerCount <= 2);
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
