// Docker functions end to end: a real repository whose Dockerfile builds FROM a locally imported
// busybox image, served through the gateway, updated under load, broken, removed, and adopted after
// a restart; tenants' containers kept apart (one network per namespace); images removed with their
// application. Skips (saying so) without a Docker engine, except in CI where it fails.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Dockerode from 'dockerode';
import { TestRepo } from '../support/repo.js';
import { errorCode, startHarness, type Harness } from '../support/server.js';
import { dockerAvailable, ensureBaseImage, networkIsolationNote, removeNetworksOf } from '../support/docker.js';
import { DockerRuntime } from '../../src/runtimes/docker/index.js';

const hasDocker = await dockerAvailable();
if (!hasDocker && process.env.CI === 'true') throw new Error('CI=true but no Docker engine answers: the Docker tests must run in CI');
if (!hasDocker) console.log('# skipped: Docker function tests (no Docker engine answers)');

const CGI = `#!/bin/sh
printf 'Status: 201 Created\\r\\n'
printf 'Content-Type: text/plain\\r\\n'
printf 'X-Echo-Method: %s\\r\\n' "$REQUEST_METHOD"
printf '\\r\\n'
printf 'version=%s method=%s uri=%s query=%s prefix=%s h=%s body=' "$VERSION" "$REQUEST_METHOD" "$REQUEST_URI" "$QUERY_STRING" "$HTTP_X_FORWARDED_PREFIX" "$HTTP_X_H"
head -c "\${CONTENT_LENGTH:-0}"
`;

const DOCKERFILE = (extra = '') => `FROM zv-busybox:test
COPY www /www
RUN chmod +x /www/cgi-bin/echo
${extra}CMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]
`;

const manifest = (fns: string) => `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: dock
spec:
  functions:
${fns}`;

const ECHO_FN = `    - path: /cgi-bin/echo
      runtime: docker
      dockerfile: ./svc/Dockerfile
      context: ./svc
      timeout: 10s
      env:
        VERSION: one
`;
const LUA_FN = `    - path: /lua
      runtime: lua
      code: |
        function handle(req) return "lua" end
`;

// By application and namespace: other test files may run an application of the same name.
async function ourContainers(docker: Dockerode, app = 'dock', namespace = app): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: ['zerverless.managed=true', `zerverless.app=${app}`, `zerverless.namespace=${namespace}`] } });
}

