// findServiceSpecs and the apps validator against real temp directories: spec file precedence,
// folders without a spec, duplicate names, depends_on cycles (errors) and unknown names (warnings), symlinks out of the tree, and
// `zerverless validate` on a tree with a broken spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatDiagnostic } from '../../core/desired.js';
import { runValidate } from '../../cli/validate.js';
import { findServiceSpecs as findIn, validateTree } from './index.js';
import { FsSnapshot } from '../fs-snapshot.js';

const findServiceSpecs = (dir: string, appsDir?: string) => findIn(new FsSnapshot(dir), appsDir);

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'zv-apps-'));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const erl = (name: string, extra = ''): string => `#{name => ${name}, version => <<"1.0.0">>, source => #{type => npm}${extra}}.\n`;
const yaml = (name: string, extra = ''): string => `name: ${name}\nversion: "1.0.0"\nsource: {type: npm}\n${extra}`;

test('every subfolder gives one spec; the first spec file in precedence order wins', async () => {
  const order = ['app.config', 'app.yaml', 'app.yml', 'app.json', 'config.yaml', 'config.yml', 'config.json', 'config'];
  const files: Record<string, string> = {};
  // Folder i holds the files order[i..]: order[i] must win (the others would fail to parse).
  order.forEach((_, i) => {
    for (const f of order.slice(i)) files[`apps/s${i}/${f}`] = 'not a spec';
    const name = `s${i}`;
    const first = order[i] as string;
    files[`apps/s${i}/${first}`] = first.endsWith('.json')
      ? JSON.stringify({ name, version: '1.0.0', source: { type: 'npm' } })
      : first.endsWith('.yaml') || first.endsWith('.yml') ? yaml(name) : erl(name);
  });
  const r = await findServiceSpecs(tree(files));
  assert.deepEqual(r.errors.map(formatDiagnostic), []);
  assert.deepEqual(r.warnings, []);
  assert.equal(r.found, true);
  assert.deepEqual(r.specs.map((s) => s.file), order.map((f, i) => `apps/s${i}/${f}`));
  assert.deepEqual(r.specs.map((s) => s.name), order.map((_, i) => `s${i}`));
});

test('no apps folder; a folder without a spec; files and dot-folders ignored; a custom apps dir', async () => {
  assert.deepEqual(await findServiceSpecs(tree({ 'README.md': '' })), { found: false, specs: [], locations: new Map(), errors: [], warnings: [] });
  const dir = tree({
    'apps/web/app.yaml': yaml('web'),
    'apps/docs/README.md': 'no spec here',
    'apps/notes.txt': '',
    'apps/.git/config': 'not a spec',
    'apps/web2/config/app.config': erl('nested'), // a folder named config is not the `config` file
    'deploy/services/api/config': erl('api'),
  });
  const r = await findServiceSpecs(dir);
  assert.deepEqual(r.specs.map((s) => s.name), ['web']);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings.map(formatDiagnostic), [
    'apps/docs:1:1: has no service spec (app.config, app.yaml, app.yml, app.json, config.yaml, config.yml, config.json, config); folder skipped',
    'apps/web2:1:1: has no service spec (app.config, app.yaml, app.yml, app.json, config.yaml, config.yml, config.json, config); folder skipped',
  ]);
  const custom = await findServiceSpecs(dir, 'deploy/services');
  assert.deepEqual(custom.specs.map((s) => [s.name, s.file]), [['api', 'deploy/services/api/config']]);
  assert.deepEqual((await findServiceSpecs(dir, '../x')).errors.map(formatDiagnostic), ['../x:1:1: apps folder: "../x" leaves the repository (..)']);
});

test('parse errors with positions, duplicate names, unknown-field warnings', async () => {
  const r = await findServiceSpecs(tree({
    'apps/a/app.config': erl('web'),
    'apps/b/app.yaml': yaml('web', 'replicas: 2\n'),
    'apps/c/app.json': '{"name": "c", "version": 2, "source": {"type": "hex"}}',
  }));
  assert.deepEqual(r.specs.map((s) => s.file), ['apps/a/app.config']);
  assert.deepEqual(r.errors.map(formatDiagnostic), [
    'apps/b/app.yaml:1:1: name: "web" is already the name of the service in apps/a/app.config',
    'apps/c/app.json:1:15: version: must be a string (this reads as the number 2): write it in quotes, e.g. "1.0.0"',
    "apps/c/app.json:1:40: source.type: source type 'hex' is not supported (Erlang/hex packages cannot run on the Node runtime)",
  ]);
  assert.deepEqual(r.warnings.map(formatDiagnostic), ['apps/b/app.yaml:4:1: replicas: unknown field "replicas" (ignored)']);
});

