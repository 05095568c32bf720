// The kept function logs on a real temp folder: lines with time and stream, the per-function and
// total bounds on disk, the line cap, the rate limit (a chatty function cannot starve another), the
// in-memory buffer bound, redaction of secret values, follow / close, removal, and reopening.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogStore, type LogTarget } from './store.js';
import type { LogEntry } from './types.js';

const target = (path: string, secrets: string[] = [], app = 'app', namespace = 'team'): LogTarget => ({ namespace, app, path, secrets });

async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await stat(join(e.parentPath, e.name))).size;
  }
  return n;
}

describe('LogStore', () => {
  let dir: string;
  let now: number;
  const clock = () => now;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zv-logs-'));
    now = Date.parse('2026-12-06T05:00:00.000Z');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps lines with time and stream per function; reads one function or all, with since and tail', async () => {
    const s = await LogStore.open({ dir, now: clock });
    s.write(target('/a'), 'stdout', 'a one');
    now += 1000;
    s.write(target('/b'), 'stderr', 'b one');
    now += 1000;
    s.write(target('/a'), 'stdout', 'a two');
    assert.deepEqual(await s.read('team', 'app', '/a', {}), [
      { at: '2026-12-06T05:00:00.000Z', stream: 'stdout', line: 'a one', function: '/a' },
      { at: '2026-12-06T05:00:02.000Z', stream: 'stdout', line: 'a two', function: '/a' },
    ]);
    assert.deepEqual((await s.read('team', 'app', null, {})).map((e) => e.line), ['a one', 'b one', 'a two']);
    assert.deepEqual((await s.read('team', 'app', null, { since: now - 1000 })).map((e) => e.line), ['b one', 'a two']);
    assert.deepEqual((await s.read('team', 'app', null, { tail: 1 })).map((e) => e.line), ['a two']);
    assert.deepEqual(await s.read('team', 'other', null, {}), []);
    await s.close();
    // Another run finds what was kept.
    const again = await LogStore.open({ dir, now: clock });
    assert.deepEqual((await again.read('team', 'app', null, {})).map((e) => e.line), ['a one', 'b one', 'a two']);
    await again.close();
  });

  it('replaces the values of secrets in a line, and cuts long lines', async () => {
    const s = await LogStore.open({ dir, now: clock, maxLineBytes: 100 });
    s.write(target('/a', ['s3cr3t-value', 'abc']), 'stdout', 'password is s3cr3t-value; again s3cr3t-value; abc stays (too short)');
    s.write(target('/a'), 'stdout', 'x'.repeat(1000));
    const lines = (await s.read('team', 'app', '/a', {})).map((e) => e.line);
    assert.equal(lines[0], 'password is [redacted]; again [redacted]; abc stays (too short)');
    assert.equal(lines[1], `${'x'.repeat(100)}…`);
    await s.flushAll();
    const onDisk = await readFile(join(dir, 'team', 'app', '%2Fa', (await readdir(join(dir, 'team', 'app', '%2Fa')))[0]!), 'utf8');
    assert.ok(!onDisk.includes('s3cr3t-value'));
    await s.close();
  });

  it('keeps at most the per-function budget on disk, and at most the total for all functions', async () => {
    const s = await LogStore.open({ dir, now: clock, perFunctionBytes: 16 * 1024, totalBytes: 40 * 1024, linesPerSecond: 1e9, burstLines: 1e9 });
    const line = 'y'.repeat(200);
    for (let i = 0; i < 5000; i++) {
      s.write(target('/chatty'), 'stdout', `${i} ${line}`);
      if (i % 10 === 0) await s.flushAll();
    }
    await s.flushAll();
    assert.ok((await bytesUnder(join(dir, 'team', 'app', '%2Fchatty'))) <= 16 * 1024, 'per-function bound');
    const kept = await s.read('team', 'app', '/chatty', {});
    assert.ok(kept.length > 0 && kept.at(-1)!.line.startsWith('4999 '), 'the newest lines are kept');
    for (const f of ['/f1', '/f2', '/f3', '/f4']) {
      for (let i = 0; i < 500; i++) s.write(target(f), 'stdout', `${i} ${line}`);
      await s.flushAll();
    }
    assert.ok((await bytesUnder(dir)) <= 40 * 1024, 'total bound');
    assert.equal(s.bytesOnDisk, await bytesUnder(dir));
    // The newest function's lines survive; the oldest segments (the chatty function's) went first.
    assert.ok((await s.read('team', 'app', '/f4', {})).length > 0);
    await s.close();
  });

  it('a function over its rate drops lines (counted in a note) without starving another; the buffer stays bounded', async () => {
    const s = await LogStore.open({ dir, now: clock, perFunctionBytes: 64 * 1024, linesPerSecond: 10, burstLines: 100 });
    let maxBuffered = 0;
    for (let i = 0; i < 10_000; i++) {
      s.write(target('/loud'), 'stdout', `loud ${i} ${'z'.repeat(500)}`);
      maxBuffered = Math.max(maxBuffered, s.bytesBuffered);
    }
    assert.ok(maxBuffered <= 16 * 1024, `buffered ${maxBuffered} bytes`);
    s.write(target('/quiet'), 'stdout', 'quiet one');
    now += 1000;
    s.write(target('/loud'), 'stdout', 'loud after a second');
    const loud = await s.read('team', 'app', '/loud', {});
    assert.ok(loud.length <= 100 + 2);
    assert.match(loud.at(-2)!.line, /^\[zerverless\] \d+ lines? dropped/);
    assert.equal(loud.at(-2)!.stream, 'stderr');
    assert.equal(loud.at(-1)!.line, 'loud after a second');
    assert.deepEqual((await s.read('team', 'app', '/quiet', {})).map((e) => e.line), ['quiet one']);
    await s.close();
  });

  it('follow gets new lines of one function or of every function; close ends followers; removeApp deletes', async () => {
    const s = await LogStore.open({ dir, now: clock });
    const one: LogEntry[] = [];
    const all: LogEntry[] = [];
    let ended = 0;
    const stopOne = s.follow('team', 'app', '/a', (e) => one.push(e), () => ended++);
    s.follow('team', 'app', null, (e) => all.push(e), () => ended++);
    s.follow('team', 'other', null, () => assert.fail('another application'), () => ended++);
    s.write(target('/a', ['topsecret']), 'stdout', 'hello topsecret');
    s.write(target('/b'), 'stderr', 'from b');
    stopOne();
    s.write(target('/a'), 'stdout', 'after stop');
    assert.deepEqual(one.map((e) => e.line), ['hello [redacted]']);
    assert.deepEqual(all.map((e) => `${e.function} ${e.stream} ${e.line}`), ['/a stdout hello [redacted]', '/b stderr from b', '/a stdout after stop']);
    s.write(target('/x', [], 'keep'), 'stdout', 'kept');
    await s.flushAll();
    await s.removeApp('team', 'app');
    assert.deepEqual(await s.read('team', 'app', null, {}), []);
    assert.deepEqual(await readdir(join(dir, 'team')), ['keep']);
    assert.equal(s.bytesOnDisk, await bytesUnder(dir));
    await s.close();
    assert.equal(ended, 2);
  });
});
