// Test helpers for real-Docker tests: whether an engine answers, the skip-or-fail rule (skip on a
// laptop without Docker, fail under CI=true), and the local base image `zv-busybox:test`, imported
// from a tiny root filesystem holding the host's static busybox (no registry is reachable); and
// whether the engine isolates its bridge networks (iptables); and the removal of what a test
// server made in the engine (removeInstanceObjects, called when a test harness closes).
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import Dockerode from 'dockerode';
import tar from 'tar-fs';
import { instanceOf } from '../../src/runtimes/docker/index.js';

export const BASE_IMAGE = 'zv-busybox:test';
/** Marks an image made by this helper (all busybox applets linked); bump when the rootfs changes. */
const BASE_LABEL = 'zerverless.test-base';
const BASE_VERSION = '1';
const BUSYBOX = process.env.ZV_TEST_BUSYBOX ?? '/bin/busybox';
const APPLETS_FALLBACK = ['sh', 'httpd', 'echo', 'cat', 'env', 'sleep', 'printf', 'ls', 'wc', 'head', 'tail', 'grep', 'sed', 'test', 'true', 'false', 'id', 'mkdir', 'rm', 'nc', 'wget'];

let probe: Promise<boolean> | undefined;
let base: Promise<string> | undefined;

export async function dockerAvailable(): Promise<boolean> {
  probe ??= (async () => {
    const docker = new Dockerode();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        docker.ping(),
        new Promise((_r, reject) => {
          // Generous: a busy engine on a loaded machine answers late; a missing one fails at once.
          timer = setTimeout(() => reject(new Error('timeout')), 30_000);
        }),
      ]);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  })();
  return probe;
}

const REASON = 'skipped: no Docker engine';

function noEngine(): string {
  if (process.env.CI === 'true') {
    throw new Error('CI=true but no Docker engine answers (DOCKER_HOST or /var/run/docker.sock): the Docker tests must run in CI');
  }
  console.log(`# ${REASON}`);
  return REASON;
}

/**
 * Suite level: `describe('…', { skip: await requireDocker() }, …)` — false when an engine answers,
 * else the skip reason. Test level: `if (!(await requireDocker(t))) return;` skips the test.
 * Under CI=true, a missing engine throws instead (the tests fail, they do not skip).
 */
export async function requireDocker(): Promise<false | string>;
export async function requireDocker(t: TestContext): Promise<boolean>;
export async function requireDocker(t?: TestContext): Promise<false | string | boolean> {
  const ok = await dockerAvailable();
  if (!t) return ok ? false : noEngine();
  if (ok) return true;
  t.skip(noEngine());
  return false;
}

