// What a function's container looks like: its identity hash (which running container may be
// adopted), labels, name and create options (limits, loopback-only port, the namespace's network,
// no privileges); the namespace's network (name, labels, options); plus the
// engine's multiplexed log format turned into lines.
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { DockerSource, FunctionSource, LogStream } from '../types.js';
import { LABEL_INSTANCE, LABEL_MANAGED } from './build.js';

export const LABELS = {
  managed: LABEL_MANAGED,
  instance: LABEL_INSTANCE,
  namespace: 'zerverless.namespace',
  app: 'zerverless.app',
  path: 'zerverless.path',
  image: 'zerverless.image',
  fn: 'zerverless.fn',
  fnhash: 'zerverless.fnhash',
} as const;

export interface Limits {
  cpus: number;
  pidsLimit: number;
}

type DockerFunctionSource = FunctionSource & { docker: DockerSource & { port: number } };

function env(source: DockerFunctionSource): Record<string, string> {
  return { ...source.env, PORT: String(source.docker.port) };
}

/**
 * Same hash, interchangeable containers: the image, what the container is given (env, port,
 * memory, capabilities, limits, network) and whose function it is. Env keys are sorted.
 */
export function fnHash(tag: string, source: DockerFunctionSource, limits: Limits, network: string): string {
  const e = env(source);
  const d = source.docker;
  const parts = {
    tag,
    env: Object.keys(e).sort().map((k) => [k, e[k]]),
    port: d.port,
    memoryMb: source.memoryMb,
    caps: [...d.build.capabilities].sort(),
    cpus: limits.cpus,
    pids: limits.pidsLimit,
    owner: [d.owner.namespace, d.owner.app, d.owner.path],
    network,
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

const clean = (s: string, max: number): string => s.replace(/[^a-zA-Z0-9_.-]+/g, '-').replace(/^[-_.]+/, '').slice(0, max) || 'x';

/**
 * The bridge network of a namespace's containers: one per (instance, namespace), so containers of
 * different namespaces sit on different bridges (which Docker's iptables rules keep apart).
 */
export function networkName(namespace: string, instance?: string): string {
  return `zv-${instance ? `${clean(instance, 40)}-` : ''}${clean(namespace, 63)}`;
}

/**
 * Create options of a namespace's network: a user-defined bridge, outbound traffic masqueraded as
 * on Docker's default bridge, and no traffic between its containers (enable_icc=false): a
 * function is reached only through its published loopback port, by the gateway.
 */
export function networkOptions(name: string, namespace: string, instance?: string): Dockerode.NetworkCreateOptions {
  return {
    Name: name,
    Driver: 'bridge',
    CheckDuplicate: true,
    Labels: { [LABELS.managed]: 'true', ...(instance ? { [LABELS.instance]: instance } : {}), [LABELS.namespace]: namespace },
    Options: { 'com.docker.network.bridge.enable_icc': 'false' },
  };
}

export function containerName(source: DockerFunctionSource, hash: string): string {
  const { namespace, app } = source.docker.owner;
  return `zv-${clean(namespace, 40)}-${clean(app, 40)}-${hash.slice(0, 10)}-${randomBytes(3).toString('hex')}`;
}

export function labelsFor(source: DockerFunctionSource, tag: string, hash: string, instance?: string): Record<string, string> {
  const o = source.docker.owner;
  return {
    [LABELS.managed]: 'true',
    ...(instance ? { [LABELS.instance]: instance } : {}),
    [LABELS.namespace]: o.namespace,
    [LABELS.app]: o.app,
    [LABELS.path]: o.path,
    [LABELS.image]: tag,
    [LABELS.fn]: source.id,
    [LABELS.fnhash]: hash,
  };
}

export function createOptions(
  source: DockerFunctionSource, tag: string, hash: string, limits: Limits, network: string, instance?: string,
): Dockerode.ContainerCreateOptions {
  const port = `${source.docker.port}/tcp`;
  const memory = source.memoryMb * 1024 * 1024;
  const e = env(source);
  return {
    name: containerName(source, hash),
    Image: tag,
    Env: Object.entries(e).map(([k, v]) => `${k}=${v}`),
    ExposedPorts: { [port]: {} },
    Labels: labelsFor(source, tag, hash, instance),
    HostConfig: {
      PortBindings: { [port]: [{ HostIp: '127.0.0.1', HostPort: '' }] },
      NetworkMode: network,
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(limits.cpus * 1e9),
      PidsLimit: limits.pidsLimit,
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['ALL'],
      CapAdd: source.docker.build.capabilities,
      RestartPolicy: { Name: 'unless-stopped' },
      // A chatty function must not fill the host's disk with container logs.
      LogConfig: { Type: 'local', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
  };
}

/** The host port the engine bound for `port/tcp` on loopback, from an inspect. */
export function hostPort(info: Dockerode.ContainerInspectInfo, port: number): number | null {
  const bindings = info.NetworkSettings?.Ports?.[`${port}/tcp`];
  for (const b of bindings ?? []) {
    const n = Number(b.HostPort);
    if (Number.isInteger(n) && n > 0) return n;
  }
  return null;
}

/**
 * Splits the engine's multiplexed stream (8-byte frames: stream type, 3 zero bytes, big-endian
 * length) into lines per stream. Returns a feed function and a flush for the partial lines.
 */
export function demuxer(onLine: (stream: LogStream, line: string) => void): { feed(chunk: Buffer): void; flush(): void } {
  let buf: Buffer = Buffer.alloc(0);
  const partial: Record<LogStream, string> = { stdout: '', stderr: '' };
  const text = (stream: LogStream, s: string): void => {
    partial[stream] += s;
    let nl: number;
    while ((nl = partial[stream].indexOf('\n')) >= 0) {
      onLine(stream, partial[stream].slice(0, nl).replace(/\r$/, ''));
      partial[stream] = partial[stream].slice(nl + 1);
    }
  };
  return {
    feed(chunk) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 8) {
        const size = buf.readUInt32BE(4);
        if (buf.length < 8 + size) break;
        const type = buf[0];
        text(type === 2 ? 'stderr' : 'stdout', buf.subarray(8, 8 + size).toString('utf8'));
        buf = buf.subarray(8 + size);
      }
    },
    flush() {
      for (const s of ['stdout', 'stderr'] as const) {
        if (partial[s]) onLine(s, partial[s]);
        partial[s] = '';
      }
    },
  };
}

/** The last `tail` log lines of a container (both streams, in order), best effort. */
export async function lastLogLines(container: Dockerode.Container, tail = 30): Promise<string[]> {
  try {
    const buf = (await container.logs({ stdout: true, stderr: true, follow: false, tail })) as unknown as Buffer;
    const out: string[] = [];
    const d = demuxer((_s, line) => out.push(line));
    d.feed(Buffer.isBuffer(buf) ? buf : Buffer.from(buf));
    d.flush();
    return out.slice(-tail);
  } catch {
    return [];
  }
}

/** Follows a container's logs until it stops or `stop()` is called. */
export class LogFollower {
  private stream: Readable | undefined;
  private stopped = false;
  private finish: () => void = () => {};
  /** Resolves when the stream has ended (the container stopped) or `stop()` was called. */
  readonly done = new Promise<void>((r) => {
    this.finish = r;
  });

  constructor(
    private readonly container: Dockerode.Container,
    private readonly onLine: (stream: LogStream, line: string) => void,
  ) {}

  async start(from: { since: string } | { tail: number } | 'all'): Promise<void> {
    const opts = from === 'all' ? {} : from;
    try {
      const s = (await this.container.logs({ stdout: true, stderr: true, follow: true, ...opts })) as unknown as Readable;
      if (this.stopped) {
        s.destroy();
        return;
      }
      this.stream = s;
      const d = demuxer(this.onLine);
      s.on('data', (c: Buffer) => d.feed(c));
      const end = (): void => {
        d.flush();
        this.finish();
      };
      s.on('end', end);
      s.on('close', end);
      s.on('error', end);
    } catch {
      this.finish();
    }
  }

  stop(): void {
    this.stopped = true;
    this.finish();
    this.stream?.destroy();
  }
}
