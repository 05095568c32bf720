// Python runtime: the response cap is checked in the worker, and the reply pipe is cut by the host
// when code writes around the protocol; the function keeps answering afterwards.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import type { LoadedFunction } from '../types.js';
import { PythonRuntime } from './index.js';
import { maxReplyBytes } from './worker-process.js';

const MIB = 1024 * 1024;
const REQ: FunctionRequest = { method: 'GET', path: '/', query: {}, headers: {}, body: '' };
const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));
const settle = (p: Promise<unknown>): Promise<unknown> => p.then((r) => r, (e: unknown) => e);

const CODE = `import os
calls = 0
def handle(req):
    global calls
    calls += 1
    q = req['query']
    if q.get('raw'):
        # a reply line far over the limit, written straight to the reply pipe
        chunk = b'x' * (1024 * 1024)
        os.write(4, b'{"t":"result","value":"')
        for _ in range(int(q['raw'])):
            os.write(4, chunk)
        os.write(4, b'"}\\n')
    if q.get('headers'):
        return {'status': 200, 'headers': {'x-big': 'h' * int(q['headers'])}, 'body': 'ok'}
    if q.get('nul'):
        return '\\x00' * int(q['nul'])
    return 'calls=%d' % calls
`;

describe('python runtime: response cap', () => {
  const rt = new PythonRuntime({ maxResponseBytes: MIB });
  let fn: LoadedFunction;
  before(async () => {
    const av = await rt.available();
    if (!av.ok) return;
    fn = await rt.load({ id: 'py/cap', runtime: 'python', code: CODE, filename: 'cap.py', timeoutMs: 20000, memoryMb: 256, env: {} }, () => {});
  });
  after(async () => {
    await fn?.dispose();
    await rt.close();
  });

  it('counts headers, and JSON escapes do not count against the cap', async (t) => {
    if (!fn) return t.skip('python is not available here');
    assert.ok(isZvError(await settle(fn.invoke({ ...REQ, query: { headers: String(MIB + 1) } })), 'FUNCTION_RESPONSE_TOO_LARGE'));
    // 1 MiB - 1 of NUL characters: 6 MiB of JSON on the pipe, still under the reply limit
    const nul = await fn.invoke({ ...REQ, query: { nul: String(MIB - 64) } });
    assert.equal(text(nul.body).length, MIB - 64);
  });

  it('cuts a reply written around the protocol at the reply limit and starts a new worker', async (t) => {
    if (!fn) return t.skip('python is not available here');
    assert.ok(maxReplyBytes(MIB) < 8 * MIB);
    const before = process.memoryUsage().rss;
    const err = await settle(fn.invoke({ ...REQ, query: { raw: '200' } }));
    assert.ok(isZvError(err, 'FUNCTION_RESPONSE_TOO_LARGE'), String(err));
    assert.ok(process.memoryUsage().rss - before < 100 * MIB, 'the host buffered the reply');
    // a fresh worker answers (the module state starts again)
    assert.equal(text((await fn.invoke(REQ)).body), 'calls=1');
  });
});