test('depends_on: a cycle is an error, a dependency no spec declares a warning (bc_gitops), with positions', async () => {
  const ok = await findServiceSpecs(tree({
    'apps/web/app.config': erl('web', ', depends_on => [api]'),
    'apps/api/app.config': erl('api'),
  }));
  assert.deepEqual(ok.errors, []);
  const cycle = await findServiceSpecs(tree({
    'apps/a/app.config': erl('a', ',\n  depends_on => [b]'),
    'apps/b/app.yaml': yaml('b', 'depends_on: [a]\n'),
    'apps/c/app.config': erl('c', ', depends_on => [nope]'),
  }));
  assert.deepEqual(cycle.errors.map(formatDiagnostic), ['apps/a/app.config:2:18: depends_on: cycle a → b → a']);
  const unknown = await findServiceSpecs(tree({
    'apps/web/app.config': erl('web', ', depends_on => [api, nope]'),
    'apps/api/app.yaml': yaml('api', 'depends_on: [gone]\n'),
  }));
  assert.deepEqual(unknown.errors, []);
  assert.deepEqual(unknown.specs.map((s) => [s.name, s.dependsOn]), [['api', ['gone']], ['web', ['api', 'nope']]]);
  assert.deepEqual(unknown.warnings.map(formatDiagnostic), [
    'apps/api/app.yaml:4:14: depends_on: api depends on "gone", which no service spec declares (ignored)',
    'apps/web/app.config:1:86: depends_on: web depends on "nope", which no service spec declares (ignored)',
  ]);
  // A spec that failed to parse may be the missing name: the missing-dependency warning waits.
  const broken = await findServiceSpecs(tree({
    'apps/web/app.config': erl('web', ', depends_on => [db]'),
    'apps/db/app.config': '#{name => db',
  }));
  assert.deepEqual(broken.errors.map(formatDiagnostic), ["apps/db/app.config:1:1: unterminated map: expected '}'"]);
});

test('symlinks that leave the tree are errors; inside the tree they are followed', async () => {
  const outside = tree({ 'evil/app.config': erl('evil'), 'spec.config': erl('leak') });
  const dir = tree({ 'apps/web/app.yaml': yaml('web'), 'shared/api/app.config': erl('api') });
  symlinkSync(join(outside, 'evil'), join(dir, 'apps/evil'));
  mkdirSync(join(dir, 'apps/leak'));
  symlinkSync(join(outside, 'spec.config'), join(dir, 'apps/leak/app.config'));
  // Links inside the tree are relative (a commit's absolute link cannot point into its own tree).
  symlinkSync('../shared/api', join(dir, 'apps/api'));
  mkdirSync(join(dir, 'apps/dangling'));
  symlinkSync('../../nowhere.config', join(dir, 'apps/dangling/app.config'));
  const r = await findServiceSpecs(dir);
  assert.deepEqual(r.specs.map((s) => [s.name, s.file]), [['api', 'apps/api/app.config'], ['web', 'apps/web/app.yaml']]);
  assert.deepEqual(r.errors.map(formatDiagnostic), [
    'apps/dangling/app.config:1:1: is a symlink to a missing file',
    'apps/evil:1:1: resolves outside the repository',
    'apps/leak/app.config:1:1: resolves outside the repository',
  ]);
  const out = tree({ 'README.md': '' });
  symlinkSync(join(outside, 'evil'), join(out, 'apps'));
  const esc = await findServiceSpecs(out);
  assert.deepEqual([esc.found, esc.errors.map(formatDiagnostic)], [true, ['apps:1:1: resolves outside the repository']]);
});

test('zerverless validate reports spec errors as file:line:col and exits 1; warnings apart', async () => {
  const dir = tree({
    'apps/web/app.config': `#{
    name => web,
    version => <<"1.0.0">>,
    source => #{type => hex},
    health => #{type => custom},
    depends_on => [db]
}.
`,
    'apps/db/config.yml': yaml('db', 'env: {1x: y}\nextra: true\n'),
    'apps/empty/.keep': '',
  });
  const lines: string[] = [];
  const code = await runValidate(dir, { json: true }, (s) => lines.push(s));
  assert.equal(code, 1);
  const report = JSON.parse(lines.join('\n')) as { valid: boolean; errors: { file: string }[]; warnings: unknown[] };
  assert.equal(report.valid, false);
  const warnings: string[] = [];
  const diags = await validateTree(dir, { onWarning: (w) => warnings.push(formatDiagnostic(w)) });
  assert.deepEqual(diags.map(formatDiagnostic), [
    'apps/db/config.yml:4:7: env["1x"]: "1x" is not a valid environment variable name (letters, digits and _, not starting with a digit)',
    "apps/web/app.config:4:17: source.type: source type 'hex' is not supported (Erlang/hex packages cannot run on the Node runtime)",
    'apps/web/app.config:5:5: health.command: is required for a custom health check (a shell command; exit 0 is healthy)',
  ]);
  assert.deepEqual(report.errors, JSON.parse(JSON.stringify(diags)));
  assert.deepEqual(warnings, [
    'apps/empty:1:1: has no service spec (app.config, app.yaml, app.yml, app.json, config.yaml, config.yml, config.json, config); folder skipped',
  ]);
  // Fixed, it validates (no zerverless.yaml needed when there is an apps folder).
  writeFileSync(join(dir, 'apps/web/app.config'), erl('web', ', depends_on => [db]'));
  writeFileSync(join(dir, 'apps/db/config.yml'), yaml('db'));
  assert.deepEqual(await validateTree(dir), []);
});

test('two services cannot declare one route', async () => {
  const spec = (name: string) => `name: ${name}\nversion: "1"\nsource: {type: npm}\nroute: /web\n`;
  const dir = await tree({ 'apps/a/app.yaml': spec('a'), 'apps/b/app.yaml': spec('b') });
  const r = await findServiceSpecs(dir);
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]?.message ?? '', /already the route of the service in apps\/a\/app\.yaml/);
  assert.equal(r.errors[0]?.file, 'apps/b/app.yaml');
});
