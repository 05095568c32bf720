// Tests for parseManifest: the PRODUCT.md example, normalisation, and every error kind at its exact position.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic } from '../desired.js';
import type { Manifest } from '../desired.js';
import { parseManifest } from './parse.js';

const EXAMPLE = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: my-app
  namespace: myuser
spec:
  source:
    repoURL: https://github.com/user/repo
    branch: main
  functions:
    - path: /api/hello
      runtime: lua
      code: |
        function handle(req)
          return {status=200, body="Hello from GitOps!"}
        end
    - path: /api/python
      runtime: python
      codeFile: handlers/python.py
    - path: /api/js
      runtime: js            # js | javascript | typescript | ts
      codeFile: handlers/hello.ts
    - path: /api/docker
      runtime: docker
      dockerfile: ./services/api/Dockerfile
      context: ./services/api
  static:
    dir: ./static
`;

const HEAD = `apiVersion: zerverless.io/v1
kind: Application
metadata:
  name: app
spec:
  functions:
`; // functions start on line 7

function ok(text: string): Manifest {
  const r = parseManifest(text);
  if ('errors' in r) assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  return r.manifest;
}

function errors(text: string): string[] {
  const r = parseManifest(text);
  if (!('errors' in r)) return assert.fail('expected errors');
  return r.errors.map(formatDiagnostic);
}

test('the PRODUCT.md example parses', () => {
  const m = ok(EXAMPLE);
  assert.equal(m.apiVersion, 'zerverless.io/v1');
  assert.deepEqual(m.metadata, { name: 'my-app', namespace: 'myuser' });
  assert.deepEqual(m.spec.source, { repoURL: 'https://github.com/user/repo', branch: 'main' });
  assert.equal(m.spec.functions.length, 4);
  const [lua, py, js, docker] = m.spec.functions;
  assert.deepEqual(lua, {
    path: '/api/hello', runtime: 'lua', timeoutMs: 30_000, memoryMb: 128, env: {}, line: 11,
    code: 'function handle(req)\n  return {status=200, body="Hello from GitOps!"}\nend\n', codeLine: 14,
  });
  assert.equal(py?.codeFile, 'handlers/python.py');
  assert.equal(py?.line, 17);
  assert.equal(py?.language, undefined);
  assert.deepEqual([js?.runtime, js?.language, js?.codeFile], ['js', 'typescript', 'handlers/hello.ts']);
  assert.deepEqual([docker?.runtime, docker?.dockerfile, docker?.context, docker?.port], ['docker', 'services/api/Dockerfile', 'services/api', undefined]);
  assert.deepEqual(m.spec.static, { dir: './static', line: 28 });
  const r = parseManifest(EXAMPLE);
  assert.ok(!('errors' in r));
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(r.locations['spec.functions[1].codeFile'], { line: 19, col: 7 });
  assert.deepEqual(r.locations['spec.static.dir'], { line: 28, col: 5 });
});

test('runtime normalisation, defaults, durations, env stringification', () => {
  const m = ok(`${HEAD}    - { path: /a, runtime: javascript, code: "x" }
    - { path: /b, runtime: typescript, code: "x", timeout: 500ms, memory: 256 }
    - { path: /c, runtime: ts, codeFile: c.js, timeout: 1500 }
    - { path: /d, runtime: js, codeFile: ./d.mts, timeout: "2m" }
    - { path: /e, runtime: js, codeFile: e.mjs, env: { S: x, N: 42, B: true, F: 1.5 } }
    - { path: /f, runtime: docker, dockerfile: svc/Dockerfile, port: 3000, timeout: 1h }
    - { path: /, runtime: lua, code: "x" }
