// The docker runtime against the shared runtime contract (../contract.ts), with a real engine.
// A docker "function" here is one image built once from the local base image (zv-busybox:test, no
// registry): a tiny HTTP server in busybox sh (`nc -ll` forks one shell per connection) that answers
// the readiness probe on `/` and otherwise runs the handler the container's env HANDLER names; each
// contract sample is such a handler (shell), written to answer the HTTP equivalent of the in-process
// samples. The syntax-error sample is a Dockerfile that does not parse on its line 2.
// Skips without an engine on a laptop; fails under CI=true (test/support/docker.ts).
import { after } from 'node:test';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Dockerode from 'dockerode';
import type { DockerBuild } from '../../core/desired.js';
import type { FunctionSource } from '../types.js';
import { runtimeContract } from '../contract.js';
import type { ContractSamples } from '../contract.js';
import { BASE_IMAGE, ensureBaseImage, removeNetworksOf, requireDocker } from '../../../test/support/docker.js';
import { DockerRuntime, imageTag, LABELS } from './index.js';
import { listContext } from '../../sources/tree/index.js';
import { FsSnapshot } from '../../sources/fs-snapshot.js';

const skip = await requireDocker();
const docker = new Dockerode();
const instance = `contract-${randomBytes(4).toString('hex')}`;
const NAMESPACE = `zvc${randomBytes(3).toString('hex')}`;
const salt = randomBytes(8).toString('hex');

/** One connection: parse the request from stdin, answer on stdout (helpers for the handlers). */
const CONN = String.raw`#!/bin/sh
cr=$(printf '\r')
read -r method target version
path=${'$'}{target%%\?*}
query=
case "$target" in *\?*) query=${'$'}{target#*\?} ;; esac
len=0
: > /tmp/headers.$$
while IFS= read -r line; do
  line=${'$'}{line%"$cr"}
  [ -z "$line" ] && break
  name=$(printf '%s' "${'$'}{line%%:*}" | tr 'A-Z' 'a-z')
  value=${'$'}{line#*:}
  value=${'$'}{value# }
  [ "$name" = content-length ] && len=$value
  printf '%s\t%s\n' "$name" "$value" >> /tmp/headers.$$
done
body=
[ "$len" -gt 0 ] && body=$(head -c "$len")
# j STRING: the string as a JSON string (enough for the contract's ASCII values).
j() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }
# respond STATUS CONTENT-TYPE BODY [EXTRA-HEADER-LINE]
respond() {
  printf 'HTTP/1.1 %s X\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n' "$1" "$2" "${'$'}{#3}"
  [ -n "$4" ] && printf '%s\r\n' "$4"
  printf '\r\n%s' "$3"
}
if [ "$path" = / ]; then respond 200 text/plain ready; rm -f /tmp/headers.$$; exit 0; fi
. "/srv/handlers/$HANDLER.sh"
rm -f /tmp/headers.$$
`;

// sh stays PID 1 and exits at once on SIGTERM (dispose does not wait out the stop grace).
const DOCKERFILE = [
  `FROM ${BASE_IMAGE}`,
  'COPY srv /srv',
  'CMD trap \'kill $pid; exit 0\' TERM; nc -ll -p "$PORT" -e /srv/conn.sh & pid=$!; wait $pid',
].join('\n');

const xs = 'n=$body; x=$(head -c "$n" /dev/zero | tr "\\0" x)';

