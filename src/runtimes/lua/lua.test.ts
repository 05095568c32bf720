// Tests of the Lua runtime: the shared runtime contract plus Lua-specific sandbox, JSON and load tests.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isZvError } from '../../errors/registry.js';
import type { FunctionRequest } from '../../core/function-contract.js';
import { runtimeContract } from '../contract.js';
import type { FunctionSource, LoadedFunction } from '../types.js';
import { LuaRuntime } from './index.js';

runtimeContract({
  name: 'lua',
  create: (o) => new LuaRuntime(o),
  samples: {
    echo: `function handle(req)
  return {status=200, body={method=req.method, path=req.path, query=req.query, headers=req.headers, body=req.body}}
end`,
    text: `function handle(req) return "hello" end`,
    custom: `function handle(req) return {status=201, headers={["x-test"]="yes"}, body="created"} end`,
    throws: `function handle(req) error("boom") end`,
    loop: `function handle(req) while true do end end`,
    memory: `function handle(req)
  local t = {}
  local i = 0
  while true do i = i + 1; t[i] = string.rep("x", 1024) .. i end
end`,
    syntaxError: `function handle(req)
  return = 1
end`,
    readHostFile: `function handle(req)
  local f = io.open("/etc/passwd")
  return f:read("a")
end`,
    spawnProcess: `function handle(req)
  local p = io.popen("id")
  return p:read("a")
end`,
    print: `function handle(req) print("hello log") return "ok" end`,
    env: `function handle(req) return os.getenv("GREETING") end`,
    globalWrite: `function handle(req) zv_leak = "secret" return "ok" end`,
    globalRead: `function handle(req) return zv_leak or "absent" end`,
    bigText: `function handle(req) return string.rep("x", tonumber(req.body)) end`,
    bigJson: `function handle(req) return {status=200, body={data=string.rep("x", tonumber(req.body))}} end`,
    plainObject: `function handle(req) return {ok=true, items={1, 2, 3}} end`,
    mixedObject: `function handle(req) return {status=201, data="x"} end`,
    bigPlainObject: `function handle(req) return {data=string.rep("x", tonumber(req.body))} end`,
  },
});

const REQ: FunctionRequest = { method: 'GET', path: '/t', query: {}, headers: {}, body: '' };

function text(body: string | Uint8Array): string {
  return typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
}

