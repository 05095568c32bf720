// buildImage's error classes, with an engine that answers a recorded progress stream (no Docker
// needed): a step that fails is the Dockerfile's fault (FUNCTION_COMPILE_ERROR, not retried until
// the commit changes); a cached layer the engine lost mid-build (removed meanwhile by another
// build's or server's cleanup on the same engine, seen under load) is the engine's
// (RUNTIME_UNAVAILABLE: the next poll builds again).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { isZvError } from '../../errors/registry.js';
import { buildImage } from './build.js';

/** An engine whose build answers `events` (one JSON line each) and that has no image afterwards. */
function engine(events: Record<string, unknown>[]): Dockerode {
  return {
    buildImage: async () => Readable.from(events.map((e) => `${JSON.stringify(e)}\r\n`)),
    getImage: () => ({ inspect: async () => { throw Object.assign(new Error('no such image'), { statusCode: 404 }); } }),
  } as unknown as Dockerode;
}

async function build(events: Record<string, unknown>[]): Promise<unknown> {
  const dir = await mkdtemp(join(tmpdir(), 'zv-build-'));
  try {
    await writeFile(join(dir, 'Dockerfile'), 'FROM zv-busybox:test\nCOPY www /www\n');
    return await buildImage(engine(events), {
      tag: 'zerverless-fn:test', build: { dockerfile: 'Dockerfile', context: '.', contextHash: 'h', capabilities: [] },
      contextDir: dir, dockerfilePath: join(dir, 'Dockerfile'), contextFiles: ['Dockerfile'], timeoutMs: 60_000,
    }).then(() => 'built', (e: unknown) => e);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const steps = [{ stream: 'Step 1/2 : FROM zv-busybox:test\n' }, { stream: ' ---> 4f43d197e31a\n' }, { stream: 'Step 2/2 : COPY www /www\n' }];

test('a cached layer the engine lost mid-build is RUNTIME_UNAVAILABLE (retried), not the Dockerfile\'s fault', async () => {
  const lost = 'unable to find image "sha256:e8adb9514467b604b2491033a4784e91b1527fa16527bfd13f361458f82d75d1"';
  const e = await build([...steps, { errorDetail: { message: lost }, error: lost }]);
  assert.ok(isZvError(e, 'RUNTIME_UNAVAILABLE'), String(e));
  assert.match(e.message, /^Dockerfile: docker build failed: unable to find image "sha256:e8adb95/);
});

test('a failing step, or an image the Dockerfile names that is not there, stays FUNCTION_COMPILE_ERROR', async () => {
  for (const why of [
    "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
    'pull access denied for missing, repository does not exist or may require \'docker login\'',
    'unable to find image "missing:latest"',
  ]) {
    const e = await build([...steps, { errorDetail: { message: why }, error: why }]);
    assert.ok(isZvError(e, 'FUNCTION_COMPILE_ERROR'), `${why}: ${String(e)}`);
  }
});
