// The shared-memory channel between the Lua pool (main thread) and one worker: two rings of byte
// records in one SharedArrayBuffer, requests one way and answers the other, plus a few Int32 control
// words. It replaces a postMessage (a structured clone, a MessagePort event on the other side) per
// batch on the hot path:
// - requests: the pool writes records (a call's request as length-prefixed UTF-8) and bumps SEQ;
//   a worker that sleeps (Atomics.wait on SEQ, WORKER_SLEEP set) is woken with Atomics.notify, so a
//   busy worker costs the pool no system call at all;
// - answers: the worker writes records as jobs end and rings the pool (Atomics.notify on MAIN_WAIT,
//   which the pool awaits with Atomics.waitAsync) only when the pool waits for it and a batch ends or
//   its answers are FLUSH_MS old.
// A message that is too large for its ring or finds it full goes over a MessagePort instead (read
// with receiveMessageOnPort), tagged with the ring's write position at that moment so the reader
// takes it in order with the records (a define before the calls that need it, a log line before the
// answer of its call).
// Records: an 8-byte aligned header (payload bytes, type) and the payload; a PAD record fills the end
// of the ring when the next record does not fit there. Counters are byte positions that wrap around
// at 2^32 (compared with `| 0`); the ring sizes are powers of two.
import { Buffer } from 'node:buffer';

/** Int32 control words at the start of the buffer. */
export const SEQ = 0;
export const WORKER_SLEEP = 1;
const REQ_WRITE = 2;
const REQ_READ = 3;
const ANS_WRITE = 4;
const ANS_READ = 5;
export const MAIN_WAIT = 6;
/** The worker's WASM memory in KiB (read by the pool to retire a worker that grew too much). */
export const HEAP_KIB = 7;
/** Messages sent beside the request ring (by the pool) and the answer ring (by the worker) so far. */
export const REQ_BESIDE = 8;
export const ANS_BESIDE = 9;
const HEADER_BYTES = 64;
const REQ_BYTES = 256 * 1024;
const ANS_BYTES = 256 * 1024;

/** Record types. */
export const PAD = 0;
/** pool → worker: job u32, function u32, then the request (see writeRequest). */
export const R_INVOKE = 1;
/** pool → worker: job u32, function u32. */
export const R_COMPILE = 2;
/** worker → pool: job u32, status u32, header count u32, names and values, body kind u32 (0 text, 1 bytes), body. */
export const A_OK = 3;
/** worker → pool: job u32, compile u32 (1 when the definition was dropped), code, message. */
export const A_FAIL = 4;
/** worker → pool: a function's printed line: function u32, line. */
export const A_LOG = 5;

/** A message sent beside the ring: `pos` is the ring's write position when it was sent. */
export interface PortMessage<T> {
  pos: number;
  msg: T;
}

export function channelBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + REQ_BYTES + ANS_BYTES);
}

const align8 = (n: number): number => (n + 7) & ~7;

/** One ring of a channel; a side uses it either to write or to read. */
export class Ring {
  readonly ctrl: Int32Array;
  private readonly i32: Int32Array;
  /** The whole shared buffer as bytes; payload positions are absolute offsets into it. */
  readonly buf: Buffer;
  private readonly base: number;
  private readonly mask: number;
  private readonly size: number;
  /** Writer: bytes committed. Reader: bytes consumed up to the current record. */
  private at = 0;
  /** Writer: where the reserved record starts (after a PAD at the end, if any). */
  private padBytes = 0;
  /** Reader: the current record. */
  type = 0;
  pos = 0;
  len = 0;
  private next = 0;

  constructor(sab: SharedArrayBuffer, private readonly writeIdx: number, private readonly readIdx: number, base: number, size: number) {
    this.ctrl = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.i32 = new Int32Array(sab);
    this.buf = Buffer.from(sab);
    this.base = base;
    this.size = size;
    this.mask = size - 1;
  }

  /** The largest payload a record may have (bigger ones go beside the ring). */
  get maxPayload(): number {
    return this.size / 8;
  }

  /** Writer: the position messages sent beside the ring carry. */
  get written(): number {
    return this.at;
  }

  /**
   * Writer: room for a record of up to `max` payload bytes; the absolute offset where its payload
   * goes, or -1 when it does not fit now.
   */
  reserve(max: number): number {
    if (max > this.maxPayload) return -1;
    const need = align8(8 + max);
    const used = (this.at - Atomics.load(this.ctrl, this.readIdx)) | 0;
    const free = this.size - used;
    const start = this.at & this.mask;
    const toEnd = this.size - start;
    if (need <= toEnd) {
      if (need > free) return -1;
      this.padBytes = 0;
      return this.base + start + 8;
    }
    if (toEnd + need > free) return -1;
    this.padBytes = toEnd;
    return this.base + 8;
  }

  /** Writer: publishes the record reserved last with its payload of `len` bytes. */
  commit(type: number, len: number): void {
    if (this.padBytes > 0) {
      const pad = (this.base + (this.at & this.mask)) >> 2;
      this.i32[pad] = this.padBytes - 8;
      this.i32[pad + 1] = PAD;
      this.at = (this.at + this.padBytes) | 0;
      this.padBytes = 0;
    }
    const head = (this.base + (this.at & this.mask)) >> 2;
    this.i32[head] = len;
    this.i32[head + 1] = type;
    this.at = (this.at + align8(8 + len)) | 0;
    Atomics.store(this.ctrl, this.writeIdx, this.at);
  }