`);
  const f = m.spec.functions;
  assert.deepEqual(f.map((x) => [x.runtime, x.language]), [
    ['js', 'javascript'], ['js', 'typescript'], ['js', 'typescript'], ['js', 'typescript'], ['js', 'javascript'], ['docker', undefined], ['lua', undefined],
  ]);
  assert.deepEqual(f.map((x) => x.timeoutMs), [30_000, 500, 1500, 120_000, 30_000, 3_600_000, 30_000]);
  assert.deepEqual(f.map((x) => x.memoryMb), [128, 256, 128, 128, 128, 128, 128]);
  assert.deepEqual(f[4]?.env, { S: 'x', N: '42', B: 'true', F: '1.5' });
  assert.equal(f[3]?.codeFile, 'd.mts');
  assert.deepEqual([f[5]?.context, f[5]?.port, f[5]?.capabilities], ['svc', 3000, []]);
  assert.equal(f[0]?.capabilities, undefined);
  assert.deepEqual(f.map((x) => x.line), [7, 8, 9, 10, 11, 12, 13]);
  assert.equal(f[0]?.codeLine, 7);
});

test('codeLine points at the first line of a block scalar, also with comments and folded style', () => {
  const m = ok(`${HEAD}    - path: /a
      runtime: python
      code: |  # a comment
        def handle(req):
            return "hi"
    - path: /b
      runtime: js
      code: >-
        export default 1
`);
  assert.equal(m.spec.functions[0]?.codeLine, 10);
  assert.equal(m.spec.functions[1]?.codeLine, 15);
});

test('a manifest with only a static site, no namespace', () => {
  const m = ok('apiVersion: zerverless.io/v1\nkind: Application\nmetadata: {name: site}\nspec:\n  static: {dir: public}\n');
  assert.deepEqual(m.spec.functions, []);
  assert.equal(m.metadata.namespace, undefined);
  assert.deepEqual(m.spec.static, { dir: 'public', line: 5 });
});

test('YAML syntax error with line:col', () => {
  assert.deepEqual(errors('apiVersion: zerverless.io/v1\nkind: Application\nmetadata:\n  name: a\n  name: b\n'), [
    'zerverless.yaml:5:3: invalid YAML: Map keys must be unique',
  ]);
  const e = errors('apiVersion: zerverless.io/v1\nspec:\n  functions:\n    - path: "/a\n');
  assert.equal(e.length >= 1, true);
  assert.equal(e[0], 'zerverless.yaml:5:1: invalid YAML: Missing closing "quote');
  assert.match(errors('a: b\n\tc: d\n', )[0] ?? '', /^zerverless\.yaml:2:1: invalid YAML/);
});

test('unknown runtime names the field and the allowed values', () => {
  assert.deepEqual(errors(`${HEAD}    - path: /a
      runtime: lua
      code: x
    - path: /b
      runtime: ruby
      code: x
`), [
    'zerverless.yaml:11:7: spec.functions[1].runtime: must be one of lua, python, js, javascript, typescript, ts, docker',
  ]);
});

test('two code sources, no code source, docker mistakes', () => {
  assert.deepEqual(errors(`${HEAD}    - path: /a
      runtime: lua
      code: x
      codeFile: a.lua
    - path: /b
      runtime: python
    - path: /c
      runtime: docker
      code: x
    - path: /d
      runtime: lua
      code: x
      dockerfile: Dockerfile
      port: 80
`), [
    'zerverless.yaml:7:7: spec.functions[0]: has both code and codeFile; give exactly one code source',
    'zerverless.yaml:11:7: spec.functions[1]: has no code source; give code or codeFile',
    'zerverless.yaml:13:7: spec.functions[2].dockerfile: is required for runtime docker',
    'zerverless.yaml:15:7: spec.functions[2].code: a docker function is built from dockerfile and context, not from code or codeFile',
    'zerverless.yaml:19:7: spec.functions[3].dockerfile: only docker functions take dockerfile (runtime is lua)',
    'zerverless.yaml:20:7: spec.functions[3].port: only docker functions take port (runtime is lua)',
  ]);
});

test('docker capabilities: kept in order; unknown, CAP_-prefixed, lower-case, duplicate and non-docker refused at line:col', () => {
  const m = ok(`${HEAD}    - path: /d
      runtime: docker
      dockerfile: Dockerfile
      capabilities: [NET_BIND_SERVICE, CHOWN]
    - { path: /e, runtime: docker, dockerfile: Dockerfile, capabilities: [] }
