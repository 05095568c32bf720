// Lint configuration: typescript-eslint's recommended rules over src/, plain JS rules for scripts,
// and the layer rules of src/ (docs/architecture.md, "Layers"), checked by test/layers.test.ts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------------------------
// Layers. The folders of src/ follow the flow source → artifact → manifest → desired → plan →
// apply → status. Each layer lists what it MAY import (an allow-list): every other layer of src/
// is refused, so a new folder is refused everywhere until it is added here.
//   may:       whole layers it may import (values and types)
//   mayUse:    single modules of another layer it may import (values and types), path under src/
//   typesFrom: modules of another layer it may import types from (`import type`), nothing else
// Test files (*.test.ts) may import across layers, except core tests, which may not import adapters.
// Dynamic `import()` is not checked (only the composition roots use it).

export const LAYERS = {
  core: { may: [], why: 'the domain core is pure: plain data and functions, no adapters' },
  errors: { may: ['core'], why: 'the error registry and the error response, under everything else' },
  telemetry: { may: ['core', 'errors'], why: 'events, logs and metrics, used by every adapter' },
  native: { may: [], why: 'the loader of native modules per Node line' },
  secrets: { may: ['core', 'errors'], why: 'age, SOPS and the keyring: used by sources, auth, credentials and the roots' },
  'git-cli': { may: ['core', 'errors'], why: 'git plumbing (running the git binary, URL policy): under the git source and the Node service runtime' },
  sources: {
    may: ['core', 'errors', 'telemetry', 'secrets', 'git-cli'],
    why: 'source → artifact → desired: reads git and trees into plain data; knows nothing of what runs it',
  },
  credentials: {
    may: ['core', 'errors', 'secrets'],
    mayUse: ['sources/git/verify-policy'],
    typesFrom: ['sources/git/auth', 'store/types'],
    why: 'git credentials: sealed in the Store and handed to the git source as a GitAuth',
  },
  auth: { may: ['core', 'errors', 'secrets'], typesFrom: ['store/types'], why: 'API tokens over the Store port' },
  store: { may: ['core', 'errors', 'native'], why: 'the Store port and its implementations: persistence only' },
  logs: { may: ['core', 'errors'], why: 'the kept output of functions: bounded segment files under <data-dir>/logs, read and followed by the API' },
  runtimes: {
    may: ['core', 'errors', 'telemetry', 'native', 'git-cli'],
    why: 'function runtimes and the Node service runtime run code; they never read sources or the Store',
  },
  serving: {
    may: ['core', 'errors'],
    typesFrom: ['runtimes/types'],
    why: 'the serving table and draining: what the gateway serves, filled by apply',
  },
  apply: {
    may: ['core', 'errors', 'telemetry', 'serving'],
    typesFrom: ['runtimes/types', 'store/types', 'sources/types'],
    why: 'appliers: load functions into runtimes, switch the serving table, apply services; they get their inputs from the reconciler',
  },
  reconciler: {
    may: ['core', 'errors', 'telemetry', 'apply', 'serving'],
    // The Snapshot port and its pure, lexical resolver: drift repair resolves a static file in the deployed commit.
    mayUse: ['sources/snapshot'],
    typesFrom: ['sources/types', 'store/types', 'runtimes/types'],
    why: 'the sync pipeline and loop: drives sources, store and appliers through their ports',
  },
  gateway: {
    may: ['core', 'errors', 'telemetry', 'serving'],
    mayUse: ['runtimes/response-cap'],
    typesFrom: ['runtimes/types', 'store/types'],
    why: 'HTTP serving of what the serving table holds; never the pipeline that fills it',
  },
  notify: {
    may: ['core', 'errors', 'telemetry'],
    typesFrom: ['store/types'],
    why: 'notifications: queue and POST status transitions to webhooks; sealed secrets are opened by a function the root gives',
  },
  hooks: {
    may: ['core', 'errors', 'telemetry'],
    typesFrom: ['store/types', 'reconciler/reconciler'],
    why: 'webhooks: verify a provider\'s signed push and start the matching applications\' syncs through a callback',
  },
  api: {
    may: ['core', 'errors', 'telemetry', 'auth', 'credentials'],
    mayUse: ['sources/git/verify-policy'],
    typesFrom: ['store/types', 'reconciler/reconciler', 'logs/types'],
    why: 'the management API: the Store port and the reconciler’s public interface, never the gateway',
  },
  ui: { may: ['core', 'errors'], why: 'the web console: serves the built browser client (web/console) at /ui; the client talks to /api' },
};