/** Each handler answers the HTTP equivalent of the in-process sample of the same name. */
const HANDLERS: Record<keyof ContractSamples, string> = {
  echo: [
    'q=; sep=',
    'for kv in $(printf "%s" "$query" | tr "&" " "); do q="$q$sep$(j "$(httpd -d "${kv%%=*}")"):$(j "$(httpd -d "${kv#*=}")")"; sep=,; done',
    'h=; sep=',
    'while IFS="$(printf "\\t")" read -r k v; do h="$h$sep$(j "$k"):$(j "$v")"; sep=,; done < /tmp/headers.$$',
    'respond 200 application/json "{\\"method\\":$(j "$method"),\\"path\\":$(j "$path"),\\"query\\":{$q},\\"headers\\":{$h},\\"body\\":$(j "$body")}"',
  ].join('\n'),
  text: 'respond 200 "text/plain; charset=utf-8" hello',
  custom: 'respond 201 text/plain created "x-test: yes"',
  async: 'respond 200 text/plain "async ok"',
  throws: 'echo "boom happened" >&2\nrespond 500 text/plain "error: boom"',
  loop: 'sleep 86400', // never answers (a sleeping shell: a busy loop would burn a CPU for the rest of the suite)
  memory: 'x=x\nwhile :; do x="$x$x"; done',
  syntaxError: '', // a Dockerfile, see below
  readHostFile: 'respond 200 text/plain "$(cat /etc/passwd 2>&1)"',
  spawnProcess: 'respond 200 text/plain "$(hostname 2>&1) $(id 2>&1)"',
  print: 'echo "hello log" >&2\nrespond 200 text/plain ok',
  env: 'respond 200 text/plain "$GREETING"',
  globalWrite: 'echo secret > /tmp/zv_leak\nrespond 200 text/plain ok',
  globalRead: 'if [ -f /tmp/zv_leak ]; then respond 200 text/plain "$(cat /tmp/zv_leak)"; else respond 200 text/plain absent; fi',
  bigText: `${xs}\nrespond 200 text/plain "$x"`,
  bigJson: `${xs}\nrespond 200 application/json "{\\"data\\":\\"$x\\"}"`,
  plainObject: 'respond 200 application/json \'{"ok":true,"items":[1,2,3]}\'',
  asyncPlainObject: 'respond 200 application/json \'{"ok":true,"async":true}\'',
  mixedObject: 'respond 201 application/json \'{"status":201,"data":"x"}\'',
  bigPlainObject: `${xs}\nrespond 200 application/json "{\\"data\\":\\"$x\\"}"`,
};

interface Fixture {
  dir: string;
  build: DockerBuild;
}
const dirs: string[] = [];
const tags = new Set<string>();

async function fixture(files: Record<string, string>, mode = 0o755): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'zv-docker-contract-'));
  dirs.push(dir);
  const h = createHash('sha256').update(salt);
  for (const [name, text] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text, { mode });
    h.update(`${name}\0${text}\0`);
  }
  return { dir, build: { dockerfile: 'Dockerfile', context: '.', contextHash: h.digest('hex'), capabilities: [] } };
}

let server: Promise<Fixture> | undefined;
let broken: Promise<Fixture> | undefined;
const serverFixture = (): Promise<Fixture> => (server ??= fixture({
  Dockerfile: DOCKERFILE,
  'srv/conn.sh': CONN,
  ...Object.fromEntries(Object.entries(HANDLERS).map(([k, v]) => [`srv/handlers/${k}.sh`, `${v}\n`])),
}));
// Line 2 is not an instruction.
const brokenFixture = (): Promise<Fixture> => (broken ??= fixture({ Dockerfile: `FROM ${BASE_IMAGE}\nNOT_AN_INSTRUCTION here\nCMD true\n` }));

/** A contract sample is a handler name; the docker source runs it in the shared server image. */
async function source(name: keyof ContractSamples, base: FunctionSource): Promise<FunctionSource> {
  await ensureBaseImage(docker);
  const fx = await (name === 'syntaxError' ? brokenFixture() : serverFixture());
  // Named as the contract names the file, so that errors can be matched against it.
  const build: DockerBuild = { ...fx.build, dockerfile: base.filename };
  tags.add(imageTag(build));
  return {
    ...base,
    env: { ...base.env, HANDLER: name },
    docker: {
      build,
      contextDir: fx.dir,
      dockerfilePath: join(fx.dir, 'Dockerfile'),
      // What the source reader hands the runtime: the context's entries, as hashed.
      contextFiles: (await listContext(new FsSnapshot(fx.dir), '', { dockerfile: 'Dockerfile' })).map((e) => e.path),
      port: 8080,
      owner: { namespace: NAMESPACE, app: 'contract', path: `/${base.id.split('/').pop() ?? 'f'}` },
    },
  };
}

const samples = Object.fromEntries(Object.keys(HANDLERS).map((k) => [k, k])) as unknown as ContractSamples<keyof ContractSamples>;

runtimeContract<keyof ContractSamples>({
  name: 'docker',
  create: () => new DockerRuntime({ docker, instance, readyTimeoutMs: 30_000, imageGraceMs: 0 }),
  samples,
  source,
  kind: 'proxied',
  // node's http client adds Host; the runtime adds X-Forwarded-Prefix and sends the body whole.
  proxyHeaders: ['host', 'x-forwarded-prefix', 'content-length', 'connection'],
  isolation: 'container',
  skip,
});

after(async () => {
  if (skip) return;
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } })) {
    await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
  }
  for (const t of tags) await docker.getImage(t).remove({ force: true }).catch(() => {});
  await removeNetworksOf([NAMESPACE], docker);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
