// The cap on git processes: the semaphore (first come, first served; never more holders than
// slots), runGit through it with a fake git (the wait is not part of the time limit), and real git
// processes counted from /proc while many runs compete for few slots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Semaphore } from '../core/semaphore.js';
import { runGit } from './exec.js';
import { DEFAULT_MAX_GIT_PROCESSES, gitProcesses, setMaxGitProcesses } from './limit.js';

/** Waits for `pred`; the deadline only ends a wait that will never end (a loaded machine is slow). */
async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the semaphore admits at most its slots, first come first served, and a slot is given back once', async () => {
  const s = new Semaphore(2);
  const order: number[] = [];
  const releases: (() => void)[] = [];
  const waits = [0, 1, 2, 3, 4].map((i) => s.acquire().then((r) => { order.push(i); releases[i] = r; }));
  await until('two holders', () => order.length === 2);
  assert.deepEqual(order, [0, 1]);
  assert.equal(s.running, 2);
  assert.equal(s.waiting, 3);
  // Giving the same slot back twice frees one slot, not two.
  releases[1]?.();
  releases[1]?.();
  await until('the third holder', () => order.length === 3);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1, 2]);
  assert.equal(s.running, 2);
  // More slots let waiters in at once, in their order.
  s.resize(4);
  await Promise.all(waits);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(s.running, 4);
  // Fewer slots: nobody is stopped, and nobody new comes in until the count is under the limit.
  s.resize(1);
  let late = false;
  const next = s.acquire().then((r) => { late = true; return r; });
  for (const i of [0, 2, 3]) releases[i]?.();
  await new Promise((r) => setImmediate(r));
  assert.equal(late, false, 'still one holder, so a slot of one is taken');
  releases[4]?.();
  (await next)();
  assert.equal(s.running, 0);
  assert.throws(() => new Semaphore(0), RangeError);
  assert.throws(() => s.resize(1.5), RangeError);
});

test('a wait for a slot ends when its signal aborts, and the others keep their places', async () => {
  const s = new Semaphore(1);
  const first = await s.acquire();
  const abort = new AbortController();
  const order: string[] = [];
  const a = s.acquire(abort.signal).then(() => order.push('a'), (e: unknown) => order.push(`a: ${(e as Error).message}`));
  const b = s.acquire().then((r) => { order.push('b'); return r; });
  abort.abort(new Error('gone'));
  await a;
  assert.equal(s.waiting, 1);
  first();
  (await b)();
  assert.deepEqual(order, ['a: gone', 'b']);
  await assert.rejects(s.acquire(AbortSignal.abort(new Error('already'))), /already/);
  assert.equal(s.running, 0);
});

test('run() gives the slot back when the work fails', async () => {
  const s = new Semaphore(1);
  await assert.rejects(s.run(async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await s.run(async () => 'ok'), 'ok');
  assert.equal(s.running, 0);
});

/** A fake git: notes its start, waits until the file `go` exists, notes its end. */
async function fakeGit(dir: string): Promise<string> {
  const bin = join(dir, 'fake-git');
  await writeFile(bin, [
    '#!/bin/sh',
    'echo "start $$" >> "$FAKE_DIR/log"',
    'while [ ! -f "$FAKE_DIR/go" ]; do sleep 0.02; done',
    'echo "end $$" >> "$FAKE_DIR/log"',
    '',
  ].join('\n'));
  await chmod(bin, 0o755);
  return bin;
}

async function logLines(dir: string): Promise<string[]> {
  try {
    return (await readFile(join(dir, 'log'), 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** The most processes that were between their start and end line at once. */
function mostAtOnce(lines: string[]): number {
  let now = 0;
  let most = 0;
  for (const l of lines) {
    now += l.startsWith('start') ? 1 : -1;
    most = Math.max(most, now);
  }
  return most;
}

test('runGit takes a slot per process: six runs on two slots run two at a time, in order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zv-gitcap-'));
  try {
    const git = await fakeGit(dir);
    const slots = new Semaphore(2);
    const runs = Array.from({ length: 6 }, () =>
      runGit({ git, args: ['status'], cwd: dir, timeoutMs: 120_000, mode: 'local', allowFile: false, env: { FAKE_DIR: dir }, slots }));
    await until('two fake gits started', async () => (await logLines(dir)).length >= 2);
    assert.equal(slots.running, 2);
    assert.equal(slots.waiting, 4);
    await writeFile(join(dir, 'go'), '');
    const results = await Promise.all(runs);
    assert.ok(results.every((r) => r.code === 0));
    const lines = await logLines(dir);
    assert.equal(lines.filter((l) => l.startsWith('start')).length, 6);
    assert.ok(mostAtOnce(lines) <= 2, `at most two at once:\n${lines.join('\n')}`);
    assert.equal(slots.running, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the wait for a slot does not count against the time limit', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zv-gitcap-'));
  try {
    const git = await fakeGit(dir);
    const slots = new Semaphore(1);
    const base = { git, cwd: dir, mode: 'local' as const, allowFile: false, env: { FAKE_DIR: dir }, slots };
    const first = runGit({ ...base, args: ['fetch'], timeoutMs: 120_000 });
    await until('the first fake git started', async () => (await logLines(dir)).length >= 1);
    const queuedAt = Date.now();
    const second = runGit({ ...base, args: ['ls-remote'], timeoutMs: 2_000 });
    // The second run waits well past its own time limit (however slow the machine, never less).
    await until('twice the second run\'s time limit', () => Date.now() - queuedAt > 4_000 && slots.waiting === 1);
    await writeFile(join(dir, 'go'), '');
    assert.equal((await first).code, 0);
    assert.equal((await second).code, 0, 'the second run was not stopped for the time it waited');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a git binary that cannot be started gives its slot back', async () => {
  const slots = new Semaphore(1);
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      runGit({ git: '/nonexistent/git', args: ['status'], cwd: tmpdir(), timeoutMs: 60_000, mode: 'local', allowFile: false, slots }),
      (e: unknown) => (e as { code?: string }).code === 'GIT_ERROR',
    );
  }
  assert.equal(slots.running, 0);
});

/** Our git children now, from /proc (pid → command name). */
async function gitChildren(): Promise<number> {
  let n = 0;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid …
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    if (ppid === process.pid && comm === 'git') n++;
  }
  return n;
}

