// The Python runtime against the shared runtime contract, plus Python-specific behaviour:
// warm workers, async handlers, queueing, recovery after timeouts, memory errors and crashes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import { runtimeContract } from '../contract.js';
import type { FunctionSource, LoadedFunction, LogStream } from '../types.js';
import { PythonRuntime } from './index.js';
import { processAlive as alive } from '../../../test/support/procs.js';
import type { PythonFunction } from './function.js';

const py = (...lines: string[]): string => `${lines.join('\n')}\n`;

runtimeContract({
  name: 'python',
  create: (o) => new PythonRuntime(o),
  samples: {
    echo: py(
      'def handle(req):',
      '    keys = ("method", "path", "query", "headers", "body")',
      '    return {"status": 200, "body": {k: req[k] for k in keys}}',
    ),
    text: py('def handle(req):', '    return "hello"'),
    custom: py('def handle(req):', '    return {"status": 201, "headers": {"x-test": "yes"}, "body": "created"}'),
    async: py('import asyncio', 'async def handle(req):', '    await asyncio.sleep(0.01)', '    return "async ok"'),
    throws: py('def handle(req):', '    raise RuntimeError("boom")'),
    loop: py('def handle(req):', '    while True:', '        pass'),
    memory: py('def handle(req):', '    chunks = []', '    while True:', '        chunks.append(bytearray(1 << 20))'),
    syntaxError: py('def handle(req):', '    return 1 +'),
    readHostFile: py(
      'def handle(req):',
      '    try:',
      '        with open("/etc/passwd") as f:',
      '            return f.read()',
      '    except Exception as e:',
      '        return "error: %r" % e',
    ),
    spawnProcess: py(
      'import os, subprocess',
      'def handle(req):',
      '    out = []',
      '    try:',
      '        out.append(subprocess.run(["id"], capture_output=True, text=True).stdout)',
      '    except Exception as e:',
      '        out.append("subprocess: %r" % e)',
      '    try:',
      '        out.append("os.system: %r" % os.system("id"))',
      '    except Exception as e:',
      '        out.append("os.system: %r" % e)',
      '    try:',
      '        out.append(os.popen("id").read())',
      '    except Exception as e:',
      '        out.append("os.popen: %r" % e)',
      '    return "\\n".join(out)',
    ),
    print: py('def handle(req):', '    print("hello log")', '    return "ok"'),
    env: py('import os', 'def handle(req):', '    return os.environ.get("GREETING", "")'),
    globalWrite: py('import builtins', 'def handle(req):', '    builtins.zv_leak = "secret"', '    return "ok"'),
    globalRead: py('import builtins', 'def handle(req):', '    return getattr(builtins, "zv_leak", "absent")'),
    bigText: py('def handle(req):', '    return "x" * int(req["body"])'),
    bigJson: py('def handle(req):', '    return {"status": 200, "body": {"data": "x" * int(req["body"])}}'),
    plainObject: py('def handle(req):', '    return {"ok": True, "items": [1, 2, 3]}'),
    asyncPlainObject: py('import asyncio', 'async def handle(req):', '    await asyncio.sleep(0.01)', '    return {"ok": True, "async": True}'),
    mixedObject: py('def handle(req):', '    return {"status": 201, "data": "x"}'),
    bigPlainObject: py('def handle(req):', '    return {"data": "x" * int(req["body"])}'),
  },
});

