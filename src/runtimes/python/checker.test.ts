// The check zygote (what a sync runs to compile Python functions): one per namespace, a forked
// child per check, and nothing of one function reachable from the next one's check — not its env
// in the zygote's memory, not its files in /tmp; a child cannot ptrace or read the zygote.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isZvError } from '../../errors/registry.js';
import type { FunctionSource, LogStream } from '../types.js';
import { PythonRuntime } from './index.js';

const py = (...lines: string[]): string => `${lines.join('\n')}\n`;

// Raises at import (a failed check, with the reason) when the needle prefix followed by 32 hex
// digits is found in this process's own memory: the prefix alone is in this module's code.
const SCAN_MEMORY = py(
  'import re',
  'pat = re.compile(rb"ZVSECRET[0-9a-f]{32}")',
  'found = []',
  'with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:',
  '    for ln in maps:',
  '        addr, perms = ln.split()[:2]',
  '        if "r" not in perms:',
  '            continue',
  '        lo, hi = (int(x, 16) for x in addr.split("-"))',
  '        try:',
  '            mem.seek(lo)',
  '            data = mem.read(hi - lo)',
  '        except (OSError, OverflowError, ValueError):',
  '            continue',
  '        found += pat.findall(data)',
  'if found:',
  '    raise RuntimeError("found %r" % found[:3])',
  'def handle(req):',
  '    return "ok"',
);

describe('python check zygote', () => {
  const rt = new PythonRuntime();
  let skip: string | false = false;
  const logs: { stream: LogStream; line: string }[] = [];
  const source = (ns: string, code: string, extra: Partial<FunctionSource> = {}): FunctionSource =>
    ({ id: `${ns}/app/f.py@1`, runtime: 'python', code, filename: 'handler.py', timeoutMs: 5000, memoryMb: 64, env: {}, ...extra });
  const log = (stream: LogStream, line: string) => logs.push({ stream, line });

  before(async () => {
    const av = await rt.available();
    if (!av.ok) skip = av.reason;
  });
  after(() => rt.close());

  it('gives the next check of the namespace nothing of the previous one: env, code, /tmp files', async (t) => {
    if (skip) return t.skip(skip);
    const secret = `ZVSECRET${randomBytes(16).toString('hex')}`;
    // The first function holds the secret in its env, in a string of its code, and in /tmp; its
    // message is big (a long comment) so the next, smaller one does not simply reuse its memory.
    await rt.compile(source('shared', py(
      `# ${'x'.repeat(20_000)}`,
      'import os',
      `KEPT = "${secret}"`,
      'open("/tmp/left-behind", "w").write(os.environ["TOKEN"])',
      'os.makedirs("/tmp/dir/sub")',
      'os.chmod("/tmp/dir", 0)',
      'def handle(req):',
      '    return KEPT',
    ), { env: { TOKEN: secret } }), log);
    await rt.compile(source('shared', py(
      'import os',
      'if os.listdir("/tmp"):',
      '    raise RuntimeError("tmp holds %r" % os.listdir("/tmp"))',
      'def handle(req):',
      '    return "ok"',
    )), log);
    await rt.compile(source('shared', SCAN_MEMORY), log);
  });

  it('logs what a module prints while checked under that function only', async (t) => {
    if (skip) return t.skip(skip);
    const xs: string[] = [];
    const ys: string[] = [];
    await rt.compile(source('logs', py(
      'import sys',
      'for i in range(2000):',
      '    print("from x %d" % i)',
      '    print("err x %d" % i, file=sys.stderr)',
      'def handle(req):',
      '    return 1',
    )), (_s, line) => xs.push(line));
    await rt.compile(source('logs', py('print("from y")', 'def handle(req):', '    return 1')), (_s, line) => ys.push(line));
    assert.equal(xs.length, 4000);
    assert.ok(xs.includes('from x 1999') && xs.includes('err x 0'));
    assert.deepEqual(ys, ['from y']);
  });

  it('keeps a child from tracing or reading the zygote, and from starting processes', async (t) => {
    if (skip) return t.skip(skip);
    await rt.compile(source('trace', py(
      'import ctypes, os',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'parent = os.getppid()',
      'if libc.ptrace(16, parent, 0, 0) == 0:',  // PTRACE_ATTACH
      '    raise RuntimeError("ptrace attach worked")',
      'try:',
      '    open("/proc/%d/mem" % parent, "rb").read(1)',
      '    raise RuntimeError("read the zygote memory")',
      'except PermissionError:',
      '    pass',
      'try:',
      '    os.fork()',
      '    raise RuntimeError("fork worked")',
      'except PermissionError:',
      '    pass',
      'def handle(req):',
      '    return "ok"',
    )), log);
  });

  it('uses one zygote per namespace, logs what a module prints at import, and stops the zygote when idle', async (t) => {
    if (skip) return t.skip(skip);
    await rt.compile(source('ns-a', py('print("hello from import")', 'def handle(req):', '    return 1')), log);
    await rt.compile(source('ns-b', py('def handle(req):', '    return 1')), log);
    const a = rt.checkerPid('ns-a');
    const b = rt.checkerPid('ns-b');
    assert.ok(a !== undefined && b !== undefined && a !== b, `${a} ${b}`);
    for (const end = Date.now() + 60_000; !logs.some((l) => l.stream === 'stdout' && l.line === 'hello from import') && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    assert.ok(logs.some((l) => l.stream === 'stdout' && l.line === 'hello from import'), JSON.stringify(logs));
    for (const end = Date.now() + 60_000; rt.checkerPid('ns-a') !== undefined && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
    assert.equal(rt.checkerPid('ns-a'), undefined);
  });

  it('fails a module over its memory limit or still loading at its deadline, and keeps checking', async (t) => {
    if (skip) return t.skip(skip);
    await assert.rejects(rt.compile(source('lim', py('hog = [bytearray(1 << 20) for _ in range(200)]', 'def handle(req):', '    return 1'), { memoryMb: 32 }), log),
      (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /memory/i.test(e.message));
    await assert.rejects(rt.compile(source('lim', py('while True:', '    pass'), { timeoutMs: 200 }), log),
      (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /did not finish loading/.test(e.message));
    await rt.compile(source('lim', py('def handle(req):', '    return 1')), log);
  });
});
