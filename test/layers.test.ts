// The layer rules of eslint.config.js (docs/architecture.md, "Layers"): a wrong-way import is reported
// in every layer, the right-way ones are not, every folder of src/ has a rule, and each known
// violation allowed in one file is still needed there. The expectations below are written out here,
// not derived from the config, so that an edit that drops or widens a rule fails this test.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CONFIG = join(ROOT, 'eslint.config.js');
const RULE = 'no-restricted-imports';

interface LayerConfig {
  LAYERS: Record<string, { may: string[] }>;
  ROOTS: string[];
  KNOWN_VIOLATIONS: { file: string; mayUse?: string[]; typesFrom?: string[]; why: string }[];
}

let eslint: ESLint;
let config: LayerConfig;

before(async () => {
  eslint = new ESLint({ cwd: ROOT, overrideConfigFile: CONFIG });
  const url = pathToFileURL(CONFIG).href;
  config = (await import(url)) as LayerConfig;
});

type Kind = 'value' | 'type';

/** The restricted-import messages for one import written in a file at `file` (path under the repo). */
async function restricted(file: string, spec: string, kind: Kind = 'value'): Promise<string[]> {
  const code = kind === 'type'
    ? `import type { X } from '${spec}';\nexport type { X };\n`
    : `import { x } from '${spec}';\nexport { x };\n`;
  return lintRestricted(code, file);
}

