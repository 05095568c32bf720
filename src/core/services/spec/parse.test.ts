// Tests for parseServiceSpec: the PRODUCT.md §8 example, the same spec in all three formats, every
// field rule, and errors and warnings at their line:col with the field named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic } from '../../desired.js';
import type { ServiceSpec } from '../types.js';
import { parseServiceSpec } from './parse.js';
import { specFormat } from './formats.js';

const PRODUCT_EXAMPLE = `#{
    name => my_web_app,
    version => <<"1.0.0">>,
    source => #{type => npm},            %% npm | git | release (hex: refused, named)
    env => #{port => 8080, pool_size => 10},
    health => #{type => http, port => 8080, path => <<"/health">>,
                interval => 30000, timeout => 5000},   %% http | tcp | custom
    depends_on => []
}.
`;

function ok(text: string, file = 'apps/web/app.config'): ServiceSpec {
  const r = parseServiceSpec(text, file);
  if ('errors' in r) return assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  return r.spec;
}

function errors(text: string, file = 'apps/web/app.config'): string[] {
  const r = parseServiceSpec(text, file);
  if (!('errors' in r)) return assert.fail(`expected errors, got ${JSON.stringify(r.spec)}`);
  return r.errors.map(formatDiagnostic);
}

function warnings(text: string, file = 'apps/web/app.config'): string[] {
  const r = parseServiceSpec(text, file);
  if ('errors' in r) return assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  return r.warnings.map(formatDiagnostic);
}

test('the PRODUCT.md §8 app.config parses to the expected ServiceSpec', () => {
  const r = parseServiceSpec(PRODUCT_EXAMPLE, 'apps/my_web_app/app.config');
  if ('errors' in r) return assert.fail(r.errors.map(formatDiagnostic).join('\n'));
  assert.deepEqual(r.spec, {
    name: 'my_web_app',
    version: '1.0.0',
    source: { type: 'npm' },
    env: { PORT: '8080', POOL_SIZE: '10' },
    health: { type: 'http', port: 8080, path: '/health', interval: 30000, timeout: 5000 },
    dependsOn: [],
    route: null,
    port: 8080,
    file: 'apps/my_web_app/app.config',
  });
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(r.locations.name, { line: 2, col: 5 });
  assert.deepEqual(r.locations.depends_on, { line: 8, col: 5 });
  assert.equal(r.locations.route, undefined);
});

const YAML_FORM = `# the same spec
name: my_web_app
version: "1.0.0"
source: { type: npm }
env:
  port: 8080
  pool_size: 10
health:
  type: http
  port: 8080
  path: /health
  interval: 30000
  timeout: 5000
depends_on: []
`;

const JSON_FORM = `{
  "name": "my_web_app",
  "version": "1.0.0",
  "source": { "type": "npm" },
  "env": { "port": 8080, "pool_size": 10 },
  "health": { "type": "http", "port": 8080, "path": "/health", "interval": 30000, "timeout": 5000 },
  "depends_on": []
}
`;

test('YAML, JSON and Erlang forms of the same spec give equal ServiceSpecs', () => {
  const file = 'apps/my_web_app/spec';
  const erl = ok(PRODUCT_EXAMPLE, `${file}.config`);
  const yaml = ok(YAML_FORM, `${file}.yaml`);
  const json = ok(JSON_FORM, `${file}.json`);
  assert.deepEqual({ ...yaml, file }, { ...erl, file });
  assert.deepEqual({ ...json, file }, { ...erl, file });
  assert.deepEqual(ok(YAML_FORM.replace('version: "1.0.0"', "version: '1.0.0'"), 'x.yml'), { ...yaml, file: 'x.yml' });
});

test('format by file name', () => {
  assert.deepEqual(['a/app.config', 'a/config', 'a/app.yaml', 'a/config.yml', 'a/app.json', 'a/CONFIG.JSON'].map(specFormat),
    ['erlang', 'erlang', 'yaml', 'yaml', 'json', 'json']);
});

