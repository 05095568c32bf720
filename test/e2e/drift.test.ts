// Drift repair through the real server's timer (PRODUCT.md §11): every --drift-interval what runs is
// compared with what was deployed and put back — a static blob deleted or overwritten, a docker
// container removed or stopped by hand — and each pass that repaired something is in the history.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { TestRepo } from '../support/repo.js';
import { startHarness, type Harness } from '../support/server.js';
import { dockerAvailable, ensureBaseImage, removeNetworksOf } from '../support/docker.js';
import { FsBlobStore } from '../../src/store/blobs/fs.js';

const hasDocker = await dockerAvailable();
if (!hasDocker && process.env.CI === 'true') throw new Error('CI=true but no Docker engine answers: the Docker tests must run in CI');
if (!hasDocker) console.log('# skipped: docker drift test (no Docker engine answers)');

interface History { syncs: { trigger: string; result: string; message: string }[] }

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const MANIFEST = (fns = '') => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: drift
spec:
  functions:
    - path: /lua
      runtime: lua
      code: |
        function handle(req) return "lua" end
${fns}  static:
    dir: site
`;

const DOCKER_FN = `    - path: /cgi-bin/hi
      runtime: docker
      dockerfile: ./svc/Dockerfile
      context: ./svc
`;

describe('drift repair on the timer', () => {
  let h: Harness;
  let repo: TestRepo;
  const docker = new Dockerode();
  const driftEntries = async (): Promise<History['syncs']> =>
    (await h.api<History>('GET', '/drift/syncs?namespace=drift')).body.syncs.filter((s) => s.trigger === 'drift');

  before(async () => {
    if (hasDocker) await ensureBaseImage();
    h = await startHarness({ driftIntervalMs: 300 });
    repo = await TestRepo.create({
      'zerverless.yaml': MANIFEST(hasDocker ? DOCKER_FN : ''),
      'site/index.html': '<h1>home</h1>',
      'site/logo.txt': 'the logo',
      'svc/Dockerfile': 'FROM zv-busybox:test\nCOPY www /www\nRUN chmod +x /www/cgi-bin/hi\nCMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]\n',
      'svc/www/cgi-bin/hi': '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nhi from docker"\n',
    });
    const st = await h.register('drift', 'drift', repo.url);
    assert.equal(st.status, 'synced', st.message);
  });
  after(async () => {
    await h.api('DELETE', '/drift?namespace=drift');
    await h.close();
    await repo.remove();
    if (hasDocker) await removeNetworksOf(['drift'], docker);
  });

  it('restores a static blob that was deleted, and one that was overwritten, and records the pass', async () => {
    const blobs = new FsBlobStore(join(h.dataDir, 'blobs'));
    await rm(blobs.path(sha256('<h1>home</h1>')));
    await writeFile(blobs.path(sha256('the logo')), 'tampered');
    const deadline = Date.now() + 60_000;
    let entries: History['syncs'] = [];
    while (Date.now() < deadline) {
      entries = (await driftEntries()).filter((e) => /static file/.test(e.message));
      if (entries.some((e) => /index\.html/.test(e.message)) && entries.some((e) => /logo\.txt/.test(e.message))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const all = entries.map((e) => e.message).join('\n');
    assert.match(all, /static file index\.html: .*repaired/);
    assert.match(all, /static file logo\.txt: .*repaired/);
    assert.ok(entries.every((e) => e.result === 'success'), all);
    assert.equal(await (await h.get('/static/drift/index.html')).text(), '<h1>home</h1>');
    assert.equal(await (await h.get('/static/drift/logo.txt')).text(), 'the logo');
    assert.equal((await h.api('GET', '/drift?namespace=drift')).body.status, 'synced');
  });

  it('starts again a docker container removed by hand', { skip: !hasDocker && 'no Docker engine' }, async () => {
    assert.equal(await (await h.get('/drift/cgi-bin/hi')).text(), 'hi from docker');
    const before = (await h.api('GET', '/drift?namespace=drift')).body.functions.find((f) => f.path === '/cgi-bin/hi')?.container;
    assert.ok(before);
    await docker.getContainer(before).remove({ force: true });
    const st = await h.waitFor('drift', (s) => {
      const c = s.functions.find((f) => f.path === '/cgi-bin/hi');
      return c?.status === 'ready' && c.container !== undefined && c.container !== before;
    }, 60_000, 'drift');
    assert.equal(st.status, 'synced');
    assert.equal(await (await h.get('/drift/cgi-bin/hi')).text(), 'hi from docker');
    // The pass writes its history entry once its repairs are done, a moment after the status shows
    // the new container. A pass that looks while the engine is removing it sees it stopped.
    const repaired = (e: { message: string }): boolean => /function \/cgi-bin\/hi: container (removed|stopped), repaired/.test(e.message);
    const deadline = Date.now() + 60_000;
    let entries = await driftEntries();
    while (!entries.some(repaired) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      entries = await driftEntries();
    }
    assert.ok(entries.some(repaired), JSON.stringify(entries));
  });
});
