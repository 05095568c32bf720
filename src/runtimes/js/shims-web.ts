// Isolate-side source of the small Web-standard API a JS function sees: TextEncoder/TextDecoder,
// atob/btoa, Headers, URLSearchParams, URL, Request and Response (no streams, no fetch).
// It is plain JavaScript kept in a string: it runs inside the function's V8 isolate, never in Node.
// It is spliced into the setup closure of ./shims-glue.ts, which provides `g` (the global object)
// and reads bodies through the BODY symbol defined here.

export const WEB_SHIMS = String.raw`
const BODY = Symbol('body');
const USED = Symbol('used');
const LINK = Symbol('link');
const RAW = Symbol('raw');
// Request init from the glue: the url is already its own href (see start() in shims-glue.ts).
const HREF = Symbol('href');

function utf8Encode(str) {
  str = String(str);
  const out = [];
  for (const ch of str) {
    let c = ch.codePointAt(0);
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError('expected an ArrayBuffer or a typed array');
}

function utf8Decode(input) {
  const b = toBytes(input);
  const cps = [];
  let s = '';
  for (let i = 0; i < b.length;) {
    const x = b[i];
    let need = 0, cp = 0xfffd, min = 0;
    if (x < 0x80) { cp = x; i++; }
    else {
      if (x >= 0xc2 && x <= 0xdf) { need = 1; cp = x & 31; min = 0x80; }
      else if (x >= 0xe0 && x <= 0xef) { need = 2; cp = x & 15; min = 0x800; }
      else if (x >= 0xf0 && x <= 0xf4) { need = 3; cp = x & 7; min = 0x10000; }
      let j = 1;
      for (; j <= need && i + j < b.length && (b[i + j] & 0xc0) === 0x80; j++) cp = (cp << 6) | (b[i + j] & 63);
      if (need === 0 || j <= need || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) { cp = 0xfffd; i += need === 0 ? 1 : j; }
      else i += need + 1;
    }
    cps.push(cp);
    if (cps.length >= 4096) { s += String.fromCodePoint.apply(null, cps); cps.length = 0; }
  }
  return s + String.fromCodePoint.apply(null, cps);
}

class TextEncoder {
  get encoding() { return 'utf-8'; }
  encode(input = '') { return utf8Encode(input); }
}

class TextDecoder {
  constructor(label = 'utf-8') {
    const l = String(label).toLowerCase();
    if (l !== 'utf-8' && l !== 'utf8') throw new RangeError('only utf-8 is supported');
  }
  get encoding() { return 'utf-8'; }
  decode(input) { return input === undefined ? '' : utf8Decode(input); }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function btoa(input) {
  const s = String(input);
  let out = '';
  for (let i = 0; i < s.length; i += 3) {
    const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
    if (a > 255 || b > 255 || c > 255) throw new Error('btoa: the string contains characters outside of Latin1');
    const n = (a << 16) | ((b || 0) << 8) | (c || 0);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < s.length ? B64[(n >> 6) & 63] : '=') + (i + 2 < s.length ? B64[n & 63] : '=');
  }
  return out;
}
function atob(input) {
  const s = String(input).replace(/[\t\n\f\r ]/g, '').replace(/=+$/, '');
  if (/[^A-Za-z0-9+/]/.test(s) || s.length % 4 === 1) throw new Error('atob: invalid base64');
  let out = '';
  for (let i = 0; i < s.length; i += 4) {
    const n = (B64.indexOf(s[i]) << 18) | (B64.indexOf(s[i + 1]) << 12) | ((B64.indexOf(s[i + 2] || 'A') & 63) << 6) | (B64.indexOf(s[i + 3] || 'A') & 63);
    out += String.fromCharCode(n >> 16);
    if (i + 2 < s.length) out += String.fromCharCode((n >> 8) & 255);
    if (i + 3 < s.length) out += String.fromCharCode(n & 255);
  }
  return out;
}

function headerName(name) {
  const n = String(name).toLowerCase();
  if (!/^[!#$%&'*+\-.^_|~0-9a-z]+$/.test(n)) throw new TypeError('invalid header name: ' + name);
  return n;
}

class Headers {
  #m = new Map();
  constructor(init) {
    if (init === undefined || init === null) return;
    if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
    else if (typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) {
        const p = Array.from(pair);
        if (p.length !== 2) throw new TypeError('a header pair must have a name and a value');
        this.append(p[0], p[1]);
      }
    } else if (typeof init === 'object') for (const k of Object.keys(init)) this.append(k, init[k]);
    else throw new TypeError('invalid headers init');
  }
  append(name, value) {
    const k = headerName(name), v = String(value).trim(), cur = this.#m.get(k);
    this.#m.set(k, cur === undefined ? v : cur + ', ' + v);
  }
  set(name, value) { this.#m.set(headerName(name), String(value).trim()); }
  get(name) { const v = this.#m.get(String(name).toLowerCase()); return v === undefined ? null : v; }
  has(name) { return this.#m.has(String(name).toLowerCase()); }
  delete(name) { this.#m.delete(String(name).toLowerCase()); }
  getSetCookie() { const v = this.#m.get('set-cookie'); return v === undefined ? [] : [v]; }
  forEach(cb, thisArg) { for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this); }
  *entries() { yield* [...this.#m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)); }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
}

function formEncode(s) {
  return encodeURIComponent(s).replace(/%20/g, '+').replace(/[!'()~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}
function formDecode(s) {
  const t = s.replace(/\+/g, ' ');
  try { return decodeURIComponent(t); } catch { return t; }
}

class URLSearchParams {
  #l = [];
  constructor(init) {
    this[LINK] = null;
    if (init === undefined || init === null) return;
    if (init instanceof URLSearchParams) this.#l = [...init];
    else if (typeof init === 'object' && typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) { const p = Array.from(pair); this.#l.push([String(p[0]), String(p[1])]); }
    } else if (typeof init === 'object') for (const k of Object.keys(init)) this.#l.push([k, String(init[k])]);
    else this.#parse(String(init));
  }
  #parse(s) {
    this.#l = [];
    for (const part of (s[0] === '?' ? s.slice(1) : s).split('&')) {
      if (part === '') continue;
      const i = part.indexOf('=');
      this.#l.push(i < 0 ? [formDecode(part), ''] : [formDecode(part.slice(0, i)), formDecode(part.slice(i + 1))]);
    }
  }
  #changed() { if (this[LINK]) this[LINK](this.toString()); }
  get size() { return this.#l.length; }
  append(k, v) { this.#l.push([String(k), String(v)]); this.#changed(); }
  delete(k, v) { this.#l = this.#l.filter((e) => e[0] !== String(k) || (v !== undefined && e[1] !== String(v))); this.#changed(); }
  get(k) { const e = this.#l.find((x) => x[0] === String(k)); return e ? e[1] : null; }
  getAll(k) { return this.#l.filter((x) => x[0] === String(k)).map((x) => x[1]); }
  has(k, v) { return this.#l.some((x) => x[0] === String(k) && (v === undefined || x[1] === String(v))); }
  set(k, v) {
    k = String(k); v = String(v);
    const i = this.#l.findIndex((x) => x[0] === k);
    if (i < 0) this.#l.push([k, v]);
    else this.#l = this.#l.filter((x, j) => j <= i || x[0] !== k).map((x, j) => (j === i ? [k, v] : x));
    this.#changed();
  }
  sort() { this.#l.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this.#changed(); }
  forEach(cb, thisArg) { for (const [k, v] of this.#l) cb.call(thisArg, v, k, this); }
  *entries() { for (const e of this.#l) yield [e[0], e[1]]; }
  *keys() { for (const e of this.#l) yield e[0]; }
  *values() { for (const e of this.#l) yield e[1]; }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return this.#l.map((e) => formEncode(e[0]) + '=' + formEncode(e[1])).join('&'); }
  _reset(s) { this.#parse(s); }
}

const DEFAULT_PORTS = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443', 'ftp:': '21' };
const URL_RE = /^([a-zA-Z][a-zA-Z0-9+.-]*:)(\/\/([^/?#]*))?([^?#]*)(\?[^#]*)?(#.*)?$/;
const pctEncode = (s, keep) => s.replace(keep, (c) => encodeURIComponent(c));

function removeDots(path) {
  const out = [];
  const segs = path.split('/');
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    if (s === '..' || s === '%2e%2e' || s === '%2E%2E') { if (out.length > 1) out.pop(); if (i === segs.length - 1) out.push(''); }
    else if (s === '.') { if (i === segs.length - 1) out.push(''); }
    else out.push(s);
  }
  return out.join('/');
}

class URL {
  #p = {};
  constructor(input, base) {
    let s = String(input).trim();
    if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s)) {
      if (base === undefined) throw new TypeError('Invalid URL: ' + s);
      const b = base instanceof URL ? base : new URL(base);
      if (s.startsWith('//')) s = b.protocol + s;
      else if (s.startsWith('/')) s = b.protocol + '//' + b.host + s;
      else if (s.startsWith('?')) s = b.protocol + '//' + b.host + b.pathname + s;
      else if (s.startsWith('#')) s = b.href.replace(/#.*$/, '') + s;
      else if (s === '') s = b.href.replace(/#.*$/, '');
      else s = b.protocol + '//' + b.host + b.pathname.replace(/[^/]*$/, '') + s;
    }
    const m = URL_RE.exec(s.replace(/\\/g, '/'));
    if (!m) throw new TypeError('Invalid URL: ' + s);
    const protocol = m[1].toLowerCase();
    let auth = m[3], user = '', pass = '', host = '', port = '';
    if (auth !== undefined) {
      const at = auth.lastIndexOf('@');
      if (at >= 0) {
        const cred = auth.slice(0, at); auth = auth.slice(at + 1);
        const c = cred.indexOf(':');
        user = c < 0 ? cred : cred.slice(0, c); pass = c < 0 ? '' : cred.slice(c + 1);
      }
      const pm = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(auth);
      if (!pm) throw new TypeError('Invalid URL: ' + s);
      host = pm[1].toLowerCase(); port = pm[2] || '';
      if (port && DEFAULT_PORTS[protocol] === String(Number(port))) port = '';
      if (port) port = String(Number(port));
      if (DEFAULT_PORTS[protocol] && host === '') throw new TypeError('Invalid URL: ' + s);
    } else if (DEFAULT_PORTS[protocol]) throw new TypeError('Invalid URL: ' + s);
    let path = pctEncode(m[4], /[^!$&'()*+,;=:@/%\-._~A-Za-z0-9]/gu);
    if (auth !== undefined) path = removeDots(path === '' ? '/' : path);
    this.#p = {
      protocol, username: user, password: pass, hostname: host, port, pathname: path,
      search: m[5] && m[5] !== '?' ? pctEncode(m[5], /[^!$&'()*+,;=:@/?%\-._~A-Za-z0-9]/gu) : '',
      hash: m[6] && m[6] !== '#' ? pctEncode(m[6], /[^!#$&'()*+,;=:@/?%\-._~A-Za-z0-9]/gu) : '',
      hasAuth: auth !== undefined,
    };
    const sp = new URLSearchParams(this.#p.search);
    sp[LINK] = (q) => { this.#p.search = q ? '?' + q : ''; };
    this.#p.sp = sp;
  }
  static canParse(input, base) { try { new URL(input, base); return true; } catch { return false; } }
  get protocol() { return this.#p.protocol; }
  get username() { return this.#p.username; }
  get password() { return this.#p.password; }
  get hostname() { return this.#p.hostname; }
  get port() { return this.#p.port; }
  get host() { return this.#p.hostname + (this.#p.port ? ':' + this.#p.port : ''); }
  get origin() { return DEFAULT_PORTS[this.#p.protocol] ? this.#p.protocol + '//' + this.host : 'null'; }
  get pathname() { return this.#p.pathname; }
  set pathname(v) { const p = pctEncode(String(v), /[^!$&'()*+,;=:@/%\-._~A-Za-z0-9]/gu); this.#p.pathname = this.#p.hasAuth ? removeDots(p.startsWith('/') ? p : '/' + p) : p; }
  get search() { return this.#p.search; }
  set search(v) { const s = String(v); this.#p.search = s === '' || s === '?' ? '' : (s[0] === '?' ? s : '?' + s); this.#p.sp._reset(this.#p.search); }
  get searchParams() { return this.#p.sp; }
  get hash() { return this.#p.hash; }
  set hash(v) { const s = String(v); this.#p.hash = s === '' || s === '#' ? '' : (s[0] === '#' ? s : '#' + s); }
  get href() {
    const p = this.#p;
    const cred = p.username ? p.username + (p.password ? ':' + p.password : '') + '@' : '';
    return p.protocol + (p.hasAuth ? '//' + cred + this.host : '') + p.pathname + p.search + p.hash;
  }
  toString() { return this.href; }
  toJSON() { return this.href; }
}

function extractBody(body, headers, raw) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') {
    if (!raw && !headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
    return body;
  }
  if (body instanceof URLSearchParams) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return body.toString();
  }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return toBytes(body).slice();
  return extractBody(String(body), headers);
}

function consume(self) {
  if (self[USED]) return Promise.reject(new TypeError('Body has already been used'));
  self[USED] = self[BODY] !== null;
  return null;
}

class Body {
  get bodyUsed() { return this[USED] === true; }
  text() {
    const used = consume(this); if (used) return used;
    const b = this[BODY];
    return Promise.resolve(b === null ? '' : typeof b === 'string' ? b : utf8Decode(b));
  }
  json() { return this.text().then((t) => JSON.parse(t)); }
  arrayBuffer() {
    const used = consume(this); if (used) return used;
    const b = this[BODY];
    const bytes = b === null ? new Uint8Array(0) : typeof b === 'string' ? utf8Encode(b) : b.slice();
    return Promise.resolve(bytes.buffer);
  }
  bytes() { return this.arrayBuffer().then((ab) => new Uint8Array(ab)); }
  formData() { return Promise.reject(new TypeError('formData() is not supported')); }
  blob() { return Promise.reject(new TypeError('blob() is not supported')); }
}

class Request extends Body {
  #url; #method; #headers;
  constructor(input, init = {}) {
    super();
    const from = input instanceof Request ? input : null;
    this.#url = from ? from.url : init[HREF] === true ? String(input) : new URL(String(input)).href;
    this.#method = String(init.method ?? (from ? from.method : 'GET')).toUpperCase();
    this.#headers = new Headers(init.headers ?? (from ? from.headers : undefined));
    this[BODY] = init.body !== undefined ? extractBody(init.body, this.#headers, init[RAW] === true) : from ? from[BODY] : null;
    if (this[BODY] !== null && (this.#method === 'GET' || this.#method === 'HEAD')) {
      throw new TypeError('Request with GET/HEAD method cannot have body');
    }
    this[USED] = false;
  }
  get url() { return this.#url; }
  get method() { return this.#method; }
  get headers() { return this.#headers; }
  clone() { return new Request(this); }
}

class Response extends Body {
  #status; #statusText; #headers;
  constructor(body = null, init = {}) {
    super();
    const status = init.status === undefined ? 200 : Number(init.status);
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new RangeError('Response status must be an integer from 200 to 599, got ' + init.status);
    }
    this.#status = status;
    this.#statusText = init.statusText === undefined ? '' : String(init.statusText);
    this.#headers = new Headers(init.headers);
    this[BODY] = extractBody(body, this.#headers);
    this[USED] = false;
  }
  static json(data, init = {}) {
    const headers = new Headers(init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError('Response.json: the value cannot be serialized to JSON');
    return new Response(text, { ...init, headers });
  }
  static redirect(url, status = 302) {
    if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError('invalid redirect status ' + status);
    return new Response(null, { status, headers: { location: new URL(String(url)).href } });
  }
  get status() { return this.#status; }
  get statusText() { return this.#statusText; }
  get ok() { return this.#status >= 200 && this.#status < 300; }
  get headers() { return this.#headers; }
  get type() { return 'default'; }
  get url() { return ''; }
  get redirected() { return false; }
  clone() { return new Response(this[BODY], { status: this.#status, statusText: this.#statusText, headers: this.#headers }); }
}

Object.assign(g, { TextEncoder, TextDecoder, atob, btoa, Headers, URLSearchParams, URL, Request, Response });
for (const k of ['TextEncoder', 'TextDecoder', 'atob', 'btoa', 'Headers', 'URLSearchParams', 'URL', 'Request', 'Response']) {
  Object.defineProperty(g, k, { enumerable: false });
}
`;