async function lintRestricted(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  assert.ok(result, file);
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

// [file, import, kind]: each must be reported.
const WRONG_WAY: [string, string, Kind?][] = [
  // core: nothing but core, no I/O
  ['src/core/x.ts', 'node:fs'],
  ['src/core/x.ts', 'hono'],
  ['src/core/x.ts', '../errors/registry.js'],
  ['src/core/x.ts', '../telemetry/log.js'],
  ['src/core/x.ts', '../store/types.js', 'type'],
  ['src/core/plan/x.ts', '../../apply/functions.js'],
  ['src/core/services/spec/x.ts', '../../../sources/tree/apps.js'],
  ['src/core/x.ts', '../runtimes/types.js', 'type'],
  ['src/core/x.ts', '../gitops/facade.js'],
  ['src/core/x.test.ts', '../runtimes/lua/index.js'],
  ['src/core/x.test.ts', '../store/sqlite/store.js'],
  // errors, telemetry, native, secrets
  ['src/errors/x.ts', '../telemetry/log.js'],
  ['src/errors/x.ts', '../gateway/http.js'],
  ['src/telemetry/x.ts', '../store/types.js', 'type'],
  ['src/telemetry/x.ts', '../reconciler/reconciler.js'],
  ['src/native/x.ts', '../errors/registry.js'],
  ['src/secrets/x.ts', '../store/types.js', 'type'],
  ['src/secrets/x.ts', '../sources/tree/read.js'],
  // sources: never runtimes, store, apply, reconciler, gateway, api, server, cli
  ['src/sources/tree/x.ts', '../../runtimes/types.js', 'type'],
  ['src/sources/tree/x.ts', '../../runtimes/docker/index.js'],
  ['src/sources/git/x.ts', '../../store/types.js', 'type'],
  ['src/sources/git/x.ts', '../../store/sqlite/store.js'],
  ['src/sources/x.ts', '../apply/functions.js'],
  ['src/sources/x.ts', '../reconciler/reconciler.js', 'type'],
  ['src/sources/x.ts', '../serving/table.js'],
  ['src/sources/x.ts', '../gateway/http.js'],
  ['src/sources/x.ts', '../api/index.js'],
  ['src/sources/x.ts', '../server/server.js'],
  ['src/sources/x.ts', '../cli/main.js'],
  ['src/sources/x.ts', '../credentials/service.js'],
  // runtimes (incl. node-service): never sources, store, serving, apply, reconciler, gateway, api, server, cli
  ['src/runtimes/docker/x.ts', '../../sources/tree/context.js'],
  ['src/runtimes/node-service/x.ts', '../../sources/git/exec.js'],
  ['src/runtimes/x.ts', '../sources/types.js', 'type'],
  ['src/runtimes/lua/x.ts', '../../store/types.js', 'type'],
  ['src/runtimes/x.ts', '../serving/drain.js'],
  ['src/runtimes/x.ts', '../apply/functions.js'],
  ['src/runtimes/x.ts', '../reconciler/reconciler.js'],
  ['src/runtimes/x.ts', '../gateway/proxy.js'],
  ['src/runtimes/x.ts', '../api/index.js'],
  ['src/runtimes/node-service/x.ts', '../../server/server.js'],
  ['src/runtimes/x.ts', '../cli/main.js'],
  // store: core, errors (and the native loader) only
  ['src/store/sqlite/x.ts', '../../sources/types.js', 'type'],
  ['src/store/x.ts', '../runtimes/types.js', 'type'],
  ['src/store/x.ts', '../apply/functions.js'],
  ['src/store/x.ts', '../reconciler/reconciler.js'],
  ['src/store/x.ts', '../telemetry/log.js'],
  ['src/store/x.ts', '../gateway/http.js'],
  // serving: never apply, reconciler, gateway, api; runtimes only as types
  ['src/serving/x.ts', '../apply/functions.js'],
  ['src/serving/x.ts', '../reconciler/reconciler.js'],
  ['src/serving/x.ts', '../gateway/http.js'],
  ['src/serving/x.ts', '../api/index.js'],
  ['src/serving/x.ts', '../runtimes/types.js'],
  ['src/serving/x.ts', '../runtimes/lua/index.js'],
  // apply: never reconciler, gateway, api, server, cli, sources (but its port's types); store only as types
  ['src/apply/x.ts', '../reconciler/reconciler.js'],
  ['src/apply/x.ts', '../reconciler/sync.js', 'type'],
  ['src/apply/services/x.ts', '../../reconciler/reconciler.js', 'type'],
  ['src/apply/x.ts', '../gateway/http.js'],
  ['src/apply/x.ts', '../api/index.js'],
  ['src/apply/x.ts', '../server/server.js'],
  ['src/apply/x.ts', '../cli/main.js'],
  ['src/apply/x.ts', '../gitops/facade.js'],
  ['src/apply/x.ts', '../sources/git/index.js'],
  ['src/apply/x.ts', '../sources/tree/index.js', 'type'],
  ['src/apply/x.ts', '../store/types.js'],
  ['src/apply/x.ts', '../store/sqlite/store.js', 'type'],
  ['src/apply/x.ts', '../runtimes/lua/index.js'],
  // reconciler: never gateway, api, server, cli; sources, store and runtimes only through their ports' types
  ['src/reconciler/x.ts', '../gateway/http.js'],
  ['src/reconciler/x.ts', '../api/index.js'],
  ['src/reconciler/x.ts', '../server/server.js'],
  ['src/reconciler/x.ts', '../cli/main.js'],
  ['src/reconciler/x.ts', '../gitops/facade.js'],
  ['src/reconciler/x.ts', '../sources/git/index.js'],
  ['src/reconciler/x.ts', '../sources/git/verify-policy.js'],
  ['src/reconciler/x.ts', '../store/sqlite/store.js'],
  ['src/reconciler/x.ts', '../runtimes/docker/index.js'],
  // gateway: never reconciler, apply, api, store (but the BlobStore type), sources
  ['src/gateway/x.ts', '../reconciler/reconciler.js'],
  ['src/gateway/x.ts', '../reconciler/reconciler.js', 'type'],
  ['src/gateway/x.ts', '../apply/functions.js'],
  ['src/gateway/x.ts', '../api/index.js'],
  ['src/gateway/x.ts', '../store/sqlite/store.js'],
  ['src/gateway/x.ts', '../store/types.js'],
  ['src/gateway/x.ts', '../sources/types.js', 'type'],
  ['src/gateway/x.ts', '../runtimes/docker/index.js'],
  ['src/gateway/x.ts', '../server/server.js'],
  // api: never gateway; the reconciler only through its public type; the store only as types
  ['src/api/x.ts', '../gateway/http.js'],
  ['src/api/x.ts', '../gateway/static.js', 'type'],
  ['src/api/x.ts', '../reconciler/reconciler.js'],
  ['src/api/x.ts', '../reconciler/poller.js', 'type'],
  ['src/api/x.ts', '../apply/functions.js'],
  ['src/api/x.ts', '../store/sqlite/store.js'],
  ['src/api/x.ts', '../server/server.js'],
  // hooks: verify and match, then call back; never the reconciler itself, the store or the API
  ['src/hooks/x.ts', '../reconciler/reconciler.js'],
  ['src/hooks/x.ts', '../store/sqlite/store.js'],
  ['src/hooks/x.ts', '../api/index.js'],
  ['src/hooks/x.ts', '../gateway/http.js'],
  ['src/hooks/x.ts', '../credentials/service.js'],
  ['src/api/x.ts', '../sources/git/index.js'],
  // auth, credentials
  ['src/auth/x.ts', '../api/guard.js'],
  ['src/auth/x.ts', '../store/sqlite/store.js'],
  ['src/credentials/x.ts', '../sources/git/index.js'],
  ['src/credentials/x.ts', '../api/credentials.js'],
];

// [file, import, kind]: each must pass.
const RIGHT_WAY: [string, string, Kind?][] = [
  ['src/core/plan/x.ts', '../desired.js'],
  ['src/core/x.test.ts', 'node:test'],
  ['src/errors/x.ts', '../core/names.js'],
  ['src/sources/tree/x.ts', '../../core/desired.js'],
  ['src/sources/tree/x.ts', '../../secrets/keyring-formats.js'],
  ['src/sources/git/x.ts', '../../telemetry/events.js'],
  ['src/runtimes/docker/x.ts', '../../core/desired.js'],
  ['src/runtimes/docker/x.ts', '../../telemetry/log.js'],
  ['src/runtimes/js/x.ts', '../../native/lines.js'],
  ['src/store/sqlite/x.ts', '../../native/lines.js'],
  ['src/serving/x.ts', '../runtimes/types.js', 'type'],
  ['src/apply/x.ts', '../serving/drain.js'],
  ['src/apply/x.ts', '../store/types.js', 'type'],
  ['src/apply/x.ts', '../runtimes/types.js', 'type'],
  ['src/apply/x.ts', '../sources/types.js', 'type'],
  ['src/apply/services/x.ts', '../../core/services/types.js', 'type'],
  ['src/reconciler/x.ts', '../apply/functions.js'],
  ['src/reconciler/x.ts', '../apply/services/host.js'],
  ['src/reconciler/x.ts', '../serving/table.js'],
  ['src/reconciler/x.ts', '../sources/types.js', 'type'],
  ['src/reconciler/x.ts', '../store/types.js', 'type'],
  ['src/gateway/x.ts', '../serving/table.js'],
  ['src/gateway/x.ts', '../store/types.js', 'type'],
  ['src/gateway/x.ts', '../runtimes/types.js', 'type'],
  ['src/gateway/x.ts', '../runtimes/response-cap.js'],
  ['src/gateway/x.ts', '../errors/respond.js'],
  ['src/api/x.ts', '../reconciler/reconciler.js', 'type'],
  ['src/api/x.ts', '../auth/tokens.js'],
  ['src/api/x.ts', '../credentials/service.js'],
  ['src/api/x.ts', '../store/types.js', 'type'],
  ['src/hooks/x.ts', '../store/types.js', 'type'],
  ['src/hooks/x.ts', '../reconciler/reconciler.js', 'type'],
  ['src/hooks/x.ts', '../telemetry/metrics.js'],
  ['src/hooks/x.ts', '../errors/respond.js'],
  // composition roots import anything
  ['src/server/x.ts', '../gateway/http.js'],
  ['src/server/x.ts', '../store/sqlite/store.js'],
  ['src/gitops/x.ts', '../sources/git/index.js'],
  ['src/gitops/x.ts', '../apply/services/applier.js'],
  ['src/cli/x.ts', '../runtimes/lua/index.js'],
  ['src/x.ts', './gitops/facade.js'],
  // tests may cross layers (but core tests, above)
  ['src/gateway/x.test.ts', '../reconciler/reconciler.js'],
  ['src/runtimes/node-service/x.test.ts', '../../sources/git/index.js'],
  ['src/sources/tree/x.test.ts', '../../cli/validate.js'],
  ['test/x.test.ts', '../src/store/sqlite/store.js'],
];

describe('layer rules (eslint.config.js)', () => {
  it('report every wrong-way import', async () => {
    const missed: string[] = [];
    for (const [file, spec, kind] of WRONG_WAY) {
      const found = await restricted(file, spec, kind);
      if (found.length === 0) missed.push(`${file}: ${kind === 'type' ? 'import type' : 'import'} '${spec}'`);
    }
    assert.deepEqual(missed, [], 'wrong-way imports the lint rules let through');
  });

  it('let the right-way imports through', async () => {
    const refused: string[] = [];
    for (const [file, spec, kind] of RIGHT_WAY) {
      const found = await restricted(file, spec, kind);
      if (found.length > 0) refused.push(`${file}: '${spec}': ${found.join(' | ')}`);
    }
    assert.deepEqual(refused, [], 'right-way imports the lint rules refuse');
  });

  it('say in the message what the layer may import', async () => {
    const [message] = await restricted('src/gateway/x.ts', '../reconciler/reconciler.js');
    assert.match(message ?? '', /src\/gateway must not import src\/reconciler/);
    assert.match(message ?? '', /gateway may import: core, errors, telemetry, serving/);
    const [typeOnly] = await restricted('src/apply/x.ts', '../store/types.js');
    assert.match(typeOnly ?? '', /only types from src\/store\/types\.ts/);
  });

  it('cover every folder of src/ (a layer with rules, or a composition root)', () => {
    const known = new Set([...Object.keys(config.LAYERS), ...config.ROOTS]);
    const entries = readdirSync(join(ROOT, 'src'), { withFileTypes: true })
      .filter((e) => e.isDirectory() || (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')))
      .map((e) => e.name);
    const missing = entries.filter((name) => !known.has(name));
    assert.deepEqual(missing, [], 'folders of src/ without a layer rule in eslint.config.js (add them to LAYERS or ROOTS)');
  });

  it('keep each known violation only while its file still needs it', async () => {
    const stale: string[] = [];
    for (const v of config.KNOWN_VIOLATIONS) {
      let text: string;
      try { text = readFileSync(join(ROOT, v.file), 'utf8'); } catch { stale.push(`${v.file} (file gone)`); continue; }
      // The same text at a sibling path is linted without the file's allowance.
      const probe = join(dirname(v.file), `${basename(v.file, '.ts')}.layers-probe.ts`);
      const found = (await lintRestricted(text, probe)).join('\n');
      for (const m of [...(v.mayUse ?? []), ...(v.typesFrom ?? [])]) {
        if (!found.includes(`${m}.js`)) stale.push(`${v.file} no longer imports ${m}: remove it from KNOWN_VIOLATIONS in eslint.config.js`);
      }
    }
    assert.deepEqual(stale, []);
  });
});
