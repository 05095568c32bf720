// Spare workers (spares.ts): a function that needs a worker takes a sandboxed interpreter started
// ahead of time, which becomes its worker for good, with the same sandbox as a fresh one.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import type { FunctionSource } from '../types.js';
import { PythonRuntime } from './index.js';
import { processAlive as alive } from '../../../test/support/procs.js';
import type { PythonFunction } from './function.js';

const py = (...lines: string[]): string => `${lines.join('\n')}\n`;
const REQ = { method: 'GET', path: '/p', query: {}, headers: {}, body: '' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = () => {};

// What the worker sees of itself: its env, whether it may fork, its RLIMIT_AS and its /tmp.
const INSPECT = py(
  'import os, json, resource',
  'os.makedirs("/tmp/mine", exist_ok=True)',
  'def handle(req):',
  '    try:',
  '        os.fork()',
  '        fork = "allowed"',
  '    except OSError as e:',
  '        fork = type(e).__name__',
  '    return json.dumps({"env": dict(os.environ), "fork": fork, "as": resource.getrlimit(resource.RLIMIT_AS)[0], "tmp": sorted(os.listdir("/tmp"))})',
);

async function until(what: string, cond: () => boolean): Promise<void> {
  for (const end = Date.now() + 60_000; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describe('python spare workers', () => {
  let n = 0;
  const source = (code: string, extra: Partial<FunctionSource> = {}): FunctionSource =>
    ({ id: `spares/f${n++}`, runtime: 'python', code, filename: 'handler.py', timeoutMs: 30_000, memoryMb: 64, env: {}, ...extra });
  const inspect = async (fn: PythonFunction): Promise<{ env: Record<string, string>; fork: string; as: number; tmp: string[] }> =>
    JSON.parse(String((await fn.invoke(REQ)).body)) as { env: Record<string, string>; fork: string; as: number; tmp: string[] };
  let skip: string | false = false;

  before(async () => {
    const av = await new PythonRuntime().available();
    if (!av.ok) skip = av.reason;
  });

  it('gives a spare to the next function to load, for good, sandboxed as a fresh worker', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime();
    try {
      const a = (await rt.load(source(INSPECT, { env: { WHO: 'a' } }), quiet)) as PythonFunction;
      await until('two spares are up', () => rt.sparePids.length === 2);
      const spare = rt.sparePids[0]!;
      assert.ok(!rt.sparePids.includes(a.pid!));
      const b = (await rt.load(source(INSPECT, { env: { WHO: 'b' } }), quiet)) as PythonFunction;
      assert.equal(b.pid, spare, 'b did not get the oldest spare');
      // a new spare in its place, never the one b took
      await until('a new spare is up', () => rt.sparePids.length === 2 && !rt.sparePids.includes(spare));
      const seenA = await inspect(a);
      const seenB = await inspect(b);
      assert.deepEqual(seenA.env, { WHO: 'a' });
      assert.deepEqual(seenB.env, { WHO: 'b' });
      for (const seen of [seenA, seenB]) {
        assert.equal(seen.fork, 'PermissionError');
        assert.ok(seen.as > 0, `RLIMIT_AS ${seen.as}`);
        assert.deepEqual(seen.tmp, ['mine']);
      }
    } finally {
      await rt.close();
    }
  });

  it('keeps spares for the sandbox commands used last, and stops them at close', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ spares: { maxCommands: 1, perCommand: 1 } });
    try {
      await rt.load(source(INSPECT, { memoryMb: 64 }), quiet);
      await until('a spare is up', () => rt.sparePids.length === 1);
      const spare64 = rt.sparePids[0]!;
      // Another memory size is another sandbox (/tmp size): not that spare; and with one command
      // kept, the spare of 64 MiB goes.
      const f96 = (await rt.load(source(INSPECT, { memoryMb: 96 }), quiet)) as PythonFunction;
      assert.notEqual(f96.pid, spare64);
      await until('the 64 MiB spare is stopped', () => !alive(spare64));
      await until('a 96 MiB spare is up', () => rt.sparePids.length === 1);
      const spare96 = rt.sparePids[0]!;
      await rt.close();
      await until('the spare is stopped at close', () => !alive(spare96));
      assert.deepEqual(rt.sparePids, []);
    } finally {
      await rt.close();
    }
  });

  it('keeps none with perCommand 0', async (t) => {
    if (skip) return t.skip(skip);
    const rt = new PythonRuntime({ spares: { perCommand: 0 } });
    try {
      const fn = (await rt.load(source(INSPECT), quiet)) as PythonFunction;
      assert.equal((await inspect(fn)).fork, 'PermissionError');
      assert.deepEqual(rt.sparePids, []);
    } finally {
      await rt.close();
    }
  });
});