`);
  assert.deepEqual(m.spec.functions.map((f) => f.capabilities), [['NET_BIND_SERVICE', 'CHOWN'], []]);

  assert.deepEqual(errors(`${HEAD}    - path: /d
      runtime: docker
      dockerfile: Dockerfile
      capabilities:
        - NET_BIND_SERVICE
        - CAP_NET_RAW
        - sys_admin
        - FLY
        - NET_BIND_SERVICE
        - 7
    - path: /l
      runtime: lua
      code: x
      capabilities: [CHOWN]
    - { path: /s, runtime: docker, dockerfile: Dockerfile, capabilities: NET_RAW }
`), [
    'zerverless.yaml:12:11: spec.functions[0].capabilities[1]: "CAP_NET_RAW" must be written NET_RAW (upper case, without CAP_)',
    'zerverless.yaml:13:11: spec.functions[0].capabilities[2]: "sys_admin" is not allowed: a function may keep only Docker\'s default capabilities (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, NET_RAW, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT)',
    'zerverless.yaml:14:11: spec.functions[0].capabilities[3]: "FLY" is not a Linux capability; use a name from capabilities(7) without CAP_, e.g. NET_BIND_SERVICE',
    'zerverless.yaml:15:11: spec.functions[0].capabilities[4]: "NET_BIND_SERVICE" is listed twice (also item 0)',
    'zerverless.yaml:16:11: spec.functions[0].capabilities[5]: must be a string',
    'zerverless.yaml:20:7: spec.functions[1].capabilities: only docker functions take capabilities (runtime is lua)',
    'zerverless.yaml:21:60: spec.functions[2].capabilities: must be a list',
  ]);
});

test('bad paths and duplicate paths', () => {
  assert.deepEqual(errors(`${HEAD}    - { path: api/x, runtime: lua, code: x }
    - { path: /a/../b, runtime: lua, code: x }
    - { path: /a//b, runtime: lua, code: x }
    - { path: "/a?b", runtime: lua, code: x }
    - { path: /dup, runtime: lua, code: x }
    - { path: /dup/, runtime: lua, code: x }
`), [
    'zerverless.yaml:7:9: spec.functions[0].path: "api/x" must start with /',
    'zerverless.yaml:8:9: spec.functions[1].path: "/a/../b" must not contain a .. segment',
    'zerverless.yaml:9:9: spec.functions[2].path: "/a//b" must not contain //',
    'zerverless.yaml:10:9: spec.functions[3].path: "/a?b" must not contain a query (?)',
    'zerverless.yaml:12:9: spec.functions[5].path: duplicate path "/dup/": already declared by spec.functions[4] (line 11)',
  ]);
});

test('bad durations, memory, env', () => {
  assert.deepEqual(errors(`${HEAD}    - path: /a
      runtime: lua
      code: x
      timeout: 30 seconds
      memory: 4
      env:
        OK: fine
        1BAD: x
        LIST: [1]
    - { path: /b, runtime: lua, code: x, timeout: 2h }
    - { path: /c, runtime: lua, code: x, timeout: 0 }
`), [
    'zerverless.yaml:10:7: spec.functions[0].timeout: "30 seconds" is not a duration; use 500ms, 30s, 5m, 1h or a number of milliseconds',
    'zerverless.yaml:11:7: spec.functions[0].memory: must be at least 8 MiB',
    'zerverless.yaml:14:9: spec.functions[0].env["1BAD"]: "1BAD" is not a valid environment variable name (letters, digits and _, not starting with a digit)',
    'zerverless.yaml:15:9: spec.functions[0].env.LIST: must be a string, a number or a boolean',
    'zerverless.yaml:16:42: spec.functions[1].timeout: must be at most 1h (3600000 ms)',
    'zerverless.yaml:17:42: spec.functions[2].timeout: must be at least 1 ms',
  ]);
});

test('paths that leave the repository lexically', () => {
  assert.deepEqual(errors(`${HEAD}    - path: /a
      runtime: python
      codeFile: ../../etc/passwd
    - path: /b
      runtime: docker
      dockerfile: /abs/Dockerfile
      context: a\\b
  static:
    dir: ../outside
`), [
    'zerverless.yaml:9:7: spec.functions[0].codeFile: "../../etc/passwd" leaves the repository (..)',
    'zerverless.yaml:12:7: spec.functions[1].dockerfile: "/abs/Dockerfile" is an absolute path; paths are relative to the repository',
    'zerverless.yaml:13:7: spec.functions[1].context: "a\\b" must use / as separator, not \\',
    'zerverless.yaml:15:5: spec.static.dir: "../outside" leaves the repository (..)',
  ]);
});

test('header, metadata and unknown fields; many errors sorted by line', () => {
  assert.deepEqual(errors(`apiVersion: zerverless.io/v2
kind: App
metadata:
  name: My_App
  namespace: static
  extra: 1
spec:
  functions:
    - { path: /a, runtime: lua, code: x, codefile: y }
  statik: {}
`), [
    'zerverless.yaml:1:1: apiVersion: must be zerverless.io/v1',
    'zerverless.yaml:2:1: kind: must be Application',
    'zerverless.yaml:4:3: metadata.name: "My_App" must be a DNS label: lower-case letters, digits and \'-\', starting and ending with a letter or digit',
    'zerverless.yaml:5:3: metadata.namespace: "static" is reserved (reserved: api, static, healthz, readyz, metrics, ui, hooks)',
    'zerverless.yaml:6:3: metadata.extra: unknown field "extra" (allowed: name, namespace, labels)',
    'zerverless.yaml:9:42: spec.functions[0].codefile: unknown field "codefile" (allowed: path, runtime, code, codeFile, dockerfile, context, timeout, memory, env, envFrom, port, capabilities)',
    'zerverless.yaml:10:3: spec.statik: unknown field "statik" (allowed: source, functions, static)',
  ]);
});

test('missing fields point at their parent; wrong types are named', () => {
  assert.deepEqual(errors(`apiVersion: zerverless.io/v1
kind: Application
metadata:
  namespace: x
spec:
  functions:
    - path: /a
      code: x
    - just a string
  static: ./static
`), [
    'zerverless.yaml:3:1: metadata.name: is required',
    'zerverless.yaml:7:7: spec.functions[0].runtime: is required',
    'zerverless.yaml:9:7: spec.functions[1]: must be a mapping (key: value)',
    'zerverless.yaml:10:3: spec.static: must be a mapping (key: value)',
  ]);
  assert.deepEqual(errors(''), ['zerverless.yaml:1:1: the manifest must be a mapping with apiVersion, kind, metadata and spec']);
  assert.deepEqual(errors('- a\n'), ['zerverless.yaml:1:1: the manifest must be a mapping with apiVersion, kind, metadata and spec']);
});

test('file name is used in diagnostics; codeFile extension mismatch is a warning', () => {
  assert.match(errors('kind: [')[0] ?? '', /^zerverless\.yaml:/);
  const r = parseManifest(`${HEAD}    - { path: /a, runtime: python, codeFile: a.js }\n`, 'sub/zerverless.yml');
  assert.ok(!('errors' in r));
  assert.deepEqual(r.warnings.map(formatDiagnostic).filter((w) => !w.includes('namespace is not set')), [
    'sub/zerverless.yml:7:36: spec.functions[0].codeFile: "a.js" does not look like python code (expected .py)',
  ]);
});

test('a manifest without metadata.namespace is valid, with a warning that says what it means', () => {
  const r = parseManifest('apiVersion: zerverless.io/v1\nkind: Application\nmetadata:\n  name: site\nspec:\n  static: {dir: public}\n');
  assert.ok(!('errors' in r));
  assert.deepEqual(r.warnings.map(formatDiagnostic), [
    'zerverless.yaml:3:1: metadata: namespace is not set: the application is served in the namespace it is registered in (set metadata.namespace to refuse registrations in any other)',
  ]);
});
