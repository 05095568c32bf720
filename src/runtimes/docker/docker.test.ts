// The docker runtime against a real engine: builds from a local base image (zv-busybox:test, no
// registry), serves through busybox httpd on $PORT, limits, restarts, adoption after a platform
// restart, blue/green loads, build and start failures, orphan and image cleanup, one network per
// namespace (isolated from the others, no traffic between neighbours), failed builds' layers.
// Skips without an engine on a laptop; fails under CI=true (test/support/docker.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Dockerode from 'dockerode';
import { isZvError } from '../../errors/registry.js';
import type { DockerBuild } from '../../core/desired.js';
import type { FunctionSource, LoadedFunction, LogStream } from '../types.js';
import { BASE_IMAGE, ensureBaseImage, networkIsolationNote, requireDocker } from '../../../test/support/docker.js';
import { DockerRuntime, imageTag, LABELS } from './index.js';
import { listContext } from '../../sources/tree/index.js';
import { FsSnapshot } from '../../sources/fs-snapshot.js';
import type { DockerRuntimeOptions } from './index.js';

const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const statusOf = (e: unknown): number | undefined => (e as { statusCode?: number } | null)?.statusCode;

/** Waits for `pred`; the deadline is generous (a loaded machine is slow), it only ends a wait that will never end. */
async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const CGI = (body: string): { text: string; mode: number } => ({ text: `#!/bin/sh\n${body}\n`, mode: 0o755 });
const HEADERS = "printf 'Content-Type: text/plain\\r\\n\\r\\n'";

const MAIN: Record<string, string | { text: string; mode: number }> = {
  Dockerfile: [
    `FROM ${BASE_IMAGE}`,
    'COPY . /ctx',
    'COPY www /www',
    // sh stays PID 1 (so a crash of httpd ends the container) and exits at once on SIGTERM.
    'CMD trap \'kill $pid; exit 0\' TERM; echo "started on $PORT"; httpd -f -p "$PORT" -h /www & pid=$!; wait $pid; echo "httpd exited"; exit 1',
  ].join('\n'),
  '.dockerignore': 'secret.txt\nlogs\n!logs/keep.log\n',
  'secret.txt': 'do not ship\n',
  'kept.txt': 'ship me\n',
  'logs/a.log': 'ignored\n',
  'logs/keep.log': 'kept by an exception\n',
  'www/index.html': 'hello from docker\n',
  'www/cgi-bin/echo': CGI([
    "printf 'Status: 201 Created\\r\\nContent-Type: text/plain\\r\\nX-Echo: yes\\r\\n\\r\\n'",
    'echo "method=$REQUEST_METHOD"',
    'echo "query=$QUERY_STRING"',
    'echo "uri=$REQUEST_URI"',
    'echo "prefix=$HTTP_X_FORWARDED_PREFIX"',
    'echo "custom=$HTTP_X_CUSTOM"',
    'echo "greeting=$GREETING port=$PORT"',
    'if [ -n "$CONTENT_LENGTH" ]; then echo "body=$(busybox head -c "$CONTENT_LENGTH")"; fi',
  ].join('\n')),
  'www/cgi-bin/files': CGI(`${HEADERS}\ncd /ctx && busybox find . | busybox sort`),
  'www/cgi-bin/slow': CGI(`${HEADERS}\nsleep 3\necho late`),
  'www/cgi-bin/crash': CGI(`${HEADERS}\necho bye\nkill -9 -1`),
  // Reads http://$QUERY_STRING/ from inside the container (busybox wget -T crashes: timeout instead).
  'www/cgi-bin/probe': CGI(`${HEADERS}\nif out=$(timeout 6 wget -qO- "http://$QUERY_STRING/" 2>&1); then echo "reached:$out"; else echo "blocked:$?"; fi`),
};

// Awaited before any suite is declared: node:test starts running the suites declared so far while
// the module waits, and a suite declared after that await was silently never run.
const noDocker = await requireDocker();

describe('docker runtime: availability', () => {
  it('explains that no engine answers', async () => {
    const rt = new DockerRuntime({ docker: new Dockerode({ socketPath: '/nonexistent/docker.sock' }) });
    const a = await rt.available();
    assert.equal(a.ok, false);
    assert.match(a.ok ? '' : a.reason, /no Docker engine answers at \/nonexistent\/docker\.sock/);
    await rt.close();
  });
});

