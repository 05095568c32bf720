// Worker side: one Lua 5.4 state per function, built on wasmoon's WASM Lua with wasmoon's
// allocation tracing (the per-state memory limit). Values cross the JS/Lua boundary through the raw
// C API as byte strings; the response is JSON-encoded by the prelude inside the protected call.
// All states of a worker share one WASM module (`LuaHost`), one instruction-count hook that enforces
// the current job's deadline, and one `print` sink.
import { isUtf8 } from 'node:buffer';
import { LuaFactory, LUA_REGISTRYINDEX } from 'wasmoon';
import type { LuaWasm } from 'wasmoon';
import { normalizeResult } from '../../core/function-contract.js';
import type { FunctionRequest, FunctionResponse } from '../../core/function-contract.js';
import type { LuaFunctionDef } from './protocol.js';
import { PRELUDE } from './prelude.js';

const LUA_OK = 0;
const LUA_ERRSYNTAX = 3;
const LUA_ERRMEM = 4;
const LUA_TNIL = 0;
const LUA_TNUMBER = 3;
const LUA_TSTRING = 4;
const LUA_TTABLE = 5;
const LUA_MASKCOUNT = 8;
const HOOK_EVERY = 1000;
const MIB = 1024 * 1024;
const TIMEOUT_MESSAGE = 'zerverless: the function ran past its timeout';

/** The emscripten module's helpers used directly (wasmoon's typings do not list them). */
interface RawModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  getValue(ptr: number, type: string): number;
  addFunction(fn: (...args: number[]) => number | void, signature: string): number;
  [name: string]: unknown;
}

/**
 * The C functions called on the hot path. They are the WASM instance's own exports when those could
 * be captured (see LuaHost.create): the module's `_lua_*` functions wrap every export in a JS
 * function that checks the runtime is initialised and calls through `arguments`, about a quarter of
 * a hello call. Otherwise the module's wrappers, same signatures.
 */
interface LuaApi {
  malloc(size: number): number;
  free(ptr: number): void;
  realloc(ptr: number, size: number): number;
  lua_newstate(alloc: number, ud: number): number;
  lua_close(L: number): void;
  lua_settop(L: number, idx: number): void;
  lua_type(L: number, idx: number): number;
  lua_toboolean(L: number, idx: number): number;
  lua_tolstring(L: number, idx: number, lenPtr: number): number;
  lua_tonumberx(L: number, idx: number, isnum: number): number;
  lua_pushlstring(L: number, ptr: number, len: number): number;
  lua_createtable(L: number, narr: number, nrec: number): void;
  lua_rawset(L: number, idx: number): void;
  lua_rawgeti(L: number, idx: number, n: bigint): number;
  lua_next(L: number, idx: number): number;
  lua_pcallk(L: number, nargs: number, nresults: number, errfunc: number, ctx: number, k: number): number;
}
const API_NAMES = [
  'malloc', 'free', 'realloc', 'lua_newstate', 'lua_close', 'lua_settop', 'lua_type', 'lua_toboolean', 'lua_tolstring',
  'lua_tonumberx', 'lua_pushlstring', 'lua_createtable', 'lua_rawset', 'lua_rawgeti', 'lua_next', 'lua_pcallk',
] as const;

/** Memory accounting of one Lua state (the allocator callback enforces `max` while it is set). */
interface MemoryStats {
  used: number;
  max: number;
}

/**
 * A plain answer (`{status=integer, headers={lower-case name=string}?, body=string}`) still in WASM
 * memory, exactly as normalizeResult would make it: what a RawSink copies out before the state runs
 * again. `headers`: address and length of each name and value in turn; `contentType`: the default
 * content-type (DEFAULT_TEXT_TYPE) goes after them; `text`: the body is valid UTF-8 (else bytes).
 */
export interface RawAnswer {
  status: number;
  heap: Uint8Array;
  headers: number[];
  contentType: boolean;
  bodyPtr: number;
  bodyLen: number;
  text: boolean;
}

/** Takes a RawAnswer (true), or leaves it to be read as a FunctionResponse (false). */
export type RawSink = (answer: RawAnswer) => boolean;