describe('docker functions', { skip: !hasDocker && 'no Docker engine' }, () => {
  let h: Harness;
  let repo: TestRepo;
  const docker = new Dockerode();
  const images = new Set<string>();
  const remember = (st: { functions: { image?: string }[] }) => st.functions.forEach((f) => f.image && images.add(f.image));

  before(async () => {
    await ensureBaseImage();
    h = await startHarness();
    repo = await TestRepo.create({
      'zerverless.yaml': manifest(ECHO_FN + LUA_FN),
      'svc/Dockerfile': DOCKERFILE(),
      'svc/www/cgi-bin/echo': CGI,
      'svc/www/index.html': 'v1',
      'svc/.dockerignore': 'secret.txt\n',
      'svc/secret.txt': 'not in the image',
    });
  });
  after(async () => {
    await h?.api('DELETE', '/dock');
    await h?.close();
    await repo?.remove();
    for (const c of await ourContainers(docker)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const tag of images) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
    await removeNetworksOf(['dock'], docker);
  });

  it('builds, runs and serves the container with method, headers, query, body and status intact', async () => {
    const st = await h.register('dock', 'dock', repo.url);
    assert.equal(st.status, 'synced', st.message);
    remember(st);
    const fn = st.functions.find((f) => f.path === '/cgi-bin/echo');
    assert.equal(fn?.status, 'ready');
    assert.match(fn?.image ?? '', /^zerverless-fn:/);
    assert.ok(fn?.container);
    const res = await h.get('/dock/cgi-bin/echo?a=1&b=2', { method: 'POST', headers: { 'x-h': 'hello' }, body: 'payload' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-echo-method'), 'POST');
    assert.equal(await res.text(), 'version=one method=POST uri=/cgi-bin/echo?a=1&b=2 query=a=1&b=2 prefix=/dock h=hello body=payload');
    const containers = await ourContainers(docker);
    assert.equal(containers.length, 1);
    const info = await docker.getContainer(containers[0]!.Id).inspect();
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.ok(info.HostConfig.SecurityOpt?.includes('no-new-privileges'));
    assert.equal(info.HostConfig.Memory, 128 * 1024 * 1024);
    const bindings = Object.values((info.HostConfig.PortBindings ?? {}) as Record<string, { HostIp: string }[]>);
    const binding = bindings[0]?.[0];
    assert.equal(binding?.HostIp, '127.0.0.1');
  });

  it('a change to the context switches with zero failed requests from 20 clients', async () => {
    let stop = false;
    const failures: string[] = [];
    const seen = new Set<string>();
    const client = async () => {
      while (!stop) {
        try {
          const res = await h.get('/dock/cgi-bin/echo');
          const body = await res.text();
          if (res.status !== 201) failures.push(`${res.status} ${body}`);
          else seen.add(body.split(' ')[0] ?? '');
        } catch (e) {
          failures.push(String(e));
        }
      }
    };
    const clients = Array.from({ length: 20 }, client);
    // Waits on what the clients saw, not on the clock (a loaded machine answers late); the deadlines only end a hang.
    for (const end = Date.now() + 60_000; !seen.has('version=one') && failures.length === 0 && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    await repo.commit({ 'zerverless.yaml': manifest(ECHO_FN.replace('VERSION: one', 'VERSION: two') + LUA_FN), 'svc/www/index.html': 'v2' });
    const st = await h.sync('dock');
    assert.equal(st.status, 'synced', st.message);
    remember(st);
    for (const end = Date.now() + 60_000; !seen.has('version=two') && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(clients);
    assert.deepEqual(failures, []);
    assert.ok(seen.has('version=two'), [...seen].join(','));
    // the old container drains and goes
    const deadline = Date.now() + 120_000;
    while ((await ourContainers(docker)).length > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal((await ourContainers(docker)).length, 1);
  });

  it('a broken Dockerfile fails the sync with the build log; the old container keeps serving', async () => {
    const before = (await ourContainers(docker))[0]?.Id;
    await repo.commit({ 'svc/Dockerfile': DOCKERFILE('RUN exit 3\n') });
    const st = await h.sync('dock');
    assert.equal(st.status, 'error');
    assert.match(st.message, /FUNCTION_COMPILE_ERROR/);
    assert.match(st.message, /exit 3|returned a non-zero code/);
    const fn = st.functions.find((f) => f.path === '/cgi-bin/echo');
    assert.ok(fn?.buildLog && fn.buildLog.length > 0, 'the build log is in the status');
    assert.equal((await h.get('/dock/cgi-bin/echo')).status, 201);
    assert.equal((await ourContainers(docker))[0]?.Id, before);
  });

  it('a container that is down answers 503 with the error shape, not a hang', async () => {
    const [c] = await ourContainers(docker);
    assert.ok(c);
    await docker.getContainer(c.Id).stop({ t: 1 });
    try {
      const res = await h.get('/dock/cgi-bin/echo');
      assert.equal(res.status, 503);
      assert.equal(await errorCode(res), 'FUNCTION_UNAVAILABLE');
    } finally {
      await docker.getContainer(c.Id).start().catch(() => undefined);
    }
    const deadline = Date.now() + 120_000;
    let status = 0;
    while (status !== 201 && Date.now() < deadline) {
      status = (await h.get('/dock/cgi-bin/echo')).status;
      if (status !== 201) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 201, 'it answers again once the container is back');
  });

  it('a restart adopts the running container instead of starting another', async () => {
    await repo.commit({ 'svc/Dockerfile': DOCKERFILE() });
    assert.equal((await h.sync('dock')).status, 'synced');
    const before = (await ourContainers(docker)).map((c) => c.Id);
    assert.equal(before.length, 1);
    await h.restart();
    const res = await h.get('/dock/cgi-bin/echo');
    assert.equal(res.status, 201);
    assert.deepEqual((await ourContainers(docker)).map((c) => c.Id), before);
  });

  it('removing the function answers 404 and removes its container', async () => {
    await repo.commit({ 'zerverless.yaml': manifest(LUA_FN) });
    assert.equal((await h.sync('dock')).status, 'synced');
    const res = await h.get('/dock/cgi-bin/echo');
    assert.equal(res.status, 404);
    assert.equal(await errorCode(res), 'NOT_FOUND');
    const deadline = Date.now() + 120_000;
    while ((await ourContainers(docker)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal((await ourContainers(docker)).length, 0);
    assert.equal(await (await h.get('/dock/lua')).text(), 'lua');
  });
});

// A CGI that reads http://$QUERY_STRING/ from inside its container (busybox wget -T crashes: timeout).
const PROBE = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
if out=$(timeout 6 wget -qO- "http://$QUERY_STRING/" 2>&1); then echo "reached:$out"; else echo "blocked:$?"; fi
`;
const tenantRepo = (name: string, index: string) => TestRepo.create({
  'zerverless.yaml': `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: ${name}
spec:
  functions:
    - path: /
      runtime: docker
      dockerfile: ./svc/Dockerfile
      context: ./svc
      timeout: 30s
`,
  'svc/Dockerfile': DOCKERFILE().replace('/www/cgi-bin/echo', '/www/cgi-bin/probe'),
  'svc/www/cgi-bin/probe': PROBE,
  'svc/www/index.html': index,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const imageExists = (docker: Dockerode, tag: string) => docker.getImage(tag).inspect().then(() => true, (e: { statusCode?: number }) => {
  if (e.statusCode === 404) return false;
  throw e;
});

describe('docker functions: tenants apart', { skip: !hasDocker && 'no Docker engine' }, () => {
  let h: Harness;
  const repos: TestRepo[] = [];
  const docker = new Dockerode();
  const images = new Set<string>();

  before(async () => {
    await ensureBaseImage();
    h = await startHarness();
    const salt = String(Date.now());
    repos.push(await tenantRepo('left', `left ${salt}`), await tenantRepo('right', `right ${salt}`));
  });
  after(async () => {
    await h?.api('DELETE', '/left?namespace=tenant-a');
    await h?.api('DELETE', '/right?namespace=tenant-b');
    await h?.close();
    for (const r of repos) await r.remove();
    for (const [app, ns] of [['left', 'tenant-a'], ['right', 'tenant-b']] as const) for (const c of await ourContainers(docker, app, ns)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const tag of images) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
    await removeNetworksOf(['tenant-a', 'tenant-b'], docker);
  });

  it("a container of one namespace cannot read another namespace's container; the gateway reaches both", async () => {
    const a = await h.register('left', 'tenant-a', repos[0]!.url);
    const b = await h.register('right', 'tenant-b', repos[1]!.url);
    for (const st of [a, b]) {
      assert.equal(st.status, 'synced', st.message);
      st.functions.forEach((f) => f.image && images.add(f.image));
    }
    const inspect = async (st: typeof a) => docker.getContainer(st.functions[0]?.container ?? '').inspect();
    const [ca, cb] = await Promise.all([inspect(a), inspect(b)]);
    assert.notEqual(ca.HostConfig.NetworkMode, cb.HostConfig.NetworkMode, 'each namespace has its own network');
    const ip = (c: Dockerode.ContainerInspectInfo) => Object.values(c.NetworkSettings.Networks)[0]?.IPAddress ?? '';
    const probe = async (target: string) => {
      const res = await h.get(`/tenant-a/cgi-bin/probe?${target}`);
      assert.equal(res.status, 200);
      return (await res.text()).trim();
    };
    // The probe works: tenant-a's container reads itself.
    assert.match(await probe(`${ip(ca)}:8080`), /^reached:left /);
    const note = await networkIsolationNote();
    if (note) console.log(`# note: ${note}`);
    const crossed = await probe(`${ip(cb)}:8080`);
    assert.match(crossed, /^blocked:/, `tenant-a's container read tenant-b's at its bridge address${note ? ` (${note})` : ''}`);
    // The gateway reaches both, through their loopback ports.
    assert.match(await (await h.get('/tenant-a/')).text(), /^left /);
    assert.match(await (await h.get('/tenant-b/')).text(), /^right /);
  });
});

describe('docker functions: clean removal', { skip: !hasDocker && 'no Docker engine' }, () => {
  let h: Harness;
  let repo: TestRepo;
  const docker = new Dockerode();
  const images = new Set<string>();

  before(async () => {
    await ensureBaseImage();
    h = await startHarness();
    repo = await tenantRepo('gone', `gone ${Date.now()}`);
  });
  after(async () => {
    await h?.api('DELETE', '/gone?namespace=tenant-c');
    await h?.close();
    await repo?.remove();
    for (const c of await ourContainers(docker, 'gone', 'tenant-c')) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const tag of images) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
    await removeNetworksOf(['tenant-c'], docker);
  });

  it('an update and then the deletion of the application leave no image, container or network behind', async () => {
    const st = await h.register('gone', 'tenant-c', repo.url);
    assert.equal(st.status, 'synced', st.message);
    const first = st.functions[0]?.image ?? '';
    images.add(first);
    const info = await docker.getContainer(st.functions[0]?.container ?? '').inspect();
    const instance = info.Config.Labels['zerverless.instance'] ?? '';
    const network = info.HostConfig.NetworkMode ?? '';
    assert.ok(instance && network);
    // The server's own runtime keeps unused images for its grace (10 min); the same gc with none:
    const gc = new DockerRuntime({ docker, instance, imageGraceMs: 0 });
    try {
      // An update replaces the image: once the old container is gone, the old image goes.
      await repo.commit({ 'svc/www/index.html': `gone again ${Date.now()}` });
      const st2 = await h.sync('gone', 'tenant-c');
      assert.equal(st2.status, 'synced', st2.message);
      const second = st2.functions[0]?.image ?? '';
      images.add(second);
      assert.notEqual(second, first);
      let deadline = Date.now() + 60_000;
      while ((await ourContainers(docker, 'gone', 'tenant-c')).length > 1 && Date.now() < deadline) await sleep(200);
      assert.equal((await ourContainers(docker, 'gone', 'tenant-c')).length, 1, 'the old container is drained and removed');
      assert.ok(await imageExists(docker, first), 'the old image is kept for the grace');
      await gc.pruneImages(new Set());
      assert.equal(await imageExists(docker, first), false, 'the replaced image is removed');
      assert.ok(await imageExists(docker, second), 'the image in use is kept');

      // Deleting the application removes its container, then (after the grace) its image and network.
      assert.equal((await h.api('DELETE', '/gone?namespace=tenant-c')).status, 204);
      deadline = Date.now() + 60_000;
      while ((await ourContainers(docker, 'gone', 'tenant-c')).length > 0 && Date.now() < deadline) await sleep(200);
      assert.equal((await ourContainers(docker, 'gone', 'tenant-c')).length, 0, 'the container is removed');
      await gc.gc([]);
      assert.equal(await imageExists(docker, second), false, "the deleted application's image is removed");
      await assert.rejects(docker.getNetwork(network).inspect(), (e: { statusCode?: number }) => e.statusCode === 404, 'its network is removed');
    } finally {
      await gc.close();
    }
  });
});