describe('lua runtime', () => {
  let runtime: LuaRuntime;
  const loaded: LoadedFunction[] = [];
  let n = 0;
  const load = async (code: string, extra: Partial<FunctionSource> = {}): Promise<LoadedFunction> => {
    const fn = await runtime.load(
      { id: `test/lua/f${n++}`, runtime: 'lua', code, filename: 'handler.lua', timeoutMs: 2000, memoryMb: 64, env: {}, ...extra },
      () => {},
    );
    loaded.push(fn);
    return fn;
  };
  const body = async (code: string, extra: Partial<FunctionSource> = {}, req = REQ): Promise<string> =>
    text((await (await load(code, extra)).invoke(req)).body);

  before(() => {
    runtime = new LuaRuntime({ workers: 3 });
  });
  after(async () => {
    for (const f of loaded) await f.dispose();
    await runtime.close();
  });

  it('has no io, os.execute, require, dofile, loadfile, package or debug', async () => {
    const out = await body(`function handle(req)
  local names = {}
  for _, k in ipairs({"io", "require", "dofile", "loadfile", "package", "debug"}) do
    names[#names + 1] = k .. "=" .. type(_G[k])
  end
  for _, k in ipairs({"execute", "remove", "rename", "exit", "tmpname", "getenv", "time", "clock", "date"}) do
    names[#names + 1] = "os." .. k .. "=" .. type(os[k])
  end
  return table.concat(names, ",")
end`);
    assert.equal(out, 'io=nil,require=nil,dofile=nil,loadfile=nil,package=nil,debug=nil,'
      + 'os.execute=nil,os.remove=nil,os.rename=nil,os.exit=nil,os.tmpname=nil,os.getenv=function,os.time=function,os.clock=function,os.date=function');
  });

  it('keeps string, table, math, utf8 and coroutine', async () => {
    const out = await body(`function handle(req)
  local co = coroutine.wrap(function() coroutine.yield(("ab"):upper()) end)
  return table.concat({co(), tostring(math.max(1, 3)), utf8.char(233), string.format("%d", 7)}, "|")
end`);
    assert.equal(out, 'AB|3|é|7');
  });

  it('refuses binary chunks in load but runs text chunks', async () => {
    const out = await body(`function handle(req)
  local bin = string.dump(function() return 1 end)
  local f, err = load(bin, "x", "b")
  local g = load("return 40 + 2")
  return tostring(f) .. "|" .. tostring(err) .. "|" .. g()
end`);
    const [f, err, g] = out.split('|');
    assert.equal(f, 'nil');
    assert.match(err ?? '', /binary chunk/);
    assert.equal(g, '42');
  });

  it('os.getenv sees only the function env', async () => {
    process.env.ZV_LUA_TEST_SECRET = 'host secret';
    try {
      const out = await body(`function handle(req)
  return tostring(os.getenv("A")) .. "," .. tostring(os.getenv("ZV_LUA_TEST_SECRET")) .. "," .. tostring(os.getenv("PATH"))
end`, { env: { A: 'one' } });
      assert.equal(out, 'one,nil,nil');
    } finally {
      delete process.env.ZV_LUA_TEST_SECRET;
    }
  });

  it('converts nested tables and arrays to JSON', async () => {
    const fn = await load(`function handle(req)
  return {status=200, body={
    list={1, 2, "three", {x=true}},
    map={a=1.5, b={c={}}, [1.5]="float key"},
    sparse={[1]="a", [3]="c"},
    empty={},
    str="q\\"uote\\n",
    int=1 << 40,
    nan=0/0,
  }}
end`);
    const res = await fn.invoke(REQ);
    assert.match(res.headers['content-type'] ?? '', /application\/json/);
    assert.deepEqual(JSON.parse(text(res.body)), {
      list: [1, 2, 'three', { x: true }],
      map: { a: 1.5, b: { c: {} }, '1.5': 'float key' },
      sparse: { '1': 'a', '3': 'c' },
      empty: {},
      str: 'q"uote\n',
      int: 1099511627776,
      nan: null,
    });
  });

  it('reports cyclic tables and functions as FUNCTION_BAD_RESPONSE', async () => {
    const cyc = await load(`function handle(req) local t = {} t.self = t return {body=t} end`);
    await assert.rejects(cyc.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE') && /itself/.test(e.message));
    const fnBody = await load(`function handle(req) return {body={f=print}} end`);
    await assert.rejects(fnBody.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE'));
    const badStatus = await load(`function handle(req) return {status=42} end`);
    await assert.rejects(badStatus.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_BAD_RESPONSE'));
  });

  it('keeps a binary body as bytes', async () => {
    const res = await (await load(`function handle(req) return {headers={["content-type"]="image/x"}, body="\\255\\0\\1"} end`)).invoke(REQ);
    assert.ok(res.body instanceof Uint8Array);
    assert.deepEqual([...res.body], [255, 0, 1]);
  });

  it('passes a request body with NUL bytes and non-ASCII text intact', async () => {
    const out = await body(`function handle(req) return #req.body .. ":" .. req.body end`, {}, { ...REQ, body: 'a\u0000é' });
    assert.equal(out, '4:a\u0000é');
  });

  it('applies lineOffset to compile errors', async () => {
    await assert.rejects(
      load('function handle(req)\n  return = 1\nend', { filename: 'zerverless.yaml', lineOffset: 12 }),
      (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /^zerverless\.yaml:13: /.test(e.message),
    );
  });

  it('applies lineOffset to runtime errors', async () => {
    const fn = await load('function handle(req)\n  error("bad thing")\nend', { filename: 'zerverless.yaml', lineOffset: 20 });
    await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_ERROR') && /zerverless\.yaml:21: bad thing/.test(e.message));
  });

  it('names the full filename even when Lua would shorten it', async () => {
    const filename = `handlers/${'very-long-directory-name/'.repeat(4)}handler.lua`;
    await assert.rejects(
      load('local x = = 1', { filename }),
      (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && e.message.startsWith(`${filename}:1: `),
    );
  });

  it('refuses code without a global handle as a compile error', async () => {
    await assert.rejects(load('local function handle(req) return "x" end'), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /handle/.test(e.message));
  });

  it('reports top-level errors and endless top-level loops as compile errors', async () => {
    await assert.rejects(load('error("at load")'), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /handler\.lua:1: at load/.test(e.message));
    await assert.rejects(load('while true do end', { timeoutMs: 300 }), (e: unknown) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /did not finish/.test(e.message));
  });

  it('stops an endless loop inside a coroutine', async () => {
    const fn = await load(`function handle(req)
  local co = coroutine.wrap(function() while true do end end)
  co()
end`, { timeoutMs: 300 });
    await assert.rejects(fn.invoke(REQ), (e: unknown) => isZvError(e, 'FUNCTION_TIMEOUT'));
  });

  it('stops a loop that catches the timeout error by replacing the worker', async () => {
    const fn = await load(`function handle(req)
  while true do pcall(function() while true do end end) end
end`, { timeoutMs: 300 });
    const other = await load(`function handle(req) return "still here" end`);
    const looping = fn.invoke(REQ).then(() => 'answered', (e: unknown) => e);
    assert.equal(text((await other.invoke(REQ)).body), 'still here');
    const err = await looping;
    // FUNCTION_TIMEOUT is the proof the loop was stopped: it never ends by itself.
    assert.ok(isZvError(err, 'FUNCTION_TIMEOUT'), String(err));
    assert.equal(text((await other.invoke(REQ)).body), 'still here');
  });

  it('rebuilds the state after a memory error', async () => {
    const fn = await load(`
hog = {}
function handle(req)
  if req.query.grow then
    while true do hog[#hog + 1] = string.rep("y", 4096) .. #hog end
  end
  return "size " .. #hog
end`, { memoryMb: 16 });
    await assert.rejects(fn.invoke({ ...REQ, query: { grow: '1' } }), (e: unknown) => isZvError(e, 'FUNCTION_MEMORY_LIMIT'));
    assert.equal(text((await fn.invoke(REQ)).body), 'size 0');
  });

  it('answers many concurrent invocations of several functions', async () => {
    const fns = await Promise.all(Array.from({ length: 5 }, (_, i) => load(`
local count = 0
function handle(req)
  count = count + 1
  local s = 0
  for j = 1, 10000 do s = s + j end
  return {body={fn=${i}, q=req.query.n, sum=s}}
end`)));
    const calls = [];
    for (let k = 0; k < 40; k++) {
      for (let i = 0; i < fns.length; i++) calls.push({ i, k, p: fns[i]!.invoke({ ...REQ, query: { n: String(k) } }) });
    }
    for (const c of calls) {
      const got = JSON.parse(text((await c.p).body));
      assert.deepEqual(got, { fn: c.i, q: String(c.k), sum: 50005000 });
    }
  });

  it('carries requests, answers and log lines of every size in order, in the rings and beside them', async () => {
    const lines: string[] = [];
    const fn = await runtime.load({
      id: 'test/lua/sizes', runtime: 'lua', filename: 'handler.lua', timeoutMs: 5000, memoryMb: 64, env: {}, code: `
function handle(req)
  print("start " .. req.query.n)
  if req.query.log == "big" then print(string.rep("l", 12000)) end
  return {status=200, headers={["x-n"]=req.query.n, ["x-h"]=req.headers["x-h"]}, body=req.body .. string.rep("r", tonumber(req.query.extra))}
end`,
    }, (_stream, line) => lines.push(line));
    loaded.push(fn);
    const sizes = [0, 5, 100, 3000, 12000, 40000, 150000];
    const calls = [];
    for (let k = 0; k < 60; k++) {
      const size = sizes[k % sizes.length] as number;
      const req: FunctionRequest = {
        ...REQ,
        method: 'POST',
        query: { n: String(k), extra: String(sizes[(k * 3) % sizes.length]), log: k % 5 === 0 ? 'big' : '' },
        headers: { 'x-h': `é€${k}`.repeat(1 + (k % 4) * 20) },
        body: (k % 2 === 0 ? 'ascii' : 'ü😀\u0000').repeat(size).slice(0, size),
      };
      calls.push({ k, req, p: fn.invoke(req).then((res) => ({ res, logged: lines.includes(`start ${k}`) })) });
    }
    for (const c of calls) {
      const { res, logged } = await c.p;
      assert.equal(logged, true, `call ${c.k}: its log line came before its answer`);
      assert.equal(res.headers['x-n'], String(c.k));
      assert.equal(res.headers['x-h'], c.req.headers['x-h']);
      assert.equal(text(res.body), c.req.body + 'r'.repeat(Number(c.req.query.extra)));
    }
    assert.equal(lines.filter((l) => l === 'l'.repeat(12000)).length, 12);
  });

  it('answers a plain {status, headers, body} table exactly as the JSON path does', async () => {
    // status=200 (an integer) takes the plain path; 200.0 (a float) the JSON one: same answers
    const fn = await load(`
local cases = {
  function(s) return {status=s, body='hi'} end,
  function(s) return {status=s, headers={['X-B']='2', ['x-a']='1', ['Content-Type']='text/html'}, body='<b>hi</b>'} end,
  function(s) return {status=s, headers={['Content-Type']='text/html', ['content-type']='text/plain'}, body='dup'} end,
  function(s) return {status=s, headers={}, body=''} end,
  function(s) return {status=s, headers={['x-bin']='a\\0b'}, body='\\255\\0\\1'} end,
  function(s) return {status=s, headers={['x-n']='1'}} end,
  function(s) return {status=s} end,
  function(s) return {status=s, headers={['content-type']='text/html', ['x-z']='é'}, body='ok'} end,
  function(s) return {status=s, headers={['x-bad']='\\255'}, body='x'} end,
  function(s) return {status=s, headers={['x-é']='1'}, body='x'} end,
  function(s) return {status=s, headers={['x-a']='1'}, body='\\255'} end,
  function(s) return {status=s + 400, body='x'} end,
  function(s) return {status=s, headers={['x-a']='1', ['x-b']=''}, body='\\239\\187\\191bom'} end,
}
function handle(req)
  local s = req.query.float and 200.0 or 200
  if req.query.empty then return {} end
  return cases[tonumber(req.query.n)](s)
end`);
    const answer = async (query: Record<string, string>): Promise<unknown> => {
      try {
        const r = await fn.invoke({ ...REQ, query });
        return { ...r, body: typeof r.body === 'string' ? r.body : Buffer.from(r.body).toString('base64') };
      } catch (e) {
        return String(e);
      }
    };
    for (let n = 1; n <= 13; n++) {
      assert.deepEqual(await answer({ n: String(n) }), await answer({ n: String(n), float: '1' }), `case ${n}`);
    }
    assert.equal((await answer({ n: '2' }) as { status: number }).status, 200);
    assert.deepEqual(await answer({ empty: '1' }), await answer({ empty: '1', float: '1' }));
  });

  it('lets a call in flight finish under its own timeout when its function is unloaded', async () => {
    const rt = new LuaRuntime({ workers: 2, graceMs: 100 });
    try {
      const fn = await rt.load({ id: 'test/lua/unload', runtime: 'lua', filename: 'slow.lua', timeoutMs: 20000, memoryMb: 64, env: {}, code: `
function handle(req)
  local t = os.clock()
  while os.clock() - t < 0.6 do end
  return 'finished'
end` }, () => {});
      const call = fn.invoke(REQ);
      await new Promise((r) => setTimeout(r, 50));
      await fn.dispose();
      assert.equal(text((await call).body), 'finished');
    } finally {
      await rt.close();
    }
  });

  it('answers the calls batched with one that overruns, and stops only that one', async () => {
    // two workers: one function holds at most one, so its queued calls go to it in batches
    const rt = new LuaRuntime({ workers: 2, graceMs: 200 });
    try {
      const fn = await rt.load({ id: 'test/lua/batch', runtime: 'lua', filename: 'batch.lua', timeoutMs: 300, memoryMb: 64, env: {}, code: `
function handle(req)
  if req.query.kind == 'slow' then local t = os.clock() while os.clock() - t < 0.05 do end end
  if req.query.kind == 'hang' then while true do pcall(function() while true do end end) end end
  return 'call ' .. req.query.n
end` }, () => {});
      const kinds = ['slow', 'fast', 'fast', 'hang', 'fast', 'fast', 'fast', 'fast', 'hang', 'fast'];
      const calls = kinds.map((kind, n) => fn.invoke({ ...REQ, query: { kind, n: String(n) } }).then((r) => text(r.body), (e: unknown) => e));
      const got = await Promise.all(calls);
      kinds.forEach((kind, n) => {
        if (kind === 'hang') assert.ok(isZvError(got[n], 'FUNCTION_TIMEOUT'), `${n}: ${String(got[n])}`);
        else assert.equal(got[n], `call ${n}`);
      });
      assert.equal(text((await fn.invoke({ ...REQ, query: { n: 'after' } })).body), 'call after');
      await fn.dispose();
    } finally {
      await rt.close();
    }
  });

  it('refuses to load after close', async () => {
    const rt = new LuaRuntime();
    assert.deepEqual(await rt.available(), { ok: true });
    await rt.close();
    await assert.rejects(
      rt.load({ id: 'x', runtime: 'lua', code: 'function handle() end', filename: 'h.lua', timeoutMs: 100, memoryMb: 8, env: {} }, () => {}),
      (e: unknown) => isZvError(e),
    );
  });
});