/** The content-type normalizeResult gives a text body without one. */
export const DEFAULT_TEXT_TYPE = 'text/plain; charset=utf-8';

export type FailureKind = 'syntax' | 'error' | 'timeout' | 'memory' | 'nohandle' | 'bad' | 'toolarge';

/** A failure of Lua code, classified; the worker maps it to an error code. */
export class LuaFailure extends Error {
  constructor(readonly kind: FailureKind, message: string, readonly size?: number) {
    super(message);
  }
}

/** Error messages read out of Lua are cut to this many bytes (a function may raise a huge one). */
const MAX_MESSAGE_BYTES = 16 * 1024;
/** A printed text is read up to this many bytes (the worker forwards at most 1000 lines of 16 KiB). */
const MAX_PRINT_BYTES = 16 * MIB;

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const utf8Strict = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });
const encoder = new TextEncoder();
/** Strings up to this many UTF-16 units are encoded straight into a scratch buffer in WASM memory. */
const SCRATCH_CHARS = 16 * 1024;

/** The WASM module of one worker and the callbacks shared by all its states. */
export class LuaHost {
  readonly raw: RawModule;
  readonly api: LuaApi;
  /** True when `api` is the instance's own exports (not the module's checking wrappers). */
  readonly direct: boolean;
  readonly hookPtr: number;
  readonly logPtr: number;
  /** One allocator for every state of this module; its user data is the state's key in `memory`. */
  readonly allocPtr: number;
  readonly memory = new Map<number, MemoryStats>();
  private nextMemoryKey = 1;
  private scratchBuffer: ArrayBufferLike | null = null;
  private scratchView: Uint8Array = new Uint8Array(0);
  private readonly lenPtr: number;
  /** WASM memory for encoding short strings into (3 bytes per UTF-16 unit at most). */
  private readonly scratchPtr: number;
  /** The request table's field names (REQUEST_NAMES) in WASM memory. */
  private readonly namesPtr: number;
  /** WASM memory an encoded request is copied into (grown when a larger one comes). */
  private blobPtr = 0;
  private blobBytes = 0;
  /** Epoch ms after which the hook raises an error in whatever Lua code runs. */
  deadline = Infinity;
  timedOut = false;
  /** Epoch ms after which the hook calls `onLate` once (the worker sends finished answers then). */
  lateAt = Infinity;
  onLate: () => void = () => {};
  onLog: (line: string) => void = () => {};

  static async create(): Promise<LuaHost> {
    // Capture the WASM instance's exports while wasmoon instantiates its module (emscripten keeps
    // them private). Used only when they are provably this module's (same memory).
    type Exports = Record<string, unknown>;
    const wasm = (globalThis as unknown as { WebAssembly: { instantiate: (...args: unknown[]) => Promise<unknown> } }).WebAssembly;
    const original = wasm.instantiate;
    let exports: Exports | undefined;
    wasm.instantiate = (...args: unknown[]) => original.apply(wasm, args).then((r) => {
      const instance = (r as { instance?: { exports: Exports } }).instance ?? (r as { exports: Exports });
      exports ??= instance.exports;
      return r;
    });
    let lua: LuaWasm;
    try {
      lua = await new LuaFactory(undefined, {}).getLuaModule();
    } finally {
      wasm.instantiate = original;
    }
    return new LuaHost(lua, exports);
  }