test('real git: twelve concurrent runs under the process-wide cap of 3 never have more than 3 git children', { skip: !existsSync('/proc/self/stat') }, async () => {
  setMaxGitProcesses(3);
  try {
    assert.equal(gitProcesses().max, 3);
    let most = 0;
    let seen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const n = await gitChildren();
        most = Math.max(most, n);
        seen += n;
        assert.ok(gitProcesses().running <= 3);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    // A git alias that runs a shell command keeps git alive while it sleeps: long enough that a
    // sampler slowed by a loaded machine (a /proc scan takes a while) still sees each round.
    const runs = Array.from({ length: 12 }, () => runGit({
      git: 'git', args: ['-c', 'alias.zvwait=!sleep 1.5', 'zvwait'], cwd: tmpdir(), timeoutMs: 120_000, mode: 'local', allowFile: false,
    }));
    await Promise.all(runs);
    sampling = false;
    await sampler;
    assert.ok(seen > 0, 'the sampler saw git running');
    assert.ok(most <= 3, `${most} git processes at once`);
    assert.deepEqual(gitProcesses(), { running: 0, waiting: 0, max: 3 });
  } finally {
    setMaxGitProcesses(DEFAULT_MAX_GIT_PROCESSES);
  }
});

test('the spawner thread and the calling thread give the same answers, failures and time limits', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zv-gitcap-'));
  try {
    const git = await fakeGit(dir);
    for (const inThread of [false, true]) {
      const slots = new Semaphore(1);
      const base = { cwd: dir, mode: 'local' as const, allowFile: false, slots, inThread, timeoutMs: 120_000 };
      const v = await runGit({ ...base, git: 'git', args: ['--version'] });
      assert.match(v.stdout, /^git version /, `inThread=${inThread}`);
      await assert.rejects(runGit({ ...base, git: 'git', args: ['rev-parse', '--verify', 'nope'] }),
        (e: unknown) => (e as { code?: string }).code === 'GIT_ERROR' && /rev-parse failed/.test((e as Error).message));
      assert.equal((await runGit({ ...base, git: 'git', args: ['rev-parse', '--verify', 'nope'], okCodes: [128] })).code, 128);
      // The fake git waits for a file that never comes: stopped at its time limit, and its slot comes back.
      await assert.rejects(runGit({ ...base, git, args: ['fetch'], env: { FAKE_DIR: dir }, timeoutMs: 300 }),
        (e: unknown) => (e as { code?: string }).code === 'GIT_TIMEOUT');
      await until('the killed git to give its slot back', () => slots.running === 0);
      await assert.rejects(runGit({ ...base, git: '/nonexistent/git', args: ['status'] }), (e: unknown) => (e as { code?: string }).code === 'GIT_ERROR');
      await until('the slot of a git that never started to come back', () => slots.running === 0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
