// Isolate-side setup script: console → host log, timers → host timers, and the glue that finds the
// function's entry point (handle / export default { fetch }) and runs one invocation.
// Evaluating SETUP_SCRIPT in a fresh context returns { define, invoke, fire } and removes the host
// callbacks (__zv_log, __zv_timer) from the global object, so user code never sees them.
import { WEB_SHIMS } from './shims-web.js';

const GLUE = String.raw`
const MAX_LINE = 16384;
const MAX_LINES_PER_SEC = 1000;
let logWindow = 0, logCount = 0, logDropped = 0;

function inspect(v) {
  if (v instanceof Error) return v.stack || (v.name + ': ' + v.message);
  if (v instanceof Headers) return 'Headers ' + JSON.stringify(Object.fromEntries(v));
  if (v instanceof URL) return v.href;
  switch (typeof v) {
    case 'string': return v;
    case 'undefined': return 'undefined';
    case 'function': return '[Function ' + (v.name || 'anonymous') + ']';
    case 'symbol': return v.toString();
    case 'bigint': return v + 'n';
    case 'object': {
      if (v === null) return 'null';
      try {
        const seen = new WeakSet();
        const s = JSON.stringify(v, (k, x) => {
          if (typeof x === 'bigint') return x + 'n';
          if (typeof x === 'object' && x !== null) { if (seen.has(x)) return '[Circular]'; seen.add(x); }
          return x;
        });
        return s === undefined ? String(v) : s;
      } catch { return String(v); }
    }
    default: return String(v);
  }
}

function emit(stream, args) {
  const now = Date.now();
  if (now - logWindow >= 1000) {
    if (logDropped > 0) hostLog('stderr', '[zerverless] ' + logDropped + ' log lines dropped (over ' + MAX_LINES_PER_SEC + ' per second)');
    logWindow = now; logCount = 0; logDropped = 0;
  }
  if (++logCount > MAX_LINES_PER_SEC) { logDropped++; return; }
  let line = Array.prototype.map.call(args, inspect).join(' ');
  if (line.length > MAX_LINE) line = line.slice(0, MAX_LINE) + ' …[truncated]';
  hostLog(stream, line);
}

const console = {};
for (const k of ['log', 'info', 'debug', 'trace', 'dir', 'table']) console[k] = function () { emit('stdout', arguments); };
for (const k of ['warn', 'error']) console[k] = function () { emit('stderr', arguments); };
console.assert = function (ok, ...rest) { if (!ok) emit('stderr', ['Assertion failed', ...rest]); };

function errText(e) {
  if (e instanceof Error) return (e.name && e.name !== 'Error' ? e.name + ': ' : '') + e.message;
  return inspect(e);
}

const timers = new Map();
let nextTimer = 1;
function addTimer(fn, ms, args, interval) {
  if (typeof fn !== 'function') throw new TypeError('the timer callback must be a function');
  const id = nextTimer++;
  const delay = Math.max(interval ? 1 : 0, Math.min(Number(ms) || 0, 2147483647));
  timers.set(id, { fn, args, interval, delay });
  hostTimer(id, delay);
  return id;
}
function fire(id) {
  const t = timers.get(id);
  if (!t) return;
  if (t.interval) hostTimer(id, t.delay); else timers.delete(id);
  try { t.fn.apply(undefined, t.args); } catch (e) { emit('stderr', ['Uncaught error in timer callback:', e]); }
}
const setTimeout = (fn, ms, ...args) => addTimer(fn, ms, args, false);
const setInterval = (fn, ms, ...args) => addTimer(fn, ms, args, true);
const clearTimeout = (id) => { timers.delete(id); };
const queueMicrotask = (fn) => {
  if (typeof fn !== 'function') throw new TypeError('queueMicrotask needs a function');
  Promise.resolve().then(fn).catch((e) => emit('stderr', ['Uncaught error in microtask:', e]));
};

for (const [k, v] of Object.entries({ console, setTimeout, setInterval, clearTimeout, clearInterval: clearTimeout, queueMicrotask })) {
  Object.defineProperty(g, k, { value: v, writable: true, configurable: true, enumerable: false });
}

let entry = null;
let env = {};
const execCtx = { waitUntil(p) { Promise.resolve(p).catch(() => {}); }, passThroughOnException() {} };
const isObj = (x) => x !== null && (typeof x === 'object' || typeof x === 'function');

function define(factory, envJson) {
  env = JSON.parse(envJson);
  const module = { exports: {} };
  let top;
  try { top = factory.call(module.exports, module, module.exports); }
  catch (e) { return { ok: false, kind: 'error', message: errText(e), stack: e instanceof Error ? String(e.stack) : '' }; }
  const ex = module.exports;
  const def = isObj(ex) && 'default' in ex ? ex.default : undefined;
  if (isObj(def) && typeof def.fetch === 'function') entry = { kind: 'fetch', target: def };
  else if (isObj(def) && typeof def.handle === 'function') entry = { kind: 'handle', fn: def.handle, self: def };
  else if (typeof def === 'function') entry = { kind: 'handle', fn: def, self: undefined };
  else if (isObj(ex) && typeof ex.handle === 'function') entry = { kind: 'handle', fn: ex.handle, self: ex };
  else if (isObj(ex) && typeof ex.fetch === 'function') entry = { kind: 'fetch', target: ex };
  else if (typeof top === 'function') entry = { kind: 'handle', fn: top, self: undefined };
  else if (typeof ex === 'function') entry = { kind: 'handle', fn: ex, self: undefined };
  else return { ok: false, kind: 'compile', message: 'the code defines neither a function handle(req) nor export default { fetch(request) }' };
  return { ok: true, kind: entry.kind };
}

function plainBody(b) {
  if (b === undefined || b === null || typeof b === 'string' || typeof b === 'number' || typeof b === 'boolean') return b;
  if (b instanceof ArrayBuffer || ArrayBuffer.isView(b)) return toBytes(b).slice();
  if (typeof b === 'object') { const s = JSON.stringify(b); return s === undefined ? null : JSON.parse(s); }
  throw new TypeError('body of type ' + typeof b + ' cannot be sent');
}

function pack(v) {
  if (v instanceof Response) return { kind: 'response', status: v.status, headers: Object.fromEntries(v.headers), body: v[BODY] };
  if (v === undefined || v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return { kind: 'value', value: v };
  if (typeof v !== 'object') return { kind: 'bad', reason: 'handle returned a ' + typeof v };
  const o = {};
  if (v.status !== undefined && v.status !== null) o.status = typeof v.status === 'number' || typeof v.status === 'string' ? v.status : String(v.status);
  const h = v.headers;
  if (h instanceof Headers) o.headers = Object.fromEntries(h);
  else if (isObj(h) && !Array.isArray(h)) {
    o.headers = {};
    for (const k of Object.keys(h)) if (h[k] !== undefined && h[k] !== null) o.headers[k] = String(h[k]);
  } else if (h !== undefined && h !== null) o.headers = Array.isArray(h) ? [] : String(h);
  o.body = plainBody(v.body);
  return { kind: 'value', value: o };
}

async function invoke(reqJson) {
  let out;
  try {
    const req = JSON.parse(reqJson);
    if (entry.kind === 'fetch') {
      const qs = new URLSearchParams(req.query).toString();
      const method = String(req.method).toUpperCase();
      const noBody = method === 'GET' || method === 'HEAD' || req.body === '';
      const request = new Request('http://localhost' + req.path + (qs ? '?' + qs : ''), { method, headers: req.headers, body: noBody ? null : req.body, [RAW]: true });
      out = await entry.target.fetch(request, env, execCtx);
    } else {
      out = await entry.fn.call(entry.self, req, env);
    }
  } catch (e) {
    return { kind: 'error', message: errText(e), stack: e instanceof Error ? String(e.stack) : '' };
  }
  try { return pack(out); } catch (e) { return { kind: 'bad', reason: errText(e) }; }
}
`;

export const SETUP_SCRIPT = `(function (g) {
'use strict';
const hostLog = g.__zv_log;
const hostTimer = g.__zv_timer;
delete g.__zv_log;
delete g.__zv_timer;
${WEB_SHIMS}
${GLUE}
return { define, invoke, fire };
})(globalThis)`;

/**
 * Wraps compiled (CommonJS) code in a factory. The prefix stays on the code's first line so V8's
 * line numbers are those of the compiled code.
 */
export const WRAP_PREFIX = '(function (module, exports) {';

export function wrapModule(code: string): string {
  return `${WRAP_PREFIX}${code}\n;return typeof handle === 'function' ? handle : undefined;\n})`;
}