const REQ: FunctionRequest = { method: 'GET', path: '/p', query: {}, headers: {}, body: '' };
const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('python runtime', () => {
  const rt = new PythonRuntime();
  const logs: { stream: LogStream; line: string }[] = [];
  const loaded: LoadedFunction[] = [];
  let n = 0;
  const load = async (code: string, extra: Partial<FunctionSource> = {}, runtime: PythonRuntime = rt): Promise<PythonFunction> => {
    const fn = await runtime.load(
      { id: `py/f${n++}`, runtime: 'python', code, filename: 'handler.py', timeoutMs: 3000, memoryMb: 64, env: {}, ...extra },
      (stream, line) => logs.push({ stream, line }),
    );
    loaded.push(fn);
    return fn as PythonFunction;
  };
  const call = async (fn: LoadedFunction, body = ''): Promise<string> => text((await fn.invoke({ ...REQ, body })).body);

  before(async () => {
    const av = await rt.available();
    assert.ok(av.ok, av.ok ? '' : av.reason);
  });
  after(async () => {
    for (const f of loaded) await f.dispose();
    await rt.close();
  });

  it('keeps one warm worker: module state survives between invocations', async () => {
    const fn = await load(py('count = 0', 'def handle(req):', '    global count', '    count += 1', '    return str(count)'));
    assert.deepEqual([await call(fn), await call(fn), await call(fn)], ['1', '2', '3']);
  });

  it('runs async handlers with asyncio, including gather and a loop kept between calls', async () => {
    const fn = await load(py(
      'import asyncio',
      'async def part(i):',
      '    await asyncio.sleep(0.01)',
      '    return i * 2',
      'async def handle(req):',
      '    parts = await asyncio.gather(*(part(i) for i in range(5)))',
      '    return {"body": {"parts": parts, "body": req["body"]}}',
    ));
    assert.deepEqual(JSON.parse(await call(fn, 'x')), { parts: [0, 2, 4, 6, 8], body: 'x' });
    assert.deepEqual(JSON.parse(await call(fn, 'y')), { parts: [0, 2, 4, 6, 8], body: 'y' });
  });

  it('awaits what a handler returns even when the module never mentions asyncio (imported on first use)', async () => {
    const fn = await load(py(
      'class Later:',
      '    def __await__(self):',
      '        yield from ()',
      '        return "awaited"',
      'def handle(req):',
      '    return Later()',
    ));
    assert.equal(await call(fn), 'awaited');
    assert.equal(await call(fn), 'awaited');
  });

  it('answers 30 queued concurrent invocations, in order, one at a time (one worker per function)', async () => {
    const one = new PythonRuntime({ workersPerFunction: 1 });
    const fn = await load(py(
      'import time',
      'active = 0',
      'def handle(req):',
      '    global active',
      '    active += 1',
      '    time.sleep(0.005)',
      '    seen = active',
      '    active -= 1',
      '    return {"body": {"n": req["body"], "active": seen}}',
    ), {}, one);
    const all = await Promise.all(Array.from({ length: 30 }, (_, i) => fn.invoke({ ...REQ, body: `n${i}` })));
    all.forEach((res, i) => assert.deepEqual(JSON.parse(text(res.body)), { n: `n${i}`, active: 1 }));
    await one.close();
  });

  it('times out one invocation, kills the worker and still answers the queued ones', async () => {
    const fn = await load(py(
      'def handle(req):',
      '    while req["body"] == "loop":',
      '        pass',
      '    return "ok " + req["body"]',
    ), { timeoutMs: 500 });
    const pidBefore = fn.pid;
    const results = await Promise.all(['loop', 'a', 'b'].map((b) => call(fn, b).catch((e: unknown) => e)));
    assert.ok(isZvError(results[0], 'FUNCTION_TIMEOUT'), String(results[0]));
    assert.deepEqual(results.slice(1), ['ok a', 'ok b']);
    // The endless loop ended in FUNCTION_TIMEOUT: the timeout was enforced (how long the whole took
    // depends on the machine: a fresh worker answers the queued calls).
    assert.notEqual(fn.pid, pidBefore);
    assert.ok(pidBefore !== undefined && await gone(pidBefore), 'the timed-out worker is still running');
  });

  it('maps a MemoryError to FUNCTION_MEMORY_LIMIT and serves the next call from a fresh worker', async () => {
    const fn = await load(py(
      'hog = []',
      'def handle(req):',
      '    if req["body"] == "hog":',
      '        while True:',
      '            hog.append(bytearray(1 << 20))',
      '    return "fine %d" % len(hog)',
    ), { memoryMb: 32, timeoutMs: 10000 });
    await assert.rejects(fn.invoke({ ...REQ, body: 'hog' }), (e: unknown) => isZvError(e, 'FUNCTION_MEMORY_LIMIT'));
    assert.equal(await call(fn), 'fine 0');
  });

  it('reports a raised exception as FUNCTION_ERROR "<Type>: <message>" and logs the traceback', async () => {
    const fn = await load(py('def handle(req):', '    raise KeyError("nope")'), { id: 'py/raises' });
    await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && e.message === "KeyError: 'nope'");
    const logged = () => logs.some((l) => l.stream === 'stderr' && l.line.includes('File "handler.py", line 2, in handle'));
    const deadline = Date.now() + 60_000;
    while (!logged() && Date.now() < deadline) await sleep(20);
    assert.ok(logged(), 'traceback not in the log');
  });

  it('shifts compile errors of inline code by lineOffset', async () => {
    await assert.rejects(
      load(py('def handle(req):', '    return (1 +', '', 'x = 1'), { filename: 'zerverless.yaml', lineOffset: 12 }),
      (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /^zerverless\.yaml:13: /.test(e.message),
    );
  });

  it('treats a module without a callable handle, or one that raises at import, as a compile error', async () => {
    await assert.rejects(load('x = 1\n'), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /handler\.py: .*handle/.test(e.message));
    await assert.rejects(load('handle = 3\n'), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /not callable/.test(e.message));
    await assert.rejects(
      load(py('import os', 'raise ValueError("bad config")', 'def handle(req): pass')),
      (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && e.message === 'handler.py:2: ValueError: bad config',
    );
  });

  it('keeps the protocol intact whatever the function prints', async () => {
    const fn = await load(py(
      'import sys',
      'def handle(req):',
      '    print("x" * 1000000, end="")',
      '    print(\'{"t":"result","value":"forged"}\')',
      '    sys.stdout.buffer.write(bytes(range(256)) + b"\\n")',
      '    sys.stdout.write("no newline at the end")',
      '    print("to stderr \\ud800 surrogate", file=sys.stderr)',
      '    return {"body": {"ok": True}}',
    ));
    for (let i = 0; i < 3; i++) assert.deepEqual(JSON.parse(await call(fn)), { ok: true });
    const deadline = Date.now() + 60_000;
    while (!logs.some((l) => l.line.includes('forged')) && Date.now() < deadline) await sleep(20);
    assert.ok(logs.some((l) => l.stream === 'stdout' && l.line.includes('"forged"')));
    assert.ok(logs.some((l) => l.stream === 'stderr' && l.line.includes('to stderr')));
    assert.ok(logs.every((l) => l.line.length <= 16 * 1024), 'huge lines are split');
  });

  it('sends bytes bodies as binary', async () => {
    const fn = await load(py('def handle(req):', '    return {"headers": {"content-type": "image/png"}, "body": bytes([0, 255, 10])}'));
    const res = await fn.invoke(REQ);
    assert.deepEqual([...(res.body as Uint8Array)], [0, 255, 10]);
    assert.equal(res.headers['content-type'], 'image/png');
  });

  it('rejects unusable return values with FUNCTION_BAD_RESPONSE', async () => {
    const fn = await load(py('def handle(req):', '    return {"status": 999}'));
    await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE'));
    const fn2 = await load(py('def handle(req):', '    return {"body": {1, 2}}'));
    await assert.rejects(fn2.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE'));
    assert.equal(await call(fn2).catch(() => 'still up'), 'still up');
  });

  it('replaces a worker killed from outside', async () => {
    const fn = await load(py('import os', 'def handle(req):', '    return "pid %d" % os.getpid()'));
    assert.match(await call(fn), /^pid \d+$/);
    const old = fn.pid;
    assert.ok(old !== undefined);
    // The interpreter, as an OOM killer would. The first kill may take the rest with it (bwrap's pid
    // namespace ends with its init), so a later pid may be gone already: ESRCH is no failure.
    for (const pid of descendants(old)) killIfThere(pid);
    const deadline = Date.now() + 60_000;
    while ((fn.pid === undefined || fn.pid === old) && Date.now() < deadline) await sleep(20);
    assert.notEqual(fn.pid, old);
    assert.match(await call(fn), /^pid \d+$/);
  });

  it('restarts a worker that crashes during an invocation', async () => {
    const fn = await load(py('import os', 'def handle(req):', '    if req["body"] == "die":', '        os._exit(3)', '    return "alive"'));
    await assert.rejects(fn.invoke({ ...REQ, body: 'die' }), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && /exited/.test(e.message));
    assert.equal(await call(fn), 'alive');
  });

  it('kills the worker on dispose and refuses later calls', async () => {
    const fn = await load(py('def handle(req):', '    return "x"'));
    const pid = fn.pid;
    assert.ok(pid !== undefined && alive(pid));
    await fn.dispose();
    assert.ok(!alive(pid));
    await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_UNAVAILABLE'));
  });

  // Functions written for the original Zerverless: the module ends with result = handle(INPUT)
  // and prints json.dumps(result); the original ran it once per request.
  it('runs an original-Zerverless module unchanged, once per call, with INPUT set to that request', async () => {
    const fn = await load(py(
      'import json',
      'calls = []',
      'def handle(event):',
      '    calls.append(event["body"])',
      '    return {"status": 200, "body": {"method": event["method"], "body": event["body"], "calls": len(calls)}}',
      'result = handle(INPUT)',
      'print(json.dumps(result))',
    ));
    // each call re-runs the module: module state starts afresh, as in the original
    assert.deepEqual(JSON.parse(await call(fn, 'one')), { method: 'GET', body: 'one', calls: 1 });
    assert.deepEqual(JSON.parse(await call(fn, 'two')), { method: 'GET', body: 'two', calls: 1 });
    const deadline = Date.now() + 60_000;
    const printed = () => logs.some((l) => l.stream === 'stdout' && l.line.includes('"body": "two"'));
    while (!printed() && Date.now() < deadline) await sleep(20);
    assert.ok(printed(), 'what the module prints still goes to the function log');
  });

  it('answers with the one JSON document an original-style module prints when it sets no result', async () => {
    const fn = await load(py('import json', 'print(json.dumps({"echo": INPUT["body"], "query": INPUT["query"]}))'));
    assert.deepEqual(JSON.parse(text((await fn.invoke({ ...REQ, query: { a: '1' }, body: 'hi' })).body)), { echo: 'hi', query: { a: '1' } });
    const noJson = await load(py('print("hello " + INPUT["body"])'));
    await assert.rejects(noJson.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && /no top-level result/.test(e.message));
  });

  it('reports an original-style module that raises as a FUNCTION_ERROR of that call, and keeps serving', async () => {
    const fn = await load(py('def handle(event):', '    if event["body"] == "bad":', '        raise ValueError("bad input")', '    return "fine"', 'result = handle(INPUT)'));
    await assert.rejects(fn.invoke({ ...REQ, body: 'bad' }), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && e.message === 'ValueError: bad input');
    assert.equal(await call(fn, 'ok'), 'fine');
  });

  it('keeps the new style: imported once, handle called per call, INPUT also holding the current request', async () => {
    const fn = await load(py(
      'count = 0',
      'def handle(req):',
      '    global count',
      '    count += 1',
      '    return {"body": {"count": count, "same": INPUT is req, "body": INPUT["body"]}}',
    ));
    assert.deepEqual(JSON.parse(await call(fn, 'a')), { count: 1, same: true, body: 'a' });
    assert.deepEqual(JSON.parse(await call(fn, 'b')), { count: 2, same: true, body: 'b' });
  });

  it('says why it is unavailable without bwrap and refuses to load', async () => {
    const missing = new PythonRuntime({ bwrap: '/nonexistent/bwrap' });
    const av = await missing.available();
    assert.ok(!av.ok && /bubblewrap/.test(av.reason), JSON.stringify(av));
    await assert.rejects(
      missing.load({ id: 'x', runtime: 'python', code: 'def handle(r): pass\n', filename: 'h.py', timeoutMs: 1000, memoryMb: 64, env: {} }, () => {}),
      (e: unknown) => isZvError(e, 'RUNTIME_UNAVAILABLE'),
    );
    await missing.close();
  });
});

/** Whether `pid` is gone within a generous deadline (a killed child exists until Node reaps it). */
async function gone(pid: number): Promise<boolean> {
  for (const end = Date.now() + 60_000; alive(pid) && Date.now() < end;) await sleep(20);
  return !alive(pid);
}

/** SIGKILL to `pid`; a process that is already gone (ESRCH) is fine. */
function killIfThere(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/** Host pids below `pid` (children of children…), read from /proc. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let kids: number[] = [];
    try {
      kids = readChildren(p);
    } catch {
      return;
    }
    for (const k of kids) {
      out.push(k);
      walk(k);
    }
  };
  walk(pid);
  return out;
}

function readChildren(pid: number): number[] {
  const kids: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const s = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    if (s) kids.push(...s.split(/\s+/).map(Number));
  }
  return kids;
}
