// Tests of the shared rings between the Lua pool and its workers (channel.ts), on one thread: every
// record comes out as it went in, in order, across many turns of the ring, with the reader behind.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { R_INVOKE, RecordReader, RecordWriter, channelBuffer, requestBound, requestRing, writeRequest } from './channel.js';

describe('lua channel', () => {
  it('carries records of every size in order through many turns of the ring, and refuses what does not fit', () => {
    const sab = channelBuffer();
    const writer = requestRing(sab);
    const reader = requestRing(sab);
    const w = new RecordWriter();
    const r = new RecordReader();
    const sent: string[] = [];
    let received = 0;
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const take = (): boolean => {
      if (!reader.read()) return false;
      assert.equal(reader.type, R_INVOKE);
      r.begin(reader.buf, reader.pos);
      assert.equal(r.u32(), received);
      assert.equal(r.str(), sent[received]);
      assert.equal(r.p - reader.pos, reader.len);
      reader.release();
      received++;
      return true;
    };
    for (let i = 0; i < 3000; i++) {
      const size = [0, 1, 7, 64, 65, 1000, 9000, 30000][random(8)] as number;
      const s = (i % 3 === 0 ? 'é€😀' : 'ab').repeat(size).slice(0, size);
      const at = writer.reserve(4 + 4 + s.length * 3);
      if (at < 0) {
        // full (the reader is behind): it catches up, then the record fits
        assert.ok(take());
        i--;
        continue;
      }
      w.begin(writer.buf, at);
      w.u32(sent.length);
      w.str(s);
      writer.commit(R_INVOKE, w.length);
      sent.push(s);
      if (random(3) === 0) while (random(4) !== 0 && take());
    }
    while (take());
    assert.equal(received, sent.length);
    assert.equal(writer.reserve(writer.maxPayload + 1), -1);
  });

  it('writes a request within its bound', () => {
    const sab = channelBuffer();
    const ring = requestRing(sab);
    const w = new RecordWriter();
    const req = { method: 'POST', path: '/ü/x', body: 'a\u0000b€😀'.repeat(10), query: { q: 'é', '': '' }, headers: { 'x-h': 'v'.repeat(100) } };
    const bound = requestBound(req);
    const at = ring.reserve(bound);
    w.begin(ring.buf, at);
    writeRequest(w, req);
    assert.ok(w.length <= bound);
    const r = new RecordReader();
    r.begin(ring.buf, at);
    assert.deepEqual([r.str(), r.str(), r.str()], [req.method, req.path, req.body]);
    assert.deepEqual([r.u32(), r.str(), r.str(), r.str(), r.str()], [2, 'q', 'é', '', '']);
    assert.deepEqual([r.u32(), r.str(), r.str()], [1, 'x-h', req.headers['x-h']]);
  });
});