async function applets(): Promise<string[]> {
  try {
    const { stdout } = await promisify(execFile)(BUSYBOX, ['--list']);
    const names = stdout.split('\n').map((s) => s.trim()).filter((s) => /^[a-z0-9_.[-]+$/.test(s) && s !== 'busybox');
    return names.length ? names : APPLETS_FALLBACK;
  } catch {
    return APPLETS_FALLBACK;
  }
}

/** Imports the busybox root filesystem as `ref` (repo:tag). Exported for checking the helper itself. */
export async function importBase(docker: Dockerode, ref = BASE_IMAGE): Promise<string> {
  const [repo, tag] = ref.split(':') as [string, string];
  const root = await mkdtemp(join(tmpdir(), 'zv-rootfs-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'www', 'proc', 'sys', 'dev', 'root']) await mkdir(join(root, d));
    await chmod(join(root, 'tmp'), 0o1777);
    await copyFile(BUSYBOX, join(root, 'bin', 'busybox'));
    await chmod(join(root, 'bin', 'busybox'), 0o755);
    for (const a of await applets()) await symlink('busybox', join(root, 'bin', a)).catch(() => {});
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const out = (await docker.importImage(tar.pack(root) as unknown as Readable, { repo, tag, changes: [`LABEL ${BASE_LABEL}=${BASE_VERSION}`] })) as unknown as Readable;
    let failure: string | undefined;
    await new Promise<void>((resolve, reject) => {
      let text = '';
      out.on('data', (c: Buffer) => (text += c.toString()));
      out.on('end', () => {
        const m = /"error"\s*:\s*"([^"]*)"/.exec(text);
        if (m) failure = m[1];
        resolve();
      });
      out.on('error', reject);
    });
    if (failure) throw new Error(`docker import of ${ref} failed: ${failure}`);
    await docker.getImage(ref).inspect();
    return ref;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * Makes sure `zv-busybox:test` exists and returns its name: reused when this helper made it,
 * (re)imported otherwise (an image of that name made another way may lack applets).
 */
export async function ensureBaseImage(docker: Dockerode = new Dockerode()): Promise<string> {
  base ??= (async () => {
    await sweepStaleNetworks(docker);
    try {
      const info = await docker.getImage(BASE_IMAGE).inspect();
      if (info.Config?.Labels?.[BASE_LABEL] === BASE_VERSION) return BASE_IMAGE;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
    return importBase(docker);
  })();
  try {
    return await base;
  } catch (e) {
    base = undefined;
    throw e;
  }
}

/**
 * Whether dockerd keeps separate bridge networks apart: the isolation chain it writes when it runs
 * with iptables. Null when the chain is there; otherwise what is known, for the test to say why a
 * cross-network read went through (or that it could not check).
 */
export async function networkIsolationNote(): Promise<string | null> {
  try {
    await promisify(execFile)('iptables', ['-S', 'DOCKER-ISOLATION-STAGE-1']);
    return null;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') return 'cannot check: no iptables binary on this host (rootless Docker or another host?)';
    const why = (err.stderr ?? '').trim();
    if (/No chain|does not exist/i.test(why)) {
      return 'dockerd runs with iptables disabled (no DOCKER-ISOLATION-STAGE-1 chain): its bridge networks are NOT isolated from each other';
    }
    return `cannot check the iptables chain DOCKER-ISOLATION-STAGE-1: ${why || err.message}`;
  }
}

const STALE_NETWORK_MS = 10 * 60_000;

/**
 * Removes zerverless namespace networks no container is on that were made over 10 minutes ago:
 * what test servers closed before their runtime removed them left behind (Docker's default
 * address pools hold only about 30 bridge networks). A running server makes its network again
 * when it needs it.
 */
export async function sweepStaleNetworks(docker: Dockerode = new Dockerode()): Promise<number> {
  const nets = await docker.listNetworks({ filters: { label: ['zerverless.managed=true'] } });
  let n = 0;
  for (const net of nets) {
    if (Date.now() - Date.parse(net.Created) < STALE_NETWORK_MS) continue;
    const on = await docker.listContainers({ all: true, filters: { network: [net.Id] } });
    if (on.length) continue;
    if (await docker.getNetwork(net.Id).remove().then(() => true, () => false)) n++;
  }
  return n;
}

/** Removes the (unused) zerverless networks of these namespaces: a test's own, in its `after`. */
export async function removeNetworksOf(namespaces: string[], docker: Dockerode = new Dockerode()): Promise<void> {
  const nets = await docker.listNetworks({ filters: { label: ['zerverless.managed=true'] } });
  for (const net of nets) {
    if (!namespaces.includes(net.Labels?.['zerverless.namespace'] ?? '')) continue;
    await docker.getNetwork(net.Id).remove().catch(() => undefined);
  }
}

/**
 * Removes what the server on `dataDir` made in the engine, found by its instance label: its
 * containers (a server's stop keeps them for its next start to adopt, PRODUCT.md §7), then its
 * networks, then its images no container uses (never forced: an image another server's container
 * runs stays). For a test server whose data dir goes with it: nothing will ever adopt them, and
 * left behind they hold a bridge network each (the engine has about 30) and restart with dockerd.
 * Nothing to do without an engine; a failure is reported on stderr, never thrown.
 */
export async function removeInstanceObjects(dataDir: string, docker: Dockerode = new Dockerode()): Promise<void> {
  if (!(await dockerAvailable())) return;
  const label = [`zerverless.instance=${instanceOf(dataDir)}`];
  const quiet = (): undefined => undefined;
  try {
    for (const c of await docker.listContainers({ all: true, filters: { label } })) await docker.getContainer(c.Id).remove({ force: true }).catch(quiet);
    for (const n of await docker.listNetworks({ filters: { label } })) await docker.getNetwork(n.Id).remove().catch(quiet);
    for (const img of await docker.listImages({ filters: { label } })) {
      const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      for (const ref of tags.length ? tags : [img.Id]) await docker.getImage(ref).remove().catch(quiet);
    }
  } catch (e) {
    process.stderr.write(`removing the docker objects of the test server on ${dataDir} failed: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}