/** Composition roots: they wire the layers together and may import anything. */
export const ROOTS = ['gitops', 'server', 'cli', 'index.ts'];

/**
 * Imports that break the rules today, allowed in the one file that has them until they are fixed
 * (each entry is reported by test/layers.test.ts as stale once the file no longer needs it).
 */
export const KNOWN_VIOLATIONS = [
];

const ALL = [...Object.keys(LAYERS), ...ROOTS.filter((r) => !r.endsWith('.ts'))];
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A relative import that goes into folder `layer` of src/ (from anywhere under src/). */
const into = (layer) => `^\\.{1,2}/(?:.*/)?${esc(layer)}/`;

/** The no-restricted-imports patterns of a layer, with the extra allowances of one file. */
export function layerPatterns(name, extra = {}) {
  const rule = LAYERS[name];
  const mayUse = [...(rule.mayUse ?? []), ...(extra.mayUse ?? [])];
  const typesFrom = [...(rule.typesFrom ?? []), ...(extra.typesFrom ?? [])];
  const allowed = `${name} may import: ${[...rule.may, ...mayUse, ...typesFrom.map((t) => `types of ${t}`)].join(', ') || 'nothing of src/ outside itself'}`;
  const patterns = [];
  for (const other of ALL) {
    if (other === name || rule.may.includes(other)) continue;
    const inOther = (list) => list.filter((m) => m.startsWith(`${other}/`)).map((m) => m.slice(other.length + 1));
    const uses = inOther(mayUse);
    const types = inOther(typesFrom).filter((t) => !uses.includes(t));
    const exempt = [...uses, ...types];
    const rest = exempt.length ? `(?!(?:${exempt.map((m) => `${esc(m)}\\.js$`).join('|')}))` : '';
    patterns.push({
      regex: `${into(other)}${rest}`,
      caseSensitive: true,
      message: `Layers: src/${name} must not import src/${other}${exempt.length ? ` beyond ${exempt.map((m) => `${other}/${m}`).join(', ')}` : ''} (${LAYERS[name].why}). ${allowed}. See docs/architecture.md.`,
    });
    for (const t of types) {
      patterns.push({
        regex: `${into(other)}${esc(t)}\\.js$`,
        caseSensitive: true,
        allowTypeImports: true,
        message: `Layers: src/${name} may import only types from src/${other}/${t}.ts (use \`import type\`). ${allowed}. See docs/architecture.md.`,
      });
    }
  }
  return patterns;
}

const CORE_IO = {
  group: ['node:*', 'fs', 'path', 'http', 'child_process', 'better-sqlite3', 'hono', '@hono/*'],
  message: 'The domain core is pure: no I/O imports.',
};

function layerConfigs() {
  const out = [];
  for (const name of Object.keys(LAYERS)) {
    const patterns = layerPatterns(name);
    out.push({
      files: [`src/${name}/**/*.ts`],
      ignores: [`src/${name}/**/*.test.ts`],
      rules: { 'no-restricted-imports': ['error', { patterns: name === 'core' ? [CORE_IO, ...patterns] : patterns }] },
    });
  }
  // Core tests may use node:test and friends, never adapters.
  out.push({
    files: ['src/core/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: layerPatterns('core') }] },
  });
  // Last, so that they win over their layer's entry (flat config: the last matching rule setting wins).
  for (const v of KNOWN_VIOLATIONS) {
    const name = v.file.split('/')[1];
    out.push({
      files: [v.file],
      rules: { 'no-restricted-imports': ['error', { patterns: layerPatterns(name, v) }] },
    });
  }
  return out;
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.zerverless/**', 'examples/**/handlers/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Buffer: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...layerConfigs(),
);
