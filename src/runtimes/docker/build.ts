// Images of docker functions: the content tag, and one build through the Engine API (legacy
// builder, never pulling on purpose) with a time limit. The progress stream is read line by line:
// every log line goes to the caller, the last ones are kept for the error message, and the ids of
// the images each step committed are reported (a failed build's are removed by the runtime).
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { DockerBuild } from '../../core/desired.js';
import { ZvError } from '../../errors/registry.js';
import { packContext } from './context.js';

export const IMAGE_REPO = 'zerverless-fn';
export const LABEL_MANAGED = 'zerverless.managed';
export const LABEL_BUILD = 'zerverless.build';
export const LABEL_INSTANCE = 'zerverless.instance';

/**
 * The LABEL_INSTANCE value of a server on `dataDir` (a hash of its absolute path): servers sharing
 * an engine never adopt or remove each other's containers.
 */
export function instanceOf(dataDir: string): string {
  return createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12);
}

/**
 * A build step whose cached layer the engine could not find any more: it chose the layer from its
 * cache and the layer was removed meanwhile (another server's or another build's cleanup on the
 * same engine; seen under load). The engine's fault, not the Dockerfile's: RUNTIME_UNAVAILABLE, so
 * the next poll builds again instead of waiting for a new commit. A name the Dockerfile gives
 * (FROM missing:tag) is not a bare content id, so it stays the Dockerfile's fault.
 */
/** The Dockerfile line the engine names in a parse error (classic builder and BuildKit wordings). */
const DOCKERFILE_LINE = /dockerfile parse error (?:on )?line (\d{1,6})\b/i;
const LOST_LAYER = /unable to find image "?sha256:[0-9a-f]{64}"?/i;

const KEEP_LINES = 200;
const ERROR_LINES = 30;

export function imageTag(build: DockerBuild): string {
  const h = createHash('sha256').update(build.contextHash + build.dockerfile).digest('hex');
  return `${IMAGE_REPO}:${h.slice(0, 24)}`;
}

export interface BuildRequest {
  tag: string;
  build: DockerBuild;
  contextDir: string;
  dockerfilePath: string;
  /** The context's entries to send (DockerSource.contextFiles): exactly those the tag was hashed from. */
  contextFiles: readonly string[];
  timeoutMs: number;
  /** Labels the image with the platform instance that built it (its prune only touches those). */
  instance?: string;
  onLine?: (line: string) => void;
  /**
   * The id of an image a step of this build committed (not the FROM image, not a cache hit): a
   * failed build's are garbage. The legacy builder reports them as ` ---> <id>` after each step.
   */
  onLayer?: (id: string) => void;
}