test('sources: npm package, git ref and its aliases, release sha256', () => {
  const base = (src: string): string => `#{name => svc, version => "2.0.0", source => ${src}}.`;
  assert.deepEqual(ok(base('#{type => npm, package => <<"@scope/svc">>}')).source, { type: 'npm', package: '@scope/svc' });
  assert.deepEqual(ok(base('#{type => git, url => <<"https://git.example/svc.git">>, ref => <<"v2.0.0">>}')).source,
    { type: 'git', url: 'https://git.example/svc.git', ref: 'v2.0.0' });
  assert.deepEqual(ok(base('#{type => git, url => "u", branch => main}')).source, { type: 'git', url: 'u', ref: 'main' });
  assert.deepEqual(ok(base('#{type => git, url => "u", tag => \'v1\'}')).source, { type: 'git', url: 'u', ref: 'v1' });
  const sha = 'AB'.repeat(32);
  assert.deepEqual(ok(base(`#{type => release, url => <<"https://x.example/svc-2.0.0.tgz">>, sha256 => <<"${sha}">>}`)).source,
    { type: 'release', url: 'https://x.example/svc-2.0.0.tgz', sha256: 'ab'.repeat(32) });
  assert.deepEqual(errors(base('#{type => git, url => "u", ref => a, branch => b}')), [
    'apps/web/app.config:1:83: source.branch: give one of ref, branch or tag, not both ref and branch',
  ]);
  assert.deepEqual(errors(base('#{type => git, url => "u"}')), [
    'apps/web/app.config:1:36: source: a git source needs ref (a branch, tag or commit; branch or tag also work)',
  ]);
  assert.deepEqual(errors(base('#{type => release, url => "ftp://x/y.tgz", sha256 => "abc"}')), [
    'apps/web/app.config:1:65: source.url: "ftp://x/y.tgz" must be an http:// or https:// URL of a .tgz',
    'apps/web/app.config:1:89: source.sha256: must be the 64 hexadecimal characters of the tarball\'s sha256',
  ]);
  assert.deepEqual(errors(base('#{type => release}')), [
    'apps/web/app.config:1:36: source.sha256: is required for a release source',
    'apps/web/app.config:1:36: source.url: is required for a release source',
  ]);
  assert.deepEqual(warnings(base('#{type => npm, url => "u", sha256 => undefined}')), [
    'apps/web/app.config:1:61: source.url: is not used by a npm source (ignored)',
  ]);
});

test('hex is refused by name, also in YAML', () => {
  assert.deepEqual(errors('#{name => a, version => <<"1">>,\n  source => #{type => hex}}.'), [
    "apps/web/app.config:2:15: source.type: source type 'hex' is not supported (Erlang/hex packages cannot run on the Node runtime)",
  ]);
  assert.deepEqual(errors('name: a\nversion: "1"\nsource:\n  type: hex\n', 'apps/a/app.yaml'), [
    "apps/a/app.yaml:4:3: source.type: source type 'hex' is not supported (Erlang/hex packages cannot run on the Node runtime)",
  ]);
  assert.deepEqual(errors('#{name => a, version => <<"1">>, source => #{type => docker}}.'), [
    'apps/web/app.config:1:46: source.type: "docker" must be one of npm, git, release',
  ]);
});

test('mesh (a bc_gitops source type) is refused by name, in Erlang terms and YAML', () => {
  const mesh = "source.type: source type 'mesh' is not supported (bc_gitops mesh sources are fetched from a Macula mesh, which zerverless does not join: use npm, git or release)";
  assert.deepEqual(errors('#{name => a, version => <<"1">>,\n  source => #{type => mesh}}.'), [`apps/web/app.config:2:15: ${mesh}`]);
  assert.deepEqual(errors('name: a\nversion: "1"\nsource:\n  type: mesh\n', 'apps/a/app.yaml'), [`apps/a/app.yaml:4:3: ${mesh}`]);
  assert.deepEqual(errors('{"name": "a", "version": "1", "source": {"type": "mesh"}}', 'apps/a/app.json'), [`apps/a/app.json:1:42: ${mesh}`]);
});

test('a sha256 on a source that is not a release is ignored with a warning (bc_gitops), whatever its form', () => {
  const e = ok('#{name => a, version => "1",\n  source => #{type => git, url => "u", ref => main, sha256 => <<"not hex">>}}.');
  assert.deepEqual(e.source, { type: 'git', url: 'u', ref: 'main' });
  assert.deepEqual(warnings('#{name => a, version => "1",\n  source => #{type => git, url => "u", ref => main, sha256 => <<"not hex">>}}.'), [
    'apps/web/app.config:2:53: source.sha256: is not used by a git source (ignored)',
  ]);
  const yamlSpec = 'name: a\nversion: "1"\nsource:\n  type: npm\n  sha256: 42\n';
  assert.deepEqual(ok(yamlSpec, 'apps/a/app.yaml').source, { type: 'npm' });
  assert.deepEqual(warnings(yamlSpec, 'apps/a/app.yaml'), ['apps/a/app.yaml:5:3: source.sha256: is not used by a npm source (ignored)']);
  // On a release it is still checked.
  assert.deepEqual(errors('name: a\nversion: "1"\nsource: {type: release, url: "https://x/a.tgz", sha256: abc}\n', 'apps/a/app.yaml'), [
    "apps/a/app.yaml:3:49: source.sha256: must be the 64 hexadecimal characters of the tarball's sha256",
  ]);
});

