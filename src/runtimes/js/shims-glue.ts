// Isolate-side setup script: console → host log, timers → host timers, and the glue that finds the
// function's entry point (handle / export default { fetch }) and runs one invocation.
// Evaluating SETUP_SCRIPT in a fresh context returns { define, invoke, fire } and removes the host
// callbacks (__zv_log, __zv_timer) from the global object, so user code never sees them.
import { WEB_SHIMS } from './shims-web.js';

const GLUE = String.raw`
// Intrinsics captured before any user code runs (user code may replace the globals later).
const apply = Reflect.apply;
const Str = String;
const U8 = Uint8Array;
const jsonStringify = JSON.stringify;
const jsonParse = JSON.parse;
const objectKeys = Object.keys;
const objectCreate = Object.create;
const objectFromEntries = Object.fromEntries;
const isArray = Array.isArray;
const SetC = Set;
const setAdd = Set.prototype.add;
const setHas = Set.prototype.has;
const setDelete = Set.prototype.delete;
const isView = ArrayBuffer.isView;
const strSlice = String.prototype.slice;
const strIndexOf = String.prototype.indexOf;
const objectDefineProperty = Object.defineProperty;
const u8Set = Uint8Array.prototype.set;
const strCharCodeAt = String.prototype.charCodeAt;
const numberIsFinite = Number.isFinite;
const getPrototypeOf = Object.getPrototypeOf;
const promiseThen = Promise.prototype.then;
const dateNow = Date.now;
const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).get;
const abProto = ArrayBuffer.prototype;
const abByteLength = getter(ArrayBuffer.prototype, 'byteLength');
const TypedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
const taBuffer = getter(TypedArrayProto, 'buffer');
const taByteOffset = getter(TypedArrayProto, 'byteOffset');
const taByteLength = getter(TypedArrayProto, 'byteLength');
const dvBuffer = getter(DataView.prototype, 'buffer');
const dvByteOffset = getter(DataView.prototype, 'byteOffset');
const dvByteLength = getter(DataView.prototype, 'byteLength');
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

// Texts handed back to the host (error messages, stacks, reasons) are cut inside the isolate, so a
// huge message is never copied out.
// Cutting a rope string flattens it first, so a text over MAX_CLIPPED is not shown at all.
const MAX_TEXT = 16384;
const MAX_CLIPPED = 1048576;
function clip(x) {
  const s = typeof x === 'string' ? x : Str(x);
  if (s.length <= MAX_TEXT) return s;
  if (s.length > MAX_CLIPPED) return '[' + s.length + ' characters, not shown]';
  return apply(strSlice, s, [0, MAX_TEXT]) + ' …[' + (s.length - MAX_TEXT) + ' more characters]';
}

function errText(e) {
  if (e instanceof Error) return clip((e.name && e.name !== 'Error' ? e.name + ': ' : '') + e.message);
  return clip(inspect(e));
}
function errStack(e) {
  if (!(e instanceof Error)) return '';
  // V8 copies the message into the stack text: not worth a copy of a huge one
  const m = e.message;
  return typeof m === 'string' && m.length > MAX_CLIPPED ? '' : clip(e.stack);
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
// --max-response: a response over it is refused here, before isolated-vm copies it to the host.
let maxResponse = Infinity;
const execCtx = { waitUntil(p) { Promise.resolve(p).catch(() => {}); }, passThroughOnException() {} };
const isObj = (x) => x !== null && (typeof x === 'object' || typeof x === 'function');

function define(factory, envJson, maxResponseBytes) {
  env = JSON.parse(envJson);
  if (typeof maxResponseBytes === 'number' && maxResponseBytes > 0) maxResponse = maxResponseBytes;
  const module = { exports: {} };
  let top;
  try { top = factory.call(module.exports, module, module.exports); }
  catch (e) { return { ok: false, kind: 'error', message: errText(e), stack: errStack(e) }; }
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

// Thrown by the size checks below; pack() turns it into { kind: 'toolarge' }.
class TooLarge { constructor(size) { this.size = size; } }

// What pack() hands to the host is rebuilt here from strings, numbers and fresh byte arrays whose
// sizes are counted, using intrinsics captured before user code ran: code that patches String,
// JSON or the prototypes cannot smuggle an uncounted (e.g. a 300 MB rope) string past the check.
// A string's UTF-8 takes at least as many bytes as it has UTF-16 units, so its length is enough
// to refuse it without encoding or flattening it.
let packed = 0;
function count(n) {
  packed += n;
  if (!(packed <= maxResponse)) throw new TooLarge(packed);
}
function countedString(x) {
  const s = typeof x === 'string' ? x : Str(x);
  count(s.length);
  return s;
}
/** A fresh Uint8Array copy of an ArrayBuffer or a view, or undefined for anything else. */
function bytesOf(b) {
  if (b === null || typeof b !== 'object') return undefined;
  let buffer, offset, length;
  if (isView(b)) {
    try {
      buffer = apply(taBuffer, b, []); offset = apply(taByteOffset, b, []); length = apply(taByteLength, b, []);
    } catch {
      buffer = apply(dvBuffer, b, []); offset = apply(dvByteOffset, b, []); length = apply(dvByteLength, b, []);
    }
  } else {
    // The byteLength getter is the check that b is an ArrayBuffer, and it throws for anything else:
    // an exception costs microseconds, so only what has ArrayBuffer.prototype on its chain is tried.
    let p = getPrototypeOf(b);
    while (p !== null && p !== abProto) p = getPrototypeOf(p);
    if (p === null) return undefined;
    try {
      length = apply(abByteLength, b, []);
    } catch {
      return undefined;
    }
    buffer = b; offset = 0;
  }
  count(length);
  const out = new U8(length);
  apply(u8Set, out, [new U8(buffer, offset, length)]);
  return out;
}
// Objects that are filled by assignment have no prototype, so no setter user code put on
// Object.prototype can run (and add uncounted properties) while they are built.
function countedHeaders(h) {
  const out = objectCreate(null);
  for (const k of objectKeys(h)) {
    const v = h[k];
    if (v === undefined || v === null) continue;
    out[countedString(k)] = countedString(v);
  }
  return out;
}

// A lower bound of the length of JSON.stringify(x), stopping once over the cap: a body object
// holding a huge (rope) string is refused before JSON.stringify flattens it. Objects with toJSON
// count as nothing here (their JSON is counted after stringify); cycles are left to stringify.
function jsonAtLeast(x, ancestors, n) {
  if (n > maxResponse) return n;
  if (typeof x === 'string') return n + x.length + 2;
  if (typeof x === 'number' || typeof x === 'boolean' || x === null) return n + 1;
  if (typeof x !== 'object') return n;
  if (typeof x.toJSON === 'function' || apply(setHas, ancestors, [x])) return n;
  apply(setAdd, ancestors, [x]);
  n += 2;
  if (isArray(x)) {
    for (let i = 0; i < x.length && n <= maxResponse; i++) n = jsonAtLeast(x[i], ancestors, n + 1);
  } else {
    const ks = objectKeys(x);
    for (let i = 0; i < ks.length && n <= maxResponse; i++) {
      const k = ks[i];
      const v = x[k];
      if (v !== undefined && typeof v !== 'function' && typeof v !== 'symbol') n = jsonAtLeast(v, ancestors, n + k.length + 3);
    }
  }
  apply(setDelete, ancestors, [x]);
  return n;
}

/** JSON.stringify(b), counted (undefined when b has no JSON, e.g. toJSON returned undefined). */
function countedJson(b) {
  const atLeast = jsonAtLeast(b, new SetC(), packed);
  if (!(atLeast <= maxResponse)) throw new TooLarge(atLeast);
  const s = jsonStringify(b);
  if (s === undefined) return undefined;
  count(s.length);
  return s;
}

function plainBody(b) {
  if (b === undefined || b === null || typeof b === 'number' || typeof b === 'boolean') return b;
  if (typeof b === 'string') return countedString(b);
  const bytes = bytesOf(b);
  if (bytes !== undefined) return bytes;
  if (typeof b === 'object') {
    const s = countedJson(b);
    return s === undefined ? null : jsonParse(s);
  }
  throw new TypeError('body of type ' + typeof b + ' cannot be sent');
}

function status(x) {
  return typeof x === 'number' ? x : clip(x);
}

function pack(v) {
  packed = 0;
  try { return packChecked(v); }
  catch (e) { if (e instanceof TooLarge) return { kind: 'toolarge', size: e.size }; throw e; }
}

function packChecked(v) {
  if (v instanceof Response) {
    const headers = countedHeaders(objectFromEntries(v.headers));
    return { kind: 'response', status: status(v.status), headers, body: plainBody(v[BODY]) };
  }
  if (v === undefined || v === null || typeof v === 'number' || typeof v === 'boolean') return { kind: 'value', value: v };
  if (typeof v === 'string') return { kind: 'value', value: countedString(v) };
  if (typeof v !== 'object') return { kind: 'bad', reason: 'handle returned a ' + typeof v };
  const bytes = bytesOf(v);
  if (bytes !== undefined) return { kind: 'value', value: bytes };
  // An array, or an object with none of the response keys, is data: its JSON is the body (as
  // normalizeResult in src/core/function-contract.ts decides for the other runtimes).
  const isResponse = v.status !== undefined || v.headers !== undefined || v.body !== undefined;
  if (!isResponse || isArray(v)) {
    const s = countedJson(v);
    return { kind: 'response', status: 200, headers: { 'content-type': 'application/json' }, body: s === undefined ? 'null' : s };
  }
  const own = objectKeys(v);
  const o = objectCreate(null);
  // other keys beside the response keys: named (a few) so normalizeResult refuses the response
  let named = 0;
  for (let i = 0; i < own.length && named < 6; i++) {
    const k = own[i];
    if (k === 'status' || k === 'headers' || k === 'body' || v[k] === undefined) continue;
    o[countedString(apply(strSlice, k, [0, 80]))] = null;
    named++;
  }
  if (v.status !== undefined && v.status !== null) o.status = status(v.status);
  const h = v.headers;
  if (h instanceof Headers) o.headers = countedHeaders(objectFromEntries(h));
  else if (isObj(h) && !isArray(h)) o.headers = countedHeaders(h);
  else if (h !== undefined && h !== null) o.headers = isArray(h) ? [] : clip(h);
  o.body = plainBody(v.body);
  return { kind: 'value', value: o };
}

// What the entries hand to the host, made cheap to copy: isolated-vm copies an object through V8's
// serializer (a few µs), a string at once. A string answer (the commonest) goes as itself; any other
// packed answer as '\0' + its JSON when that JSON is exact, written by hand from pack()'s own
// strings, finite numbers and prototype-less objects (so no toJSON user code put on a prototype
// runs); anything else (byte arrays, a parsed JSON body, NaN) as the packed object. The host's
// unwire() (instance.ts) reverses it.
function wire(p) {
  if (p.kind === 'value' && typeof p.value === 'string' && apply(strCharCodeAt, p.value, [0]) !== 0) return p.value;
  const j = objectJson(p);
  return j === undefined ? p : '\0' + j;
}
function exactJson(x) {
  if (typeof x === 'string') return jsonStringify(x);
  if (typeof x === 'number') return numberIsFinite(x) ? '' + x : undefined;
  if (typeof x === 'boolean') return x ? 'true' : 'false';
  if (x === null) return 'null';
  if (typeof x !== 'object' || getPrototypeOf(x) !== null) return undefined;
  return objectJson(x);
}
// The JSON of an object's own enumerable keys whose values all have an exact JSON (undefined
// values left out, as JSON.stringify leaves them), else undefined.
function objectJson(x) {
  const ks = objectKeys(x);
  let s = '{', sep = '';
  for (let i = 0; i < ks.length; i++) {
    const v = x[ks[i]];
    if (v === undefined) continue;
    const e = exactJson(v);
    if (e === undefined) return undefined;
    s += sep + jsonStringify(ks[i]) + ':' + e;
    sep = ',';
  }
  return s + '}';
}

// The synchronous calls (invokeOne, run by invokeBatch below): handle/fetch runs now. A value is
// packed at once; a promise gets an id, and once it settles its packed result is kept for take(id)
// (takeMany: the host's next synchronous call, after the microtasks ran) or settle(id) (async, for
// one that waits on a timer).
const pendings = new Map();
let nextPending = 1;
function isThenable(x) {
  return x !== null && (typeof x === 'object' || typeof x === 'function') && typeof x.then === 'function';
}
// A path made only of characters URL keeps as they are, with no dot segment (the gateway's
// PLAIN_PATH), followed by a query URLSearchParams wrote, is its own href: no URL parse.
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
const regexTest = RegExp.prototype.test;
const strIncludes = String.prototype.includes;
function start(req) {
  if (entry.kind === 'fetch') {
    const qs = objectKeys(req.query).length === 0 ? '' : new URLSearchParams(req.query).toString();
    const method = String(req.method).toUpperCase();
    const noBody = method === 'GET' || method === 'HEAD' || req.body === '';
    const path = req.path;
    const plain = apply(regexTest, PLAIN_PATH, [path]) && !apply(strIncludes, path, ['/.']);
    const request = new Request('http://localhost' + path + (qs ? '?' + qs : ''), { method, headers: req.headers, body: noBody ? null : req.body, [RAW]: true, [HREF]: plain });
    return entry.target.fetch(request, env, execCtx);
  }
  return entry.fn.call(entry.self, req, env);
}
function packOut(out) {
  try { return pack(out); } catch (e) { return { kind: 'bad', reason: errText(e) }; }
}
// A request of a batch as the host encodes it (encodeRequest in instance.ts): the method, the path,
// the query's JSON ('' for none) and the number of headers, then each header's name and value,
// each ended by NUL, then the body (the rest). One starting with '{' is the request's JSON (the host
// sends that when a field holds a NUL). About half the cost of JSON on both sides.
let at = 0;
function field(s) {
  const end = apply(strIndexOf, s, ['\0', at]);
  const v = apply(strSlice, s, [at, end]);
  at = end + 1;
  return v;
}
function decodeRequest(s) {
  if (apply(strCharCodeAt, s, [0]) === 123) return jsonParse(s);
  at = 0;
  const method = field(s);
  const path = field(s);
  const q = field(s);
  const n = +field(s);
  const headers = {};
  for (let i = 0; i < n; i++) {
    const name = field(s);
    // (as JSON.parse makes it: an own property, not the prototype)
    if (name === '__proto__') objectDefineProperty(headers, name, { value: field(s), writable: true, enumerable: true, configurable: true });
    else headers[name] = field(s);
  }
  return { method, path, query: q === '' ? {} : jsonParse(q), headers, body: apply(strSlice, s, [at]) };
}
const WAIT = { kind: 'wait' };
function invokeOne(raw) {
  let out;
  try {
    out = start(decodeRequest(raw));
    if (isThenable(out)) {
      const id = nextPending++;
      const slot = { done: false, value: undefined, promise: undefined };
      slot.promise = apply(promiseThen, Promise.resolve(out), [
        (v) => { slot.done = true; slot.value = wire(packOut(v)); return slot.value; },
        (e) => { slot.done = true; slot.value = wire({ kind: 'error', message: errText(e), stack: errStack(e) }); return slot.value; },
      ]);
      pendings.set(id, slot);
      // a number: the answer is pending (the host takes or settles it by this id)
      return id;
    }
  } catch (e) {
    return wire({ kind: 'error', message: errText(e), stack: errStack(e) });
  }
  return wire(packOut(out));
}
function take(id) {
  const slot = pendings.get(id);
  if (!slot) return wire({ kind: 'bad', reason: 'the invocation was lost' });
  if (!slot.done) return WAIT;
  pendings.delete(id);
  return slot.value;
}
function settle(id) {
  const slot = pendings.get(id);
  if (!slot) return wire({ kind: 'bad', reason: 'the invocation was lost' });
  pendings.delete(id);
  return slot.promise;
}

// Batches (callBatch in instance.ts): the requests that reach a function in one turn of the server's
// event loop run one after another in one applySync. Each answer is kept in box as soon as it is
// made, and progress (memory shared with the host: [0] the request running, then per request its
// start time and 1 when it left a promise pending) tells the host, when a batch is stopped (its time
// ran out, or the isolate ran out of memory), which requests finished, which one was running and
// which never started. Containers have no prototype and typed-array writes cannot be intercepted,
// so no setter user code adds to a prototype sees or changes an answer.
const BATCH_SLICE_MS = 10;
const box = objectCreate(null);
box.items = objectCreate(null);
box.count = 0;
const progress = new Float64Array(hostProgress);
function invokeBatch(...reqs) {
  const n = reqs.length;
  const items = objectCreate(null);
  box.items = items;
  box.count = 0;
  const started = dateNow();
  for (let i = 0; i < n; i++) {
    // No call starts once the batch has run BATCH_SLICE_MS: the host runs the rest in the event
    // loop's next turn (so only a call that is slow on its own can reach the 50 ms bound).
    const now = dateNow();
    if (i > 0 && now - started >= BATCH_SLICE_MS) break;
    progress[0] = i;
    progress[1 + 2 * i] = now;
    progress[2 + 2 * i] = 0;
    const w = invokeOne(reqs[i]);
    if (typeof w === 'number') progress[2 + 2 * i] = 1;
    items[i] = w;
    box.count = i + 1;
    // A promise left pending: its microtasks run when this returns, before any later request
    // starts (as when each request ran alone, so state a handler keeps across an await stays its
    // own). The host runs the requests after it (none in items) in its next batch.
    if (typeof w === 'number') break;
  }
  const end = dateNow();
  for (let j = box.count; j < n; j++) {
    progress[1 + 2 * j] = end;
    progress[2 + 2 * j] = 0;
  }
  progress[0] = n;
  progress[1 + 2 * n] = end;
  // one request's answer as itself: a string is cheaper to copy than an object holding it
  if (n === 1) return items[0];
  return framed(items, n);
}
// The answers of a batch as one string when each is a string (a wired answer), a number (a pending
// id) or missing (not run): per answer a tag (s, n or u), the payload's length, ':' and the payload.
// Else the object as is. One string is cheaper to copy to the host than an object of strings.
function framed(items, n) {
  let s = '';
  for (let i = 0; i < n; i++) {
    const x = items[i];
    if (typeof x === 'string') s += 's' + x.length + ':' + x;
    else if (typeof x === 'number') { const d = '' + x; s += 'n' + d.length + ':' + d; }
    else if (x === undefined) s += 'u0:';
    else return items;
  }
  return s;
}
/** take() for each id (a JSON array): the answers, 0 for one still pending. */
function takeMany(idsJson) {
  const ids = jsonParse(idsJson);
  const out = objectCreate(null);
  for (let i = 0; i < ids.length; i++) {
    const t = take(ids[i]);
    out[i] = t === WAIT ? 0 : t;
  }
  return out;
}

async function invoke(reqJson) {
  let out;
  try {
    out = await start(jsonParse(reqJson));
  } catch (e) {
    return wire({ kind: 'error', message: errText(e), stack: errStack(e) });
  }
  return wire(packOut(out));
}
`;

export const SETUP_SCRIPT = `(function (g) {
'use strict';
const hostLog = g.__zv_log;
const hostTimer = g.__zv_timer;
delete g.__zv_log;
delete g.__zv_timer;
const hostProgress = g.__zv_progress;
delete g.__zv_progress;
// WebAssembly memory is allocated outside the V8 heap, where the isolate's memoryLimit does not
// count it: a function could hold gigabytes under memory: 128. So functions get no WebAssembly.
delete g.WebAssembly;
${WEB_SHIMS}
${GLUE}
return { define, invoke, settle, fire, invokeBatch, takeMany, box };
})(globalThis)`;

/**
 * Wraps compiled (CommonJS) code in a factory. The prefix stays on the code's first line so V8's
 * line numbers are those of the compiled code.
 */
export const WRAP_PREFIX = '(function (module, exports) {';

export function wrapModule(code: string): string {
  return `${WRAP_PREFIX}${code}\n;return typeof handle === 'function' ? handle : undefined;\n})`;
}
