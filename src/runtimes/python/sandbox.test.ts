// What Python functions cannot do (PRODUCT.md §4): start processes, read the host's files (the
// repository, a data dir, /etc/passwd), see the host's environment or network.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FunctionSource, LoadedFunction } from '../types.js';
import { PythonRuntime } from './index.js';

const py = (...lines: string[]): string => `${lines.join('\n')}\n`;
const REQ = { method: 'GET', path: '/p', query: {}, headers: {}, body: '' };

/** Wraps `expr` so the handler returns its value or the error text. */
const attempt = (imports: string, expr: string): string => py(
  `import ${imports}`,
  'def handle(req):',
  '    try:',
  `        return "OK " + repr(${expr})`,
  '    except BaseException as e:',
  '        return "ERR %s: %s" % (type(e).__name__, e)',
);

describe('python sandbox', () => {
  const rt = new PythonRuntime();
  const loaded: LoadedFunction[] = [];
  const logLines: string[] = [];
  let dataDir = '';
  let n = 0;

  const run = async (code: string, extra: Partial<FunctionSource> = {}): Promise<string> => {
    const fn = await rt.load(
      { id: `sandbox/f${n++}`, runtime: 'python', code, filename: 'handler.py', timeoutMs: 5000, memoryMb: 64, env: {}, ...extra },
      (_s, line) => logLines.push(line),
    );
    loaded.push(fn);
    const body = (await fn.invoke(REQ)).body;
    return typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  };

  before(async () => {
    const av = await rt.available();
    assert.ok(av.ok, av.ok ? '' : av.reason);
    dataDir = mkdtempSync(join(tmpdir(), 'zv-data-'));
    writeFileSync(join(dataDir, 'state.db'), 'secret state');
  });
  after(async () => {
    for (const f of loaded) await f.dispose();
    await rt.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('cannot fork, exec or spawn', async () => {
    assert.match(await run(attempt('os', 'os.fork()')), /^ERR PermissionError/);
    assert.match(await run(attempt('os', 'os.execv("/usr/bin/id", ["id"])')), /^ERR PermissionError/);
    assert.match(await run(attempt('os', 'os.posix_spawn("/usr/bin/id", ["id"], {})')), /^ERR PermissionError/);
    assert.match(await run(attempt('subprocess', 'subprocess.check_output(["/usr/bin/id"])')), /^ERR PermissionError/);
    assert.match(await run(attempt('multiprocessing', 'multiprocessing.Process(target=print).start()')), /^ERR /);
    // os.system cannot start a shell either: nothing reaches the log
    assert.match(await run(attempt('os', 'os.system("id")')), /^OK /);
    assert.ok(!logLines.some((l) => /uid=\d+/.test(l)), 'a process ran');
  });

  it('still runs threads', async () => {
    const out = await run(py(
      'import threading',
      'from concurrent.futures import ThreadPoolExecutor',
      'def handle(req):',
      '    with ThreadPoolExecutor(4) as ex:',
      '        return str(sum(ex.map(lambda x: x * x, range(10))))',
    ));
    assert.equal(out, '285');
  });

  it('cannot read the repository, the data dir, home folders or /etc', async () => {
    const targets = [
      process.cwd(), join(process.cwd(), 'package.json'), dataDir, join(dataDir, 'state.db'),
      '/etc/passwd', '/etc/shadow', '/root', '/home', '/work',
    ];
    for (const t of targets) {
      const out = await run(attempt('os', `os.listdir(${JSON.stringify(t)}) if os.path.isdir(${JSON.stringify(t)}) else open(${JSON.stringify(t)}).read()`));
      assert.match(out, /^ERR (FileNotFoundError|PermissionError)/, `${t}: ${out}`);
    }
    const root = await run(attempt('os', 'sorted(os.listdir("/"))'));
    assert.doesNotMatch(root, /'(work|root|home|etc\/passwd)'/);
  });

  it('cannot write outside its private /tmp, and /tmp is empty and private', async () => {
    for (const p of ['/usr/zv', '/zv', '/dev/shm/zv', '/etc/zv']) {
      assert.match(await run(attempt('os', `open(${JSON.stringify(p)}, "w").write("x")`)), /^ERR (OSError|PermissionError|FileNotFoundError)/, p);
    }
    assert.match(await run(attempt('os', 'open("/tmp/zv", "w").write("x")')), /^OK 1$/);
    assert.equal(await run(attempt('os', 'os.listdir("/tmp")')), 'OK []');
  });

  it('sees only its function env, none of the host env', async () => {
    process.env.ZV_HOST_SECRET = 'leaked';
    try {
      const out = await run(attempt('os', 'dict(os.environ)'), { env: { GREETING: 'hi', PATH_LIKE: 'x' } });
      assert.equal(out, `OK {'GREETING': 'hi', 'PATH_LIKE': 'x'}`);
    } finally {
      delete process.env.ZV_HOST_SECRET;
    }
  });

  it('has no network and sees only its own processes', async () => {
    assert.match(await run(attempt('socket', 'socket.create_connection(("1.1.1.1", 53), timeout=2)')), /^ERR OSError/);
    const pids = await run(attempt('os', 'sorted(int(p) for p in os.listdir("/proc") if p.isdigit())'));
    const list = JSON.parse(pids.slice(3)) as number[];
    assert.ok(list.length <= 3, `sees ${pids}`);
  });

  it('runs unprivileged', async () => {
    assert.equal(await run(attempt('os', '(os.getuid(), os.getgid())')), 'OK (65534, 65534)');
    const caps = await run(attempt('os', '[l for l in open("/proc/self/status") if l.startswith("CapEff")][0].split()[1]'));
    assert.equal(caps, "OK '0000000000000000'");
  });
});