test('env: a list or map value (bc_gitops specs carry them) is passed as its JSON text', () => {
  const erlang = ok('#{name => a, version => "1", source => #{type => npm},\n  env => #{hosts => [<<"a">>, "b", c, 1], db => #{host => <<"x">>, port => 5432}, pair => {k, 1}, none => []}}.');
  assert.deepEqual(erlang.env, { HOSTS: '["a","b","c",1]', DB: '{"host":"x","port":5432}', PAIR: '["k",1]', NONE: '[]' });
  const yamlSpec = ok('name: a\nversion: "1"\nsource: {type: npm}\nenv:\n  hosts: [a, b]\n  db: {host: x, port: 5432}\n', 'apps/a/app.yaml');
  assert.deepEqual(yamlSpec.env, { HOSTS: '["a","b"]', DB: '{"host":"x","port":5432}' });
  const json = ok('{"name": "a", "version": "1", "source": {"type": "npm"}, "env": {"opts": {"a": [1, true]}}}', 'apps/a/app.json');
  assert.deepEqual(json.env, { OPTS: '{"a":[1,true]}' });
  assert.deepEqual(warnings('name: a\nversion: "1"\nsource: {type: npm}\nenv:\n  hosts: [a, b]\n', 'apps/a/app.yaml'), []);
});

test('missing name, version and source, wrong types, with positions', () => {
  assert.deepEqual(errors('%% header\n#{\n  env => #{}\n}.'), [
    'apps/web/app.config:2:1: name: is required',
    'apps/web/app.config:2:1: source: is required: a map with type npm, git or release',
    'apps/web/app.config:2:1: version: is required',
  ]);
  assert.deepEqual(errors('name: web\nversion: 1.0\nsource: {type: npm}\n', 'apps/web/app.yaml'), [
    'apps/web/app.yaml:2:1: version: must be a string (this reads as the number 1): write it in quotes, e.g. "1.0.0"',
  ]);
  assert.deepEqual(errors('{"name": "Web App", "version": "", "source": {"type": "npm"}, "depends_on": "db"}', 'apps/w/app.json'), [
    'apps/w/app.json:1:2: name: "Web App" is not a valid service name (lower-case letters, digits, \'_\' and \'-\', starting and ending with a letter or digit)',
    'apps/w/app.json:1:21: version: must not be empty',
    'apps/w/app.json:1:63: depends_on: must be a list',
  ]);
  assert.deepEqual(errors('[1, 2].'), ['apps/web/app.config:1:1: the spec must be a map with name, version and source']);
  assert.deepEqual(errors('', 'a/app.yaml'), ['a/app.yaml:1:1: the spec must be a map with name, version and source']);
});

test('env: keys upper-cased, values stringified, bad names and clashes', () => {
  const spec = ok('#{name => a, version => "1", source => #{type => npm},\n  env => #{pool_size => 10, <<"Debug">> => true, ratio => 0.5, url => <<"http://x">>}}.');
  assert.deepEqual(spec.env, { POOL_SIZE: '10', DEBUG: 'true', RATIO: '0.5', URL: 'http://x' });
  assert.equal(spec.port, null);
  assert.deepEqual(errors('#{name => a, version => "1", source => #{type => npm},\n  env => #{\'log-level\' => x, path => <<"a">>, \'PATH\' => b, list => [1]}}.'), [
    'apps/web/app.config:2:12: env.log-level: "log-level" is not a valid environment variable name (letters, digits and _, not starting with a digit)',
    'apps/web/app.config:2:47: env.PATH: is the same variable as env.path once upper-cased (PATH)',
  ]);
});

test('port pinning: port, env port, both agreeing or not', () => {
  const head = '#{name => a, version => "1", source => #{type => npm}';
  assert.equal(ok(`${head}, port => 3000}.`).port, 3000);
  assert.equal(ok(`${head}, env => #{'PORT' => <<"4000">>}}.`).port, 4000);
  assert.equal(ok(`${head}, port => 4000, env => #{port => 4000}}.`).port, 4000);
  assert.deepEqual(errors(`${head}, port => 4000, env => #{port => 5000}}.`), [
    'apps/web/app.config:1:56: port: is 4000 but env.port is 5000; give one port',
  ]);
  assert.deepEqual(errors(`${head}, port => 70000, env => #{port => <<"http">>}}.`), [
    'apps/web/app.config:1:56: port: must be at most 65535',
    'apps/web/app.config:1:80: env.port: "http" is not a port number (1 to 65535); env PORT pins the service\'s port',
  ]);
});