  /** Reader: true when a record is waiting (it is not consumed until `release`). */
  hasRecord(): boolean {
    return Atomics.load(this.ctrl, this.writeIdx) !== this.at;
  }

  /** Reader: the position reached (compared with a message's `pos`). */
  get consumed(): number {
    return this.at;
  }

  /** Reader: loads the next record into type/pos/len; false when there is none. */
  read(): boolean {
    const end = Atomics.load(this.ctrl, this.writeIdx);
    while (this.at !== end) {
      const head = (this.base + (this.at & this.mask)) >> 2;
      const len = this.i32[head] as number;
      const type = this.i32[head + 1] as number;
      if (type === PAD) {
        this.at = (this.at + 8 + len) | 0;
        continue;
      }
      this.type = type;
      this.len = len;
      this.pos = (head << 2) + 8;
      this.next = (this.at + align8(8 + len)) | 0;
      return true;
    }
    Atomics.store(this.ctrl, this.readIdx, this.at);
    return false;
  }

  /** Reader: frees the current record's bytes for the writer. */
  release(): void {
    this.at = this.next;
    Atomics.store(this.ctrl, this.readIdx, this.at);
  }
}

export function requestRing(sab: SharedArrayBuffer): Ring {
  return new Ring(sab, REQ_WRITE, REQ_READ, HEADER_BYTES, REQ_BYTES);
}

export function answerRing(sab: SharedArrayBuffer): Ring {
  return new Ring(sab, ANS_WRITE, ANS_READ, HEADER_BYTES + REQ_BYTES, ANS_BYTES);
}

/** Writes into a record's payload: little-endian u32s and length-prefixed UTF-8 strings. */
export class RecordWriter {
  buf: Buffer = Buffer.alloc(0);
  p = 0;
  private start = 0;

  begin(buf: Buffer, at: number): void {
    this.buf = buf;
    this.p = at;
    this.start = at;
  }

  get length(): number {
    return this.p - this.start;
  }

  u32(v: number): void {
    const b = this.buf;
    const p = this.p;
    b[p] = v;
    b[p + 1] = v >>> 8;
    b[p + 2] = v >>> 16;
    b[p + 3] = v >>> 24;
    this.p = p + 4;
  }

  /** The caller reserved 3 bytes per UTF-16 unit (+ 4): enough for any string. */
  str(s: string): void {
    const len = s.length;
    const b = this.buf;
    const at = this.p + 4;
    let n = len;
    // short ASCII strings (most names and values) by hand: Buffer#write costs ~3x more for them
    if (len <= 64) {
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) {
          n = -1;
          break;
        }
        b[at + i] = c;
      }
    } else n = -1;
    if (n < 0) n = b.write(s, at, 'utf8');
    this.u32(n);
    this.p += n;
  }

  /** `len` bytes of `from` at `at`, length-prefixed. */
  copy(from: Uint8Array, at: number, len: number): void {
    this.u32(len);
    const b = this.buf;
    const p = this.p;
    if (len <= 64) for (let i = 0; i < len; i++) b[p + i] = from[at + i] as number;
    else b.set(from.subarray(at, at + len), p);
    this.p = p + len;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.buf.set(b, this.p);
    this.p += b.length;
  }
}

/** Reads a record's payload written by RecordWriter. */
export class RecordReader {
  buf: Buffer = Buffer.alloc(0);
  p = 0;

  begin(buf: Buffer, at: number): void {
    this.buf = buf;
    this.p = at;
  }

  u32(): number {
    const b = this.buf;
    const p = this.p;
    this.p = p + 4;
    return ((b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 24)) >>> 0;
  }

  str(): string {
    const n = this.u32();
    const p = this.p;
    this.p = p + n;
    return n === 0 ? '' : this.buf.toString('utf8', p, p + n);
  }

  /** A copy of the next length-prefixed bytes. */
  bytes(): Uint8Array {
    const n = this.u32();
    const p = this.p;
    this.p = p + n;
    return new Uint8Array(this.buf.subarray(p, p + n));
  }
}

/** The most bytes writeRequest may write for `req` (3 per UTF-16 unit, 4 per length). */
export function requestBound(req: { method: string; path: string; body: string; query: Record<string, string>; headers: Record<string, string> }): number {
  let n = 20 + String(req.method ?? '').length + String(req.path ?? '').length + String(req.body ?? '').length;
  let count = 0;
  for (const map of [req.query ?? {}, req.headers ?? {}]) {
    for (const k of Object.keys(map)) {
      n += k.length + String(map[k]).length;
      count++;
    }
  }
  return n * 3 + count * 8;
}

/** The request as the worker pushes it into Lua: method, path, body, query pairs, header pairs. */
export function writeRequest(w: RecordWriter, req: { method: string; path: string; body: string; query: Record<string, string>; headers: Record<string, string> }): void {
  w.str(String(req.method ?? ''));
  w.str(String(req.path ?? ''));
  w.str(String(req.body ?? ''));
  writeMap(w, req.query ?? {});
  writeMap(w, req.headers ?? {});
}

function writeMap(w: RecordWriter, map: Record<string, string>): void {
  const at = w.p;
  w.u32(0);
  let count = 0;
  for (const k of Object.keys(map)) {
    w.str(k);
    w.str(String(map[k]));
    count++;
  }
  const end = w.p;
  w.p = at;
  w.u32(count);
  w.p = end;
}