describe('docker runtime', { skip: noDocker, timeout: 180_000 }, () => {
  const docker = new Dockerode();
  const instance = `test-${randomBytes(4).toString('hex')}`;
  const salt = randomBytes(8).toString('hex');
  const runtimes: DockerRuntime[] = [];
  const dirs: string[] = [];
  const tags = new Set<string>();
  const foreign: string[] = [];
  const logs: { stream: LogStream; line: string }[] = [];
  const buildLog: string[] = [];

  const runtime = (o: DockerRuntimeOptions = {}): DockerRuntime => {
    const r = new DockerRuntime({ docker, instance, readyTimeoutMs: 15_000, imageGraceMs: 0, ...o });
    runtimes.push(r);
    return r;
  };

  type Fixture = { dir: string; ctx: string; build: DockerBuild; files: string[] };
  /** Files on disk and what the source reader would hand the runtime: the context's entries (.dockerignore applied). */
  async function fixture(files: Record<string, string | { text: string; mode: number }>, contextSub = ''): Promise<Fixture> {
    const dir = await mkdtemp(join(tmpdir(), 'zv-docker-'));
    dirs.push(dir);
    const h = createHash('sha256').update(salt);
    for (const [name, f] of Object.entries(files)) {
      const p = join(dir, name);
      await mkdir(dirname(p), { recursive: true });
      const body = typeof f === 'string' ? f : f.text;
      await writeFile(p, body, { mode: typeof f === 'string' ? 0o644 : f.mode });
      h.update(`${name}\0${body}\0`);
    }
    const build: DockerBuild = { dockerfile: 'Dockerfile', context: contextSub || '.', contextHash: h.digest('hex'), capabilities: [] };
    tags.add(imageTag(build));
    const ctx = join(dir, contextSub);
    const listed = (await listContext(new FsSnapshot(dir), contextSub, { dockerfile: 'Dockerfile' })).map((e) => e.path);
    return { dir, ctx, build, files: listed };
  }

  const source = (fx: Fixture, extra: Partial<FunctionSource> = {}, restore = false, namespace = 't'): FunctionSource => ({
    id: `t/app/fn@${fx.build.contextHash.slice(0, 8)}`, runtime: 'docker', code: '', filename: 'Dockerfile',
    timeoutMs: 3000, memoryMb: 64, env: { GREETING: 'hey' },
    docker: {
      build: fx.build, port: 8080, owner: { namespace, app: 'app', path: '/fn' },
      ...(restore ? {} : { contextDir: fx.ctx, dockerfilePath: join(fx.dir, 'Dockerfile'), contextFiles: fx.files }),
      buildLog: (line) => buildLog.push(line),
    },
    ...extra,
  });
  const onLog = (stream: LogStream, line: string): void => {
    logs.push({ stream, line });
  };
  const get = async (fn: LoadedFunction, path = '/'): Promise<Response> => {
    const up = fn.upstream?.();
    assert.ok(up, 'the function has an upstream');
    return fetch(`http://${up.host}:${up.port}${path}`);
  };
  const exists = async (id: string): Promise<boolean> => docker.getContainer(id).inspect().then(() => true, (e) => {
    if (statusOf(e) === 404) return false;
    throw e;
  });
  const ours = async (): Promise<Dockerode.ContainerInfo[]> =>
    docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });

  let main: Fixture;
  let rt: DockerRuntime;
  let fn: LoadedFunction;

  before(async () => {
    await ensureBaseImage(docker);
    main = await fixture(MAIN);
  });

  after(async () => {
    for (const r of runtimes) await r.close();
    for (const c of await ours()) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    for (const id of foreign) await docker.getContainer(id).remove({ force: true }).catch(() => {});
    for (const t of tags) await docker.getImage(t).remove({ force: true }).catch(() => {});
    for (const n of await docker.listNetworks({ filters: { label: [`${LABELS.instance}=${instance}`] } })) await docker.getNetwork(n.Id).remove().catch(() => {});
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('builds the image from the context and serves HTTP on a loopback port', async () => {
    rt = runtime();
    fn = await rt.load(source(main), onLog);
    assert.equal(rt.buildCount, 1);
    assert.ok(buildLog.some((l) => /Step 1\/\d+ : FROM zv-busybox:test/.test(l)), buildLog.join('\n'));
    const res = await get(fn);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello from docker\n');
    const d = fn.describe?.() ?? {};
    assert.equal(d.image, imageTag(main.build));
    assert.match(d.imageId ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.match(d.container ?? '', /^[0-9a-f]{64}$/);
    await until('the start line in the log', () => logs.some((l) => l.line === 'started on 8080'));
  });

  it('invoke forwards method, path, query, headers and body and returns status and headers', async () => {
    const r = await fn.invoke({ method: 'POST', path: '/cgi-bin/echo/sub', query: { x: 'y' }, headers: { 'x-custom': 'v1' }, body: 'hello body' });
    assert.equal(r.status, 201);
    assert.equal(r.headers['x-echo'], 'yes');
    const body = text(r.body);
    for (const s of ['method=POST', 'query=x=y', 'uri=/cgi-bin/echo/sub?x=y', 'prefix=/t', 'custom=v1', 'greeting=hey port=8080', 'body=hello body']) {
      assert.ok(body.includes(s), `${s} in\n${body}`);
    }
  });

  it('honours .dockerignore (the Dockerfile and .dockerignore are always sent)', async () => {
    const files = text((await fn.invoke({ method: 'GET', path: '/cgi-bin/files', query: {}, headers: {}, body: '' })).body).split('\n');
    for (const f of ['./kept.txt', './logs/keep.log', './Dockerfile', './.dockerignore', './www/index.html']) assert.ok(files.includes(f), `${f} in ${files.join(' ')}`);
    for (const f of ['./secret.txt', './logs/a.log']) assert.ok(!files.includes(f), `${f} not in the image`);
  });

  it('runs the container with limits, no privileges and a loopback-only port', async () => {
    const info = await docker.getContainer(fn.describe?.().container ?? '').inspect();
    const hc = info.HostConfig;
    assert.equal(hc.Memory, 64 * 1024 * 1024);
    assert.equal(hc.MemorySwap, 64 * 1024 * 1024);
    assert.equal(hc.NanoCpus, 1e9);
    assert.equal(hc.PidsLimit, 256);
    assert.deepEqual(hc.CapDrop, ['ALL']);
    assert.ok(hc.SecurityOpt?.includes('no-new-privileges'));
    assert.equal(hc.RestartPolicy?.Name, 'unless-stopped');
    const bindings = info.NetworkSettings.Ports['8080/tcp'] ?? [];
    assert.ok(bindings.length > 0 && bindings.every((b) => b.HostIp === '127.0.0.1'), JSON.stringify(bindings));
    assert.ok(info.Config.Env.includes('PORT=8080') && info.Config.Env.includes('GREETING=hey'));
    const l = info.Config.Labels;
    assert.equal(l[LABELS.managed], 'true');
    assert.equal(l[LABELS.namespace], 't');
    assert.equal(l[LABELS.app], 'app');
    assert.equal(l[LABELS.path], '/fn');
    assert.equal(l[LABELS.image], imageTag(main.build));
    assert.match(l[LABELS.fnhash] ?? '', /^[0-9a-f]{64}$/);
    assert.match(info.Name, /^\/zv-t-app-[0-9a-f]{10}-[0-9a-f]{6}$/);
  });

  it('puts each namespace on its own network: no container reaches another namespace or a neighbour; the host reaches all', async () => {
    const other = await rt.load(source(main, { id: 'u/app/fn@other' }, false, 'u'), onLog);
    const neighbour = await rt.load(source(main, { id: 't/app/fn@neighbour' }), onLog);
    try {
      const inspect = (f: LoadedFunction): Promise<Dockerode.ContainerInspectInfo> => docker.getContainer(f.describe?.().container ?? '').inspect();
      const [mine, theirs, next] = await Promise.all([inspect(fn), inspect(other), inspect(neighbour)]);
      assert.equal(mine.HostConfig.NetworkMode, `zv-${instance}-t`);
      assert.equal(next.HostConfig.NetworkMode, `zv-${instance}-t`);
      assert.equal(theirs.HostConfig.NetworkMode, `zv-${instance}-u`);
      const net = await docker.getNetwork(`zv-${instance}-t`).inspect();
      assert.equal(net.Driver, 'bridge');
      assert.equal(net.Labels?.[LABELS.managed], 'true');
      assert.equal(net.Labels?.[LABELS.instance], instance);
      assert.equal(net.Labels?.[LABELS.namespace], 't');
      assert.equal(net.Options?.['com.docker.network.bridge.enable_icc'], 'false');
      const ip = (i: Dockerode.ContainerInspectInfo): string => Object.values(i.NetworkSettings.Networks)[0]?.IPAddress ?? '';
      const through = async (target: string): Promise<string> => {
        const up = fn.upstream?.();
        assert.ok(up);
        return (await (await fetch(`http://${up.host}:${up.port}/cgi-bin/probe?${target}`)).text()).trim();
      };
      // The probe works: the container reads itself.
      assert.equal(await through(`${ip(mine)}:8080`), 'reached:hello from docker');
      const note = await networkIsolationNote();
      const crossed = await through(`${ip(theirs)}:8080`);
      assert.match(crossed, /^blocked:/, `a container of namespace t read namespace u's container${note ? ` (${note})` : ''}`);
      // Nor through the host's side of its bridge at the other's published port (published on loopback only).
      const gw = Object.values(mine.NetworkSettings.Networks)[0]?.Gateway ?? '';
      const otherPort = other.upstream?.()?.port;
      assert.match(await through(`${gw}:${otherPort}`), /^blocked:/, 'the published port is not reachable from a container');
      // Neighbours in one namespace do not talk either (enable_icc=false).
      assert.match(await through(`${ip(next)}:8080`), /^blocked:/, `a container read its neighbour in the same namespace${note ? ` (${note})` : ''}`);
      if (note) console.log(`# note: ${note}`);
      // The host (the gateway) reaches every one of them on its loopback port.
      for (const f of [fn, other, neighbour]) assert.equal((await get(f)).status, 200);
    } finally {
      await other.dispose();
      await neighbour.dispose();
    }
    await rt.gc([fn]);
    await assert.rejects(docker.getNetwork(`zv-${instance}-u`).inspect(), (e) => statusOf(e) === 404, 'the unused network is removed');
    await docker.getNetwork(`zv-${instance}-t`).inspect();
  });

  it('a second load of the same content reuses the image and runs a second container (blue/green)', async () => {
    // A timeout under the slow CGI's 3 s, yet long enough for a loaded machine to answer a plain GET.
    const fn2 = await rt.load(source(main, { timeoutMs: 2000 }), onLog);
    assert.equal(rt.buildCount, 1, 'no second build');
    assert.equal(fn2.describe?.().imageId, fn.describe?.().imageId);
    const id2 = fn2.describe?.().container ?? '';
    assert.notEqual(id2, fn.describe?.().container);
    assert.equal((await get(fn2)).status, 200);
    await assert.rejects(fn2.invoke({ method: 'GET', path: '/cgi-bin/slow', query: {}, headers: {}, body: '' }), (e) => isZvError(e, 'FUNCTION_TIMEOUT'));
    await fn2.dispose();
    assert.equal(await exists(id2), false, 'dispose removed the container');
    assert.equal(fn2.upstream?.(), null);
    await assert.rejects(fn2.invoke({ method: 'GET', path: '/', query: {}, headers: {}, body: '' }), (e) => isZvError(e, 'FUNCTION_UNAVAILABLE'));
    assert.equal((await get(fn)).status, 200, 'the first container still serves');
  });

  it('upstream is null while the container is stopped and comes back when it runs again', async () => {
    const c = docker.getContainer(fn.describe?.().container ?? '');
    await c.stop({ t: 1 });
    await until('upstream() to be null', () => fn.upstream?.() === null);
    await assert.rejects(fn.invoke({ method: 'GET', path: '/', query: {}, headers: {}, body: '' }), (e) => isZvError(e, 'FUNCTION_UNAVAILABLE'));
    await c.start();
    await until('upstream() to be back', () => fn.upstream?.() != null);
    assert.equal((await get(fn)).status, 200);
  });

  it('Docker restarts a crashed container; the function follows it and its logs', async () => {
    const id = fn.describe?.().container ?? '';
    const before = logs.filter((l) => l.line === 'started on 8080').length;
    await fn.invoke({ method: 'GET', path: '/cgi-bin/crash', query: {}, headers: {}, body: '' }).catch(() => undefined);
    await until('a restart', async () => (await docker.getContainer(id).inspect()).RestartCount >= 1);
    await until('upstream() after the restart', () => fn.upstream?.() != null);
    assert.equal((await get(fn)).status, 200);
    await until('the logs of both runs', () => logs.some((l) => l.line === 'httpd exited') && logs.filter((l) => l.line === 'started on 8080').length > before)
      .catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(logs)}`));
  });

  it('a restarted platform adopts the running container instead of starting another', async () => {
    const id = fn.describe?.().container ?? '';
    await rt.close();
    const rt2 = runtime();
    // A restore: no build context, the image built before is used.
    const adopted = await rt2.load(source(main, {}, true), onLog);
    assert.equal(adopted.describe?.().container, id);
    assert.equal(rt2.buildCount, 0);
    const hash = (await docker.getContainer(id).inspect()).Config.Labels[LABELS.fnhash];
    const same = await docker.listContainers({ all: true, filters: { label: [`${LABELS.fnhash}=${hash}`] } });
    assert.equal(same.length, 1, 'no duplicate container');
    assert.equal((await get(adopted)).status, 200);
    rt = rt2;
    fn = adopted;
  });

  it('adds the capabilities the manifest asks for; an unknown one fails the load', async () => {
    const withCaps = (capabilities: string[]): FunctionSource => source({ ...main, build: { ...main.build, capabilities } });
    const f = await rt.load(withCaps(['NET_BIND_SERVICE']), onLog);
    const info = await docker.getContainer(f.describe?.().container ?? '').inspect();
    assert.deepEqual(info.HostConfig.CapAdd, ['NET_BIND_SERVICE']);
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    await f.dispose();
    await assert.rejects(rt.load(withCaps(['NOT_A_CAP']), onLog), (e) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /unknown capability/.test(e.message));
    assert.equal(rt.buildCount, 0);
  });

  it('a restore whose image is gone fails with RUNTIME_UNAVAILABLE', async () => {
    const gone = await fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nCMD sleep 1\n`, 'x.txt': 'never built' });
    await assert.rejects(rt.load(source(gone, {}, true), onLog), (e) => isZvError(e, 'RUNTIME_UNAVAILABLE') && /no longer in the Docker engine/.test(e.message));
  });

  it('a broken Dockerfile fails the load with FUNCTION_COMPILE_ERROR and the build log', async () => {
    const broken = await fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nRUN echo building-now && exit 3\n` });
    buildLog.length = 0;
    await assert.rejects(rt.load(source(broken), onLog), (e) => {
      assert.ok(isZvError(e, 'FUNCTION_COMPILE_ERROR'), String(e));
      assert.match(e.message, /^Dockerfile: docker build failed: /);
      assert.match(e.message, /returned a non-zero code: 3/);
      assert.match(e.message, /Step 2\/\d+ : RUN echo building-now/);
      return true;
    });
    assert.ok(buildLog.includes('building-now'), buildLog.join('\n'));
    const syntax = await fixture({ Dockerfile: `FROMM ${BASE_IMAGE}\n` });
    await assert.rejects(rt.load(source(syntax), onLog), (e) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /fromm/i.test(e.message));
    for (const t of [imageTag(broken.build), imageTag(syntax.build)]) {
      await assert.rejects(docker.getImage(t).inspect(), (e) => statusOf(e) === 404);
    }
  });

  it('a build over its time limit is aborted and fails the load', async () => {
    const slow = await fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nRUN echo slow-build && sleep 30\n` });
    const quick = runtime({ buildTimeoutMs: 1500 });
    // The error names the limit: the build (sleep 30) was aborted, not waited out.
    await assert.rejects(quick.load(source(slow), onLog), (e) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /over the time limit of 2 s/.test(e.message));
    await quick.close();
  });

  it('a container that exits before answering fails the load with its last log lines', async () => {
    const crash = await fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nCMD echo crashing-now; exit 3\n` });
    await assert.rejects(rt.load(source(crash), onLog), (e) => {
      assert.ok(isZvError(e, 'FUNCTION_COMPILE_ERROR'), String(e));
      assert.match(e.message, /exited/);
      assert.match(e.message, /crashing-now/);
      return true;
    });
    const left = (await ours()).filter((c) => c.Labels[LABELS.image] === imageTag(crash.build));
    assert.deepEqual(left, [], 'the failed container is removed');
  });

  // Images written for the original Zerverless listen on the port they EXPOSE (often 80), not $PORT.
  it('without a port, uses the single port the image EXPOSEs (EXPOSE 80, httpd -p 80)', async () => {
    const fx = await fixture({
      Dockerfile: `FROM ${BASE_IMAGE}\nCOPY www /www\nEXPOSE 80\nCMD trap 'exit 0' TERM; echo "PORT=$PORT"; httpd -f -p 80 -h /www & wait\n`,
      'www/index.html': 'served on 80\n',
    });
    const base = source(fx);
    const f = await rt.load({ ...base, docker: { ...base.docker!, port: undefined } }, onLog);
    try {
      assert.equal(await (await get(f)).text(), 'served on 80\n');
      const info = await docker.getContainer(f.describe?.().container ?? '').inspect();
      assert.ok(info.Config.Env.includes('PORT=80'), info.Config.Env.join(' '));
      assert.ok(info.NetworkSettings.Ports['80/tcp']?.length, JSON.stringify(info.NetworkSettings.Ports));
    } finally {
      await f.dispose();
    }
  });

  it('without a port, refuses an image that EXPOSEs several, naming the function and the ports', async () => {
    const fx = await fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nEXPOSE 81 80 53/udp\nCMD httpd -f -p 80\n` });
    const base = source(fx);
    await assert.rejects(rt.load({ ...base, docker: { ...base.docker!, port: undefined } }, onLog), (e: unknown) =>
      isZvError(e, 'MANIFEST_INVALID') && e.message.includes(base.id) && e.message.includes('several ports (80, 81)'));
  });

  // The runtime lists nothing itself: it sends exactly the entries it is handed (the source reader's
  // list, which the content tag was hashed from), and refuses to build without a list.
  it('sends exactly the context entries it is handed, and nothing without a list', async () => {
    const fx = await fixture({
      Dockerfile: `FROM ${BASE_IMAGE}\nCOPY . /ctx\nCMD trap 'exit 0' TERM; httpd -f -p "$PORT" -h /ctx/www & wait\n`,
      'www/cgi-bin/files': CGI(`${HEADERS}\ncd /ctx && busybox find . | busybox sort`),
      'listed.txt': 'sent\n',
      'unlisted.txt': 'not sent\n',
      'sub/unlisted.txt': 'not sent\n',
    });
    assert.ok(fx.files.includes('unlisted.txt'), 'the reader would list it');
    const files = fx.files.filter((p) => !p.includes('unlisted') && p !== 'sub');
    const base = source(fx);
    const f = await rt.load({ ...base, docker: { ...base.docker!, contextFiles: files } }, onLog);
    try {
      const r = await f.invoke({ method: 'GET', path: '/cgi-bin/files', query: {}, headers: {}, body: '' });
      assert.deepEqual(text(r.body).trim().split('\n'), ['.', './Dockerfile', './listed.txt', './www', './www/cgi-bin', './www/cgi-bin/files']);
    } finally {
      await f.dispose();
    }
    const other = await fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nCMD true\n` });
    const o = source(other);
    await assert.rejects(rt.load({ ...o, docker: { ...o.docker!, contextFiles: undefined } }, onLog),
      (e: unknown) => isZvError(e, 'INTERNAL') && /without the list of its entries/.test(e.message));
    await assert.rejects(rt.load({ ...o, docker: { ...o.docker!, contextFiles: ['Dockerfile', '../secret'] } }, onLog),
      (e: unknown) => /"\.\.\/secret" is not a path inside the context/.test(e instanceof Error ? e.message : String(e)));
  });

  let outside: Fixture;
  it('sends a Dockerfile that lives outside the context under a generated name', async () => {
    outside = await fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nCOPY www /www\nCMD trap 'exit 0' TERM; httpd -f -p "$PORT" -h /www & wait\n`, 'ctx/www/index.html': 'outside\n' }, 'ctx');
    const f = await rt.load(source(outside), onLog);
    assert.equal(await (await get(f)).text(), 'outside\n');
    await f.dispose();
  });

  it('removeOrphans removes only our containers that nobody holds', async () => {
    const orphan = await docker.createContainer({ Image: BASE_IMAGE, Cmd: ['sleep', '300'], Labels: { [LABELS.managed]: 'true', [LABELS.instance]: instance } });
    const stranger = await docker.createContainer({ Image: BASE_IMAGE, Cmd: ['sleep', '300'], Labels: { purpose: 'not ours' } });
    foreign.push(stranger.id);
    const n = await rt.removeOrphans(new Set());
    assert.ok(n >= 1);
    assert.equal(await exists(orphan.id), false, 'the orphan is removed');
    assert.equal(await exists(stranger.id), true, 'a container without our label is never touched');
    assert.equal(await exists(fn.describe?.().container ?? ''), true, 'a held container is kept');
  });

  it('pruneImages removes unused function images and keeps the listed ones', async () => {
    const tag = imageTag(outside.build);
    await docker.getImage(tag).inspect();
    // Keep every other function image on the engine: other test files may be using theirs.
    const all = (await docker.listImages()).flatMap((i) => i.RepoTags ?? []).filter((t) => t.startsWith('zerverless-fn:') && t !== tag);
    const n = await rt.pruneImages(new Set(all.filter((t) => t !== imageTag(main.build))));
    assert.ok(n >= 1);
    await assert.rejects(docker.getImage(tag).inspect(), (e) => statusOf(e) === 404);
    await docker.getImage(imageTag(main.build)).inspect();
  });

  it('a failed build leaves none of its layers behind', async () => {
    const broken = await fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nCOPY salt.txt /salt\nRUN echo layer > /layer\nRUN exit 4\n`, 'salt.txt': salt });
    buildLog.length = 0;
    await assert.rejects(rt.load(source(broken), onLog), (e) => isZvError(e, 'FUNCTION_COMPILE_ERROR') && /non-zero code: 4/.test(e.message));
    // The images the build committed: ` ---> <id>` after each step but FROM, unless it was cached.
    const made: string[] = [];
    let step = '';
    let cached = false;
    for (const line of buildLog) {
      if (/^Step \d+\/\d+ : /.test(line)) [step, cached] = [line, false];
      else if (line === ' ---> Using cache') cached = true;
      const m = /^ ---> ([0-9a-f]{12})$/.exec(line);
      if (m && !/ : FROM /i.test(step) && !cached) made.push(m[1]!);
    }
    assert.equal(made.length, 2, buildLog.join('\n'));
    for (const id of made) await assert.rejects(docker.getImage(id).inspect(), (e) => statusOf(e) === 404, `the layer ${id} of the failed build is removed`);
    const dangling = await docker.listImages({ filters: { dangling: ['true'], label: [`${LABELS.instance}=${instance}`] } });
    assert.deepEqual(dangling.map((i) => i.Id), []);
  });

  it('an image nothing uses goes once it has been unused for the grace, without another sync', async () => {
    const fx = await fixture({ ...MAIN, 'www/index.html': 'short-lived\n' });
    const graceful = runtime({ imageGraceMs: 3000 });
    const f = await graceful.load(source(fx, { id: 't/app/fn@short-lived' }), onLog);
    const tag = imageTag(fx.build);
    const img = await docker.getImage(tag).inspect();
    assert.equal(img.Config.Labels?.[LABELS.managed], 'true');
    assert.equal(img.Config.Labels?.[LABELS.instance], instance, 'the image carries the instance that built it');
    await f.dispose();
    const disposedAt = Date.now();
    await docker.getImage(tag).inspect();
    await until('the unused image to be removed', async () => docker.getImage(tag).inspect().then(() => false, (e) => statusOf(e) === 404), 60_000);
    assert.ok(Date.now() - disposedAt >= 3000, 'not before the grace');
    await docker.getImage(imageTag(main.build)).inspect();
    await docker.getNetwork(`zv-${instance}-t`).inspect();
    await graceful.close();
  });

  it('dispose stops and removes the container', async () => {
    const id = fn.describe?.().container ?? '';
    await fn.dispose();
    assert.equal(await exists(id), false);
    assert.deepEqual(await ours(), []);
  });
});