test('health: defaults, types, durations, custom needs command', () => {
  const head = 'name: a\nversion: "1"\nsource: {type: npm}\n';
  const h = (body: string): ServiceSpec['health'] => ok(`${head}health: ${body}\n`, 'a/app.yaml').health;
  assert.deepEqual(h('{}'), { type: 'http', path: '/', interval: 30000, timeout: 5000 });
  assert.deepEqual(h('{type: tcp, port: 5432, interval: 10s, timeout: 500ms}'), { type: 'tcp', port: 5432, interval: 10000, timeout: 500 });
  assert.deepEqual(h('{type: custom, command: "curl -f localhost", interval: 1m}'), { type: 'custom', command: 'curl -f localhost', interval: 60000, timeout: 5000 });
  assert.equal(ok(`${head}health: ~\n`, 'a/app.yaml').health, null);
  assert.equal(ok('#{name => a, version => "1", source => #{type => npm}, health => undefined}.').health, null);
  assert.deepEqual(errors(`${head}health:\n  type: custom\n  module: my_check\n  interval: soon\n  timeout: 0\n  path: health\n`, 'a/app.yaml'), [
    'a/app.yaml:4:1: health.command: is required for a custom health check (a shell command; exit 0 is healthy)',
    'a/app.yaml:7:3: health.interval: "soon" is not a duration; use 500ms, 30s, 5m, 1h or a number of milliseconds',
    'a/app.yaml:8:3: health.timeout: must be at least 1 ms',
    'a/app.yaml:9:3: health.path: "health" must start with /',
  ]);
  assert.deepEqual(errors(`${head}health: {type: grpc, interval: 0s}\n`, 'a/app.yaml'), [
    'a/app.yaml:4:10: health.type: "grpc" must be one of http, tcp, custom',
    'a/app.yaml:4:22: health.interval: must be at least 1 ms',
  ]);
  assert.deepEqual(warnings(`${head}health: {type: tcp, path: /x, command: "true", module: m}\n`, 'a/app.yaml'), [
    'a/app.yaml:4:21: health.path: is only used by http checks (ignored for tcp)',
    'a/app.yaml:4:31: health.command: is only used by custom checks (ignored for tcp)',
  ]);
});

test('depends_on, route, unknown fields as warnings, bc_gitops extras accepted', () => {
  const spec = ok(`#{name => web, version => "1", source => #{type => npm},
  depends_on => [db, <<"cache">>], route => <<"/app">>, description => <<"The web app">>, icon => #{type => identicon}}.`);
  assert.deepEqual(spec.dependsOn, ['db', 'cache']);
  assert.equal(spec.route, '/app');
  assert.deepEqual(errors('#{name => web, version => "1", source => #{type => npm}, route => <<"/a/../b">>, depends_on => [db, db, \'Bad\']}.'), [
    'apps/web/app.config:1:58: route: "/a/../b" must not contain a .. segment',
    'apps/web/app.config:1:101: depends_on[1]: "db" is listed twice (also item 0)',
    'apps/web/app.config:1:105: depends_on[2]: "Bad" is not a valid service name (lower-case letters, digits, \'_\' and \'-\', starting and ending with a letter or digit)',
  ]);
  assert.deepEqual(warnings('name: web\nversion: "1"\nsource: {type: npm, extra: 1}\nreplicas: 3\nhealth: {timeout: 10}\n', 'a/app.yaml'), [
    'a/app.yaml:3:21: source.extra: unknown field "extra" (ignored)',
    'a/app.yaml:4:1: replicas: unknown field "replicas" (ignored)',
  ]);
});

test('syntax errors of each format keep their line:col', () => {
  assert.deepEqual(errors('#{\n  name => web\n  version => <<"1">>\n}.'), ["apps/web/app.config:3:3: expected ',' or '}' in map, found 'version'"]);
  assert.deepEqual(errors('name: a\nversion: "1\n', 'a/app.yml'), ['a/app.yml:3:1: invalid YAML: Missing closing "quote']);
  assert.deepEqual(errors('{\n  "name": "a",\n  "version": "1",\n}\n', 'a/app.json'), ['a/app.json:4:1: invalid JSON: Expected double-quoted property name']);
  assert.deepEqual(errors('{\n  "name": tru\n}', 'a/app.json'), ["a/app.json:2:14: invalid JSON: Unexpected token '\\n'"]);
  assert.deepEqual(errors('{"name": "a"', 'a/app.json'), ["a/app.json:1:13: invalid JSON: Expected ',' or '}' after property value"]);
  assert.deepEqual(errors('{"name": "a"} x', 'a/app.json'), ['a/app.json:1:15: invalid JSON: Unexpected non-whitespace character after JSON']);
  assert.deepEqual(errors('{"name": "a",\n "name": "b"}', 'a/app.json'), ['a/app.json:2:2: invalid JSON: duplicate key']);
});