interface ProgressEvent {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/** Calls `onEvent` for every JSON object of a newline-delimited progress stream. */
export function readJsonLines<T>(stream: Readable | NodeJS.ReadableStream, onEvent: (e: T) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let rest = '';
    const take = (text: string): void => {
      const t = text.trim();
      if (!t) return;
      try {
        onEvent(JSON.parse(t) as T);
      } catch {
        // Not JSON (a proxy's or daemon's plain text): keep it as a log line.
        onEvent({ stream: `${t}\n` } as T);
      }
    };
    stream.on('data', (chunk: Buffer | string) => {
      rest += chunk.toString();
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        take(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
    });
    const end = (): void => {
      take(rest);
      rest = '';
      resolve();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', reject);
  });
}

function errorText(e: unknown): string {
  if (e && typeof e === 'object') {
    const j = (e as { json?: { message?: string } }).json;
    if (j && typeof j.message === 'string') return j.message;
    if (e instanceof Error) return e.message;
  }
  return String(e);
}

/** Builds `req.tag`; resolves with the image id. Rejects with FUNCTION_COMPILE_ERROR and the log. */
export async function buildImage(docker: Dockerode, req: BuildRequest): Promise<string> {
  const lines: string[] = [];
  let partial = '';
  let step = '';
  let cached = false;
  const push = (line: string): void => {
    lines.push(line);
    if (lines.length > KEEP_LINES) lines.shift();
    req.onLine?.(line);
    if (/^Step \d+\/\d+ : /.test(line)) {
      step = line;
      cached = false;
    } else if (line === ' ---> Using cache') {
      cached = true;
    } else {
      const m = /^ ---> ([0-9a-f]{12,64})$/.exec(line);
      if (m && !cached && !/^Step \d+\/\d+ : FROM\s/i.test(step)) req.onLayer?.(m[1]!);
    }
  };
  const text = (s: string): void => {
    partial += s;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      push(partial.slice(0, nl).replace(/\r$/, ''));
      partial = partial.slice(nl + 1);
    }
  };
  // The Dockerfile's fault (FUNCTION_COMPILE_ERROR: not retried until the commit changes) or the
  // engine's (RUNTIME_UNAVAILABLE: the next poll tries again).
  const fail = (why: string, code: 'FUNCTION_COMPILE_ERROR' | 'RUNTIME_UNAVAILABLE' = 'FUNCTION_COMPILE_ERROR'): ZvError => {
    if (partial) push(partial);
    partial = '';
    const tail = lines.slice(-ERROR_LINES).join('\n');
    // the engine names the Dockerfile's line of a parse error ("dockerfile parse error line 2: …",
    // "… on line 2 …"): the error names it as file:line, like the other runtimes' compile errors
    const line = code === 'FUNCTION_COMPILE_ERROR' ? DOCKERFILE_LINE.exec(why)?.[1] : undefined;
    const where = line ? `${req.build.dockerfile}:${line}` : req.build.dockerfile;
    return new ZvError(code, `${where}: docker build failed: ${why}${tail ? `\n${tail}` : ''}`, { buildLog: lines.slice() });
  };

  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, req.timeoutMs);
  let packed: Awaited<ReturnType<typeof packContext>> | undefined;
  let error: string | undefined;
  let imageId: string | undefined;
  try {
    packed = await packContext(req.contextDir, req.dockerfilePath, req.contextFiles);
    const stream = (await docker.buildImage(packed.stream, {
      t: req.tag,
      dockerfile: packed.dockerfile,
      labels: { [LABEL_MANAGED]: 'true', [LABEL_BUILD]: req.build.contextHash, ...(req.instance ? { [LABEL_INSTANCE]: req.instance } : {}) },
      pull: false,
      rm: true,
      forcerm: true,
      abortSignal: abort.signal,
    })) as Readable;
    abort.signal.addEventListener('abort', () => stream.destroy(new Error('aborted')), { once: true });
    await readJsonLines<ProgressEvent>(stream, (e) => {
      if (e.stream) text(e.stream);
      else if (e.status) push([e.id, e.status, e.progress].filter(Boolean).join(' '));
      if (e.aux?.ID) imageId = e.aux.ID;
      if (e.error || e.errorDetail) error ??= e.errorDetail?.message ?? e.error ?? 'unknown error';
    });
  } catch (e) {
    if (timedOut) throw fail(`over the time limit of ${Math.round(req.timeoutMs / 1000)} s`);
    if (e instanceof ZvError) throw e;
    // A 4xx is the engine refusing the Dockerfile (e.g. a parse error); anything else is the engine.
    const status = (e as { statusCode?: number }).statusCode;
    throw fail(errorText(e), status !== undefined && status >= 400 && status < 500 ? 'FUNCTION_COMPILE_ERROR' : 'RUNTIME_UNAVAILABLE');
  } finally {
    clearTimeout(timer);
    packed?.stream.destroy();
  }
  if (timedOut) throw fail(`over the time limit of ${Math.round(req.timeoutMs / 1000)} s`);
  if (error !== undefined) throw fail(error, LOST_LAYER.test(error) ? 'RUNTIME_UNAVAILABLE' : 'FUNCTION_COMPILE_ERROR');
  if (partial) push(partial);
  try {
    const info = await docker.getImage(req.tag).inspect();
    return info.Id;
  } catch (e) {
    if (imageId) return imageId;
    throw fail(`the engine reported no image: ${errorText(e)}`, 'RUNTIME_UNAVAILABLE');
  }
}