  private constructor(readonly lua: LuaWasm, exports: Record<string, unknown> | undefined) {
    this.raw = lua.module as unknown as RawModule;
    const memory = exports?.memory as { buffer: ArrayBufferLike } | undefined;
    this.direct = !!exports && memory?.buffer === this.raw.HEAPU8.buffer && API_NAMES.every((n) => typeof exports[n] === 'function');
    const api: Record<string, unknown> = {};
    for (const name of API_NAMES) {
      const fn = this.direct ? exports?.[name] : this.raw[`_${name}`];
      if (typeof fn !== 'function') throw new Error(`the Lua module does not export ${name}`);
      api[name] = fn;
    }
    this.api = api as unknown as LuaApi;
    const { api: c } = this;
    this.allocPtr = this.raw.addFunction((ud: number, ptr: number, osize: number, nsize: number) => {
      const m = this.memory.get(ud);
      if (!m) return 0;
      if (nsize === 0) {
        if (ptr) {
          m.used -= osize;
          c.free(ptr);
        }
        return 0;
      }
      // without a block, osize is the kind of object (Lua's convention), not a size
      const end = m.used + (ptr ? nsize - osize : nsize);
      if (nsize > osize && m.max && end > m.max) return 0;
      const out = c.realloc(ptr, nsize);
      if (out) m.used = end;
      return out;
    }, 'iiiii');
    this.lenPtr = this.raw._malloc(8);
    this.scratchPtr = this.raw._malloc(SCRATCH_CHARS * 3);
    this.namesPtr = this.raw._malloc(REQUEST_NAMES.length);
    if (this.namesPtr) this.raw.HEAPU8.set(encoder.encode(REQUEST_NAMES), this.namesPtr);
    this.hookPtr = this.raw.addFunction((L: number) => {
      const now = Date.now();
      if (now >= this.lateAt) {
        this.lateAt = Infinity;
        try {
          this.onLate();
        } catch {
          // must never break the Lua call
        }
      }
      if (now <= this.deadline) return;
      this.timedOut = true;
      this.pushString(L, TIMEOUT_MESSAGE);
      this.lua.lua_error(L);
    }, 'vii');
    this.logPtr = this.raw.addFunction((L: number) => {
      const line = this.lua.lua_type(L, 1) === LUA_TSTRING ? this.readString(L, 1, MAX_PRINT_BYTES) : '';
      try {
        this.onLog(line);
      } catch {
        // logging must never break the Lua call
      }
      return 0;
    }, 'ii');
  }

  heapBytes(): number {
    return this.raw.HEAPU8.byteLength;
  }

  /** A new state with this host's allocator; its memory is accounted in the returned stats. */
  newState(): { L: number; key: number; stats: MemoryStats } {
    const key = this.nextMemoryKey++;
    const stats: MemoryStats = { used: 0, max: 0 };
    this.memory.set(key, stats);
    const L = this.api.lua_newstate(this.allocPtr, key);
    if (!L) {
      this.memory.delete(key);
      throw new Error('the Lua worker is out of memory');
    }
    return { L, key, stats };
  }

  closeState(L: number, key: number): void {
    try {
      this.api.lua_close(L);
    } finally {
      this.memory.delete(key);
    }
  }

  pushString(L: number, s: string): void {
    if (s.length <= SCRATCH_CHARS && this.scratchPtr) {
      // the common case: no allocation, no copy (the view is rebuilt when memory has grown)
      const heap = this.raw.HEAPU8;
      if (heap.buffer !== this.scratchBuffer) {
        this.scratchBuffer = heap.buffer;
        this.scratchView = heap.subarray(this.scratchPtr, this.scratchPtr + SCRATCH_CHARS * 3);
      }
      const written = s.length === 0 ? 0 : encoder.encodeInto(s, this.scratchView).written;
      this.api.lua_pushlstring(L, this.scratchPtr, written);
      return;
    }
    const bytes = encoder.encode(s);
    const ptr = this.api.malloc(Math.max(1, bytes.length));
    if (!ptr) throw new Error('the Lua worker is out of memory');
    try {
      this.raw.HEAPU8.set(bytes, ptr);
      this.api.lua_pushlstring(L, ptr, bytes.length);
    } finally {
      this.api.free(ptr);
    }
  }

  /** Pushes the field name REQUEST_NAMES[at, at + len) (see REQUEST_FIELDS). */
  pushName(L: number, at: number, len: number): void {
    if (this.namesPtr) this.api.lua_pushlstring(L, this.namesPtr + at, len);
    else this.pushString(L, REQUEST_NAMES.slice(at, at + len));
  }

  /** Copies `bytes` into WASM memory that stays valid until the next copyIn; its address. */
  copyIn(bytes: Uint8Array): number {
    if (bytes.length > this.blobBytes || !this.blobPtr) {
      if (this.blobPtr) this.api.free(this.blobPtr);
      this.blobBytes = Math.max(4096, bytes.length);
      this.blobPtr = this.api.malloc(this.blobBytes);
      if (!this.blobPtr) {
        this.blobBytes = 0;
        throw new Error('the Lua worker is out of memory');
      }
    }
    this.raw.HEAPU8.set(bytes, this.blobPtr);
    return this.blobPtr;
  }

  pushMap(L: number, map: Record<string, string>): void {
    const keys = Object.keys(map);
    this.api.lua_createtable(L, 0, keys.length);
    for (const k of keys) {
      this.pushString(L, k);
      this.pushString(L, String(map[k]));
      this.api.lua_rawset(L, -3);
    }
  }

  /**
   * The bytes of the string (or number) at `idx`, at most `max` of them; only call with the memory
   * limit lifted.
   */
  readBytes(L: number, idx: number, max = Infinity): Uint8Array {
    const ptr = this.api.lua_tolstring(L, idx, this.lenPtr);
    if (!ptr) return new Uint8Array(0);
    const len = Math.min(this.lenAt(), max);
    return this.raw.HEAPU8.slice(ptr, ptr + len);
  }

  /** The length in bytes of the string (or number) at `idx`, without copying it out of WASM. */
  byteLength(L: number, idx: number): number {
    const t = this.api.lua_type(L, idx);
    if (t !== LUA_TSTRING && t !== LUA_TNUMBER) return 0;
    if (!this.api.lua_tolstring(L, idx, this.lenPtr)) return 0;
    return this.lenAt();
  }

  /** The address of the string at `idx` (its length by lenAt), 0 if it is not one. */
  stringAt(L: number, idx: number): number {
    return this.api.lua_type(L, idx) === LUA_TSTRING ? this.api.lua_tolstring(L, idx, this.lenPtr) : 0;
  }

  /** The size_t that lua_tolstring wrote at lenPtr (little-endian, 32-bit WASM). */
  lenAt(): number {
    const h = this.raw.HEAPU8;
    const p = this.lenPtr;
    return (h[p]! | (h[p + 1]! << 8) | (h[p + 2]! << 16) | (h[p + 3]! << 24)) >>> 0;
  }

  readString(L: number, idx: number, max = Infinity): string {
    return utf8.decode(this.readBytes(L, idx, max));
  }

  /** Loads `code` as a text chunk, leaving the function (or the error message) on the stack. */
  loadChunk(L: number, code: string, chunkname: string): number {
    const bytes = encoder.encode(code);
    const ptr = this.raw._malloc(Math.max(1, bytes.length));
    if (!ptr) throw new Error('the Lua worker is out of memory');
    try {
      this.raw.HEAPU8.set(bytes, ptr);
      return this.lua.luaL_loadbufferx(L, ptr, bytes.length, chunkname, 't');
    } finally {
      this.raw._free(ptr);
    }
  }
}

/** A compiled function: its own Lua state with the prelude's `init` and `call` in the registry. */
export class LuaFunctionState {
  private readonly L: number;
  private readonly memoryKey: number;
  private readonly stats: MemoryStats;
  private readonly memoryMax: number;
  private readonly maxResponse: number;
  private callRef = 0;
  private callRefBig = 0n;
  private closed = false;

  /** Builds the state and runs the top-level code; throws LuaFailure. Uses the host's deadline. */
  static create(host: LuaHost, def: LuaFunctionDef): LuaFunctionState {
    const state = new LuaFunctionState(host, def);
    try {
      state.init(def);
    } catch (e) {
      state.close();
      throw e;
    }
    return state;
  }

  private constructor(private readonly host: LuaHost, def: LuaFunctionDef) {
    const { L: address, key, stats } = host.newState();
    this.L = address;
    this.memoryKey = key;
    this.stats = stats;
    this.memoryMax = Math.max(1, def.memoryMb) * MIB;
    this.maxResponse = def.maxResponseBytes ?? Infinity;
    const { lua } = host;
    const L = this.L;
    const libs: [string, (L: number) => number][] = [
      ['_G', lua.luaopen_base], ['coroutine', lua.luaopen_coroutine], ['table', lua.luaopen_table],
      ['string', lua.luaopen_string], ['utf8', lua.luaopen_utf8], ['math', lua.luaopen_math], ['os', lua.luaopen_os],
    ];
    for (const [name, open] of libs) {
      open.call(lua, L);
      lua.lua_setglobal(L, name);
    }
    lua.lua_sethook(L, host.hookPtr, LUA_MASKCOUNT, HOOK_EVERY);
  }

  private init(def: LuaFunctionDef): void {
    const { lua } = this.host;
    const L = this.L;
    if (this.host.loadChunk(L, PRELUDE, '=zerverless') !== LUA_OK) throw new Error(`the Lua prelude does not compile: ${this.host.readString(L, -1)}`);
    lua.lua_pushcclosure(L, this.host.logPtr, 0);
    this.host.pushMap(L, def.env);
    if (lua.lua_pcallk(L, 2, 2, 0, 0, null) !== LUA_OK) throw new Error(`the Lua prelude failed: ${this.host.readString(L, -1)}`);
    this.callRef = lua.luaL_ref(L, LUA_REGISTRYINDEX);
    this.callRefBig = BigInt(this.callRef);
    const initRef = lua.luaL_ref(L, LUA_REGISTRYINDEX);

    lua.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(initRef));
    const pad = def.lineOffset && def.lineOffset > 1 ? '\n'.repeat(def.lineOffset - 1) : '';
    this.stats.max = this.memoryMax;
    const loaded = this.host.loadChunk(L, pad + def.code, `@${def.filename}`);
    this.stats.max = 0;
    if (loaded !== LUA_OK) {
      if (loaded === LUA_ERRMEM) throw new LuaFailure('memory', 'not enough memory');
      const message = this.errorMessage(-1);
      throw new LuaFailure(loaded === LUA_ERRSYNTAX ? 'syntax' : 'error', fixChunkName(message, def.filename));
    }
    this.protectedCall(1, 1);
    const defined = lua.lua_toboolean(L, -1) !== 0;
    lua.lua_settop(L, 0);
    if (!defined) throw new LuaFailure('nohandle', `${def.filename}: the code does not define a global function handle(req)`);
  }

  /** Runs handle(req); throws LuaFailure. Uses the host's deadline. */
  call(req: FunctionRequest): FunctionResponse {
    if (this.closed) throw new Error('the Lua state is closed');
    const { api } = this.host;
    const L = this.L;
    api.lua_settop(L, 0);
    api.lua_rawgeti(L, LUA_REGISTRYINDEX, this.callRefBig);
    api.lua_createtable(L, 0, 5);
    for (const field of REQUEST_STRINGS) {
      this.host.pushString(L, field);
      this.host.pushString(L, String(req[field] ?? ''));
      api.lua_rawset(L, -3);
    }
    for (const field of REQUEST_MAPS) {
      this.host.pushString(L, field);
      this.host.pushMap(L, req[field] ?? {});
      api.lua_rawset(L, -3);
    }
    this.protectedCall(1, 5);
    try {
      return this.response();
    } finally {
      api.lua_settop(L, 0);
    }
  }

  /**
   * Runs handle(req) for a request encoded by channel.ts's writeRequest: `bytes` (a view of the
   * shared ring, read only here, before anything runs) is copied into WASM memory and every string
   * is pushed straight from there. Throws LuaFailure. Uses the host's deadline.
   */
  callEncoded(bytes: Uint8Array, sink?: RawSink): FunctionResponse | null {
    if (this.closed) throw new Error('the Lua state is closed');
    const { host } = this;
    const { api } = host;
    const L = this.L;
    const base = host.copyIn(bytes);
    let p = 0;
    const u32 = (): number => {
      const v = ((bytes[p] as number) | ((bytes[p + 1] as number) << 8) | ((bytes[p + 2] as number) << 16) | ((bytes[p + 3] as number) << 24)) >>> 0;
      p += 4;
      return v;
    };
    const pushNext = (): void => {
      const n = u32();
      api.lua_pushlstring(L, base + p, n);
      p += n;
    };
    api.lua_settop(L, 0);
    api.lua_rawgeti(L, LUA_REGISTRYINDEX, this.callRefBig);
    api.lua_createtable(L, 0, 5);
    for (const [at, len] of REQUEST_FIELDS) {
      host.pushName(L, at, len);
      if (at < MAP_FIELDS_AT) pushNext();
      else {
        const count = u32();
        api.lua_createtable(L, 0, count);
        for (let i = 0; i < count; i++) {
          pushNext();
          pushNext();
          api.lua_rawset(L, -3);
        }
      }
      api.lua_rawset(L, -3);
    }
    this.protectedCall(1, 5);
    try {
      if (sink) {
        const raw = this.rawPlain();
        if (raw && sink(raw)) return null;
      }
      return this.response();
    } finally {
      api.lua_settop(L, 0);
    }
  }

  /**
   * The answer on the stack as a RawAnswer when it is a plain one normalizeResult would pass
   * through as it is (status 100-599, a string body, lower-case ASCII header names, UTF-8 header
   * values); else null (response() reads it). Throws LuaFailure when it is over the response cap.
   */
  private rawPlain(): RawAnswer | null {
    const L = this.L;
    const { api } = this.host;
    const host = this.host;
    const tag = host.stringAt(L, 1);
    if (!tag || host.lenAt() !== 5 || api.lua_type(L, 2) !== LUA_TNUMBER) return null;
    const bodyPtr = host.stringAt(L, 3);
    if (!bodyPtr) return null;
    const bodyLen = host.lenAt();
    let heap = host.raw.HEAPU8;
    // 'plain'
    if (heap[tag] !== 0x70 || heap[tag + 1] !== 0x6c || heap[tag + 2] !== 0x61 || heap[tag + 3] !== 0x69 || heap[tag + 4] !== 0x6e) return null;
    const size = bodyLen + api.lua_tonumberx(L, 5, 0);
    if (size > this.maxResponse) throw new LuaFailure('toolarge', 'the response is over the limit', size);
    const status = api.lua_tonumberx(L, 2, 0);
    if (!Number.isInteger(status) || status < 100 || status > 599) return null;
    const headers: number[] = [];
    let contentType = true;
    const type = api.lua_type(L, 4);
    if (type === LUA_TTABLE) {
      for (let i = 1; api.lua_rawgeti(L, 4, BigInt(i)) === LUA_TSTRING; i += 2) {
        const name = host.stringAt(L, -1);
        const nameLen = host.lenAt();
        api.lua_rawgeti(L, 4, BigInt(i + 1));
        const value = host.stringAt(L, -1);
        const valueLen = host.lenAt();
        api.lua_settop(L, -3);
        if (!value) return null;
        heap = host.raw.HEAPU8;
        for (let k = name; k < name + nameLen; k++) {
          const c = heap[k] as number;
          if (c > 0x7f || (c >= 0x41 && c <= 0x5a)) return null;
        }
        if (!isUtf8(heap.subarray(value, value + valueLen))) return null;
        if (nameLen === 12 && isContentType(heap, name)) contentType = false;
        headers.push(name, nameLen, value, valueLen);
      }
      api.lua_settop(L, -2);
    } else if (type !== LUA_TNIL) return null;
    heap = host.raw.HEAPU8;
    const text = isUtf8(heap.subarray(bodyPtr, bodyPtr + bodyLen));
    // normalizeResult adds the default content-type to a text body only
    return { status, heap, headers, contentType: contentType && text, bodyPtr, bodyLen, text };
  }

  private response(): FunctionResponse {
    const L = this.L;
    const { api } = this.host;
    const tag = this.host.readString(L, 1, 16);
    // --max-response, counted inside WASM before anything is copied out (the JSON of status and
    // headers, or of a table body, plus a string body; for 'plain', the prelude's count of the
    // headers' bytes plus the body)
    let size = 0;
    if (tag === 'raw' || tag === 'json') size = this.host.byteLength(L, 2) + this.host.byteLength(L, 3);
    else if (tag === 'plain') size = this.host.byteLength(L, 3) + api.lua_tonumberx(L, 5, 0);
    if (size > this.maxResponse) throw new LuaFailure('toolarge', 'the response is over the limit', size);
    let value: unknown;
    if (tag === 'plain') {
      // {status=integer?, headers={string=string}?, body=string?}: read straight off the stack
      const plain: Record<string, unknown> = {};
      if (api.lua_type(L, 2) === LUA_TNUMBER) plain.status = api.lua_tonumberx(L, 2, 0);
      if (api.lua_type(L, 3) === LUA_TSTRING) plain.body = textOrBytes(this.host.readBytes(L, 3));
      if (api.lua_type(L, 4) === LUA_TTABLE) {
        // the prelude flattened them, sorted by name: {name1, value1, name2, value2, ...}
        const headers: Record<string, string> = {};
        for (let i = 1; api.lua_rawgeti(L, 4, BigInt(i)) === LUA_TSTRING; i += 2) {
          const name = this.host.readString(L, -1);
          api.lua_rawgeti(L, 4, BigInt(i + 1));
          headers[name] = this.host.readString(L, -1);
          api.lua_settop(L, -3);
        }
        plain.headers = headers;
      }
      value = plain;
    } else if (tag === 'raw') {
      const body = textOrBytes(this.host.readBytes(L, 3));
      value = typeof body === 'string' ? body : { status: 200, headers: { 'content-type': 'application/octet-stream' }, body };
    } else if (tag === 'json') {
      value = JSON.parse(this.host.readString(L, 2));
      if (this.host.lua.lua_type(L, 3) === LUA_TSTRING && value !== null && typeof value === 'object') {
        (value as Record<string, unknown>).body = textOrBytes(this.host.readBytes(L, 3));
      }
    } else {
      throw new LuaFailure('bad', `handle returned a value that cannot be sent: ${this.host.readString(L, 2, MAX_MESSAGE_BYTES)}`);
    }
    const out = normalizeResult(value);
    if (!out.ok) throw new LuaFailure('bad', `handle returned an unusable response: ${out.reason}`);
    return out.response;
  }

  /** lua_pcall under the memory limit; throws a classified LuaFailure when it fails or overran. */
  private protectedCall(nargs: number, nresults: number): void {
    const { lua } = this.host;
    this.stats.max = this.memoryMax;
    const status = this.host.api.lua_pcallk(this.L, nargs, nresults, 0, 0, 0);
    this.stats.max = 0;
    if (this.host.timedOut) {
      lua.lua_settop(this.L, 0);
      throw new LuaFailure('timeout', TIMEOUT_MESSAGE);
    }
    if (status === LUA_OK) return;
    const message = status === LUA_ERRMEM ? 'not enough memory' : this.errorMessage(-1);
    lua.lua_settop(this.L, 0);
    if (status === LUA_ERRMEM || message === 'not enough memory') throw new LuaFailure('memory', message);
    throw new LuaFailure('error', message);
  }

  private errorMessage(idx: number): string {
    const type = this.host.lua.lua_type(this.L, idx);
    if (type === LUA_TSTRING || type === LUA_TNUMBER) return this.host.readString(this.L, idx, MAX_MESSAGE_BYTES);
    return `(error object is a ${this.host.lua.lua_typename(this.L, type)} value)`;
  }

  /** Frees the state (runs pending __gc finalizers under the host's deadline). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.closeState(this.L, this.memoryKey);
  }
}

const CONTENT_TYPE = [...'content-type'].map((c) => c.charCodeAt(0));
function isContentType(heap: Uint8Array, at: number): boolean {
  for (let i = 0; i < 12; i++) if (heap[at + i] !== CONTENT_TYPE[i]) return false;
  return true;
}

const REQUEST_STRINGS = ['method', 'path', 'body'] as const;
const REQUEST_MAPS = ['query', 'headers'] as const;
/** The request's field names, kept in WASM memory; REQUEST_FIELDS: [offset, length] in the encoded order. */
const REQUEST_NAMES = 'methodpathbodyqueryheaders';
const MAP_FIELDS_AT = 14;
const REQUEST_FIELDS: readonly (readonly [number, number])[] = [[0, 6], [6, 4], [10, 4], [14, 5], [19, 7]];

/** Decodes valid UTF-8 as a string and keeps anything else as bytes. */
function textOrBytes(bytes: Uint8Array): string | Uint8Array {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return bytes;
  }
}

/** Lua shortens long chunk names to `...tail`; put the full filename back into `file:line: msg`. */
function fixChunkName(message: string, filename: string): string {
  const m = /^(.*?):(\d+): ([\s\S]*)$/.exec(message);
  if (!m || m[1] === filename || !m[1]?.startsWith('...')) return message;
  return `${filename}:${m[2]}: ${m[3]}`;
}
