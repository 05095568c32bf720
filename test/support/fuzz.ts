// The parser fuzzer (issue 8.1): generated inputs for every parser of repository files — the
// manifest (zerverless.yaml), the service specs in YAML, JSON and Erlang terms, and the Erlang term
// parser alone — from a fixed seed. Most cases are random mutations of valid examples (deletions,
// duplications, insertions of the formats' own tokens, splices, truncations); about one in fifty is
// a structural extreme (deep nesting, many keys or items, long strings, unicode, anchors and
// aliases, odd numbers, a token repeated up to and past the byte limit). Each case runs the parser
// directly (the core parsers, pure) and is checked: it must return its problems or throw a ZvError,
// never anything else, and its diagnostics must have positions; its time is measured.
// Used by scripts/fuzz.ts (`npm run fuzz`, 100,000+ cases) and test/parsers-fuzz.test.ts (a small run).
import { cpuUsage } from 'node:process';
import { parseManifest } from '../../src/core/manifest/index.js';
import { MANIFEST_LIMITS, SPEC_LIMITS } from '../../src/core/manifest/index.js';
import { parseErlangTerm, parseServiceSpec } from '../../src/core/services/spec/index.js';
import { isZvError } from '../../src/errors/registry.js';

export type Target = 'manifest' | 'spec-yaml' | 'spec-json' | 'spec-erlang' | 'erlang-term';
export const TARGETS: Target[] = ['manifest', 'spec-yaml', 'spec-json', 'spec-erlang', 'erlang-term'];

/** A small fast PRNG (mulberry32): the same seed gives the same cases. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MANIFEST_SEEDS = [
  `apiVersion: zerverless.io/v1
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
      timeout: 10s
      memory: 256
      env: {MODE: prod, COUNT: 3, ON: true}
    - path: /api/js
      runtime: js            # js | javascript | typescript | ts
      codeFile: handlers/hello.ts
      envFrom: [secrets/api.env.age]
    - path: /api/docker
      runtime: docker
      dockerfile: ./services/api/Dockerfile
      context: ./services/api
      port: 8080
      capabilities: [NET_BIND_SERVICE]
  static:
    dir: ./static
`,
  `apiVersion: zerverless.io/v1
kind: Application
metadata: {name: web, labels: {team: a}}
spec:
  functions:
    - &fn {path: /a, runtime: lua, code: "function handle(r) return 'a' end"}
    - {path: /b, runtime: ts, code: 'export default () => "b"', timeout: 1.5m}
`,
  '{"apiVersion": "zerverless.io/v1", "kind": "Application", "metadata": {"name": "j"}, "spec": {"functions": [{"path": "/x", "runtime": "python", "code": "def handle(r):\\n  return 1"}]}}\n',
];

const SPEC_YAML_SEEDS = [
  `name: my_web_app
version: "1.0.0"
source: {type: npm}
env: {port: 8080, pool_size: 10}
health: {type: http, port: 8080, path: /health, interval: 30000, timeout: 5000}
depends_on: []
route: /web
`,
  `name: api
version: 2.1.0
source:
  type: git
  url: https://example.com/api.git
  ref: v2
env:
  LOG: debug
health:
  type: tcp
  interval: 5s
depends_on:
  - db
  - cache
`,
  `name: rel
version: "3"
source: {type: release, url: "https://example.com/r.tgz", sha256: ${'ab'.repeat(32)}}
`,
];

const SPEC_JSON_SEEDS = [
  '{"name": "my_web_app", "version": "1.0.0", "source": {"type": "npm"}, "env": {"port": 8080, "pool_size": 10}, "health": {"type": "http", "port": 8080, "path": "/health", "interval": 30000, "timeout": 5000}, "depends_on": []}\n',
  '{\n  "name": "api",\n  "version": "2",\n  "source": {"type": "git", "url": "https://example.com/a.git", "branch": "main"},\n  "depends_on": ["db"],\n  "route": "/api",\n  "port": 9000\n}\n',
];

const ERLANG_SEEDS = [
  `#{
    name => my_web_app,
    version => <<"1.0.0">>,
    source => #{type => npm},            %% npm | git | release (hex: refused, named)
    env => #{port => 8080, pool_size => 10},
    health => #{type => http, port => 8080, path => <<"/health">>,
                interval => 30000, timeout => 5000},   %% http | tcp | custom
    depends_on => []
}.
`,
  `[{name, api}, {version, "2.0"}, {source, #{type => git, url => <<"https://e.com/a.git">>, ref => <<"main">>}},
 {env, #{'LOG level' => $a, n => 16#FF, f => -1.5e3, big => 1_000_000, u => <<"\\x{1F600}"/utf8>>}},
 {depends_on, [db, 'cache']}].
`,
  `#{name => x, version => <<1, 2, "three">>, source => #{type => release, url => <<"https://e.com/x.tgz">>, sha256 => <<"${'0f'.repeat(32)}">>}, tuple => {a, {b, [c, d]}}, s => "a" "b", esc => "\\^A\\e\\101\\x41"}.
`,
];

const YAML_TOKENS = [
  '[', ']', '{', '}', ',', ':', ': ', '- ', '? ', '&a ', '*a', '!!str ', '!!map ', '!!binary ', '!t ', '"', "'", '#', '# c\n', '\n', '\r\n', '  ', '\t',
  '|', '|-', '>', '>+2', '---\n', '...\n', '%YAML 1.2\n', '<<: *a', '~', 'null', 'true', '.nan', '-.inf', '0x1F', '0o17', '1e999', '-0', '1_000',
  '"\\u0000"', '"\\x', '\\', '@', '`', '\u0000', '\ufeff', '\ud800', '\udc00', '😀', 'é', '\u2028', '\u0085', 'a'.repeat(1100), '"key": ',
];
const JSON_TOKENS = ['[', ']', '{', '}', ',', ':', '"', '"a"', '"a": ', 'null', 'true', '1e999', '-0', '0.', '01', '"\\u', '"\\ud800"', '\\', ' ', '\n', '😀', '\u0000', '\ufeff'];
const ERLANG_TOKENS = [
  '#{', '}', '[', ']', '{', ',', '=>', ':=', '<<', '>>', '<<"', '"', "'", '.', '. ', '|', '/utf8', '/binary', '$', '$\\', '16#', '36#Z', '2#102', '1_000', '_',
  '-', '+', '1.5e', '1.0e-3', '%', '% c\n', '\n', ' ', 'Var', 'atom', "'q a'", '\\x{', '\\x{110000}', '\\^', '\\777', 'true', 'undefined', 'nil',
  '#rec{', '😀', 'é', '\u0000', '\ufeff', '9'.repeat(30),
];

interface TargetInfo {
  seeds: string[];
  tokens: string[];
  maxBytes: number;
  run(text: string): unknown;
}

export const TARGET_INFO: Record<Target, TargetInfo> = {
  manifest: { seeds: MANIFEST_SEEDS, tokens: YAML_TOKENS, maxBytes: MANIFEST_LIMITS.maxBytes, run: (t) => parseManifest(t) },
  'spec-yaml': { seeds: SPEC_YAML_SEEDS, tokens: YAML_TOKENS, maxBytes: SPEC_LIMITS.maxBytes, run: (t) => parseServiceSpec(t, 'apps/x/app.yaml') },
  'spec-json': { seeds: SPEC_JSON_SEEDS, tokens: JSON_TOKENS, maxBytes: SPEC_LIMITS.maxBytes, run: (t) => parseServiceSpec(t, 'apps/x/app.json') },
  'spec-erlang': { seeds: ERLANG_SEEDS, tokens: ERLANG_TOKENS, maxBytes: SPEC_LIMITS.maxBytes, run: (t) => parseServiceSpec(t, 'apps/x/app.config') },
  'erlang-term': { seeds: ERLANG_SEEDS, tokens: ERLANG_TOKENS, maxBytes: SPEC_LIMITS.maxBytes, run: (t) => parseErlangTerm(t) },
};

const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)] as T;
const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
/** A size from 1 to max, spread over orders of magnitude. */
const size = (r: () => number, max: number): number => Math.max(1, Math.floor(Math.exp(r() * Math.log(max))));

function mutate(r: () => number, text: string, info: TargetInfo): string {
  let s = text;
  const n = int(r, 1, 8);
  for (let i = 0; i < n; i++) {
    const at = int(r, 0, s.length);
    switch (int(r, 0, 8)) {
      case 0: // delete a range
        s = s.slice(0, at) + s.slice(Math.min(s.length, at + size(r, 40)));
        break;
      case 1: { // duplicate a range
        const len = size(r, 80);
        s = s.slice(0, at + len) + s.slice(at, at + len) + s.slice(at + len);
        break;
      }
      case 2: // insert a token of the format
        s = s.slice(0, at) + pick(r, info.tokens) + s.slice(at);
        break;
      case 3: // replace one character by any code unit
        s = s.slice(0, at) + String.fromCharCode(int(r, 0, r() < 0.8 ? 127 : 0xffff)) + s.slice(at + 1);
        break;
      case 4: // truncate
        s = s.slice(0, at);
        break;
      case 5: { // splice another seed in
        const other = pick(r, info.seeds);
        const from = int(r, 0, other.length);
        s = s.slice(0, at) + other.slice(from, from + size(r, 200)) + s.slice(at);
        break;
      }
      case 6: { // repeat a token many times
        const tok = pick(r, info.tokens);
        s = s.slice(0, at) + tok.repeat(size(r, 2000)) + s.slice(at);
        break;
      }
      case 7: // change a digit run into an odd number
        s = s.replace(/\d+/, pick(r, ['99999999999999999999999', '1e999', '-0', '0x', '16#FFFFFFFFFFFFFFFFFFFF', '1.7976931348623157e309', '00', '.5', '1_', '2#']));
        break;
      default: { // swap two ranges
        const b = int(r, 0, s.length);
        const [x, y] = at < b ? [at, b] : [b, at];
        const len = Math.min(size(r, 40), y - x);
        s = s.slice(0, x) + s.slice(y, y + len) + s.slice(x + len, y) + s.slice(x, x + len) + s.slice(y + len);
      }
    }
  }
  return s;
}

/** Structural extremes: what a hostile or broken file looks like at scale. `kind` names it in the report. */
function extreme(r: () => number, target: Target, info: TargetInfo): { kind: string; text: string } {
  const erl = target === 'spec-erlang' || target === 'erlang-term';
  const json = target === 'spec-json';
  const near = (): number => Math.floor(info.maxBytes * pick(r, [0.5, 0.9, 0.999, 1, 1.001, 1.5, 3]));
  const depth = pick(r, [63, 64, 65, 100, 1000, 2500, 5000, 100_000]);
  const count = pick(r, [9_999, 10_000, 10_001, 40_000, 200_000]);
  const wrap = (inner: string): string => (erl ? `#{name => x, version => <<"1">>, source => #{type => npm}, env => #{a => ${inner}}}.` : json ? `{"name": "x", "env": {"a": ${inner}}}` : `apiVersion: zerverless.io/v1\nkind: Application\nmetadata:\n  name: x\nspec:\n  x: ${inner}\n`);
  const kinds = ['deep', 'deep-unclosed', 'deep-block', 'many-keys', 'many-items', 'long-string', 'unicode', 'aliases', 'numbers', 'repeat-token', 'truncated-big', 'whitespace'];
  const kind = pick(r, kinds);
  switch (kind) {
    case 'deep': {
      const o = erl ? pick(r, ['[', '{', '#{a => ']) : json ? pick(r, ['[', '{"a": ']) : pick(r, ['[', '{a: ', '[{a: ']);
      const c = o.startsWith('[') ? ']' : o === '[{a: ' ? '}]' : '}';
      return { kind: `deep ${depth}`, text: wrap(o.repeat(depth) + (erl ? 'x' : '1') + c.repeat(depth)) };
    }
    case 'deep-unclosed':
      return { kind: `deep-unclosed ${depth}`, text: wrap((erl ? pick(r, ['[', '{', '#{']) : pick(r, ['[', '{'])).repeat(depth)) };
    case 'deep-block': {
      if (erl || json) return { kind: `deep ${depth}`, text: wrap('['.repeat(depth) + ']'.repeat(depth)) };
      const d = Math.min(depth, 3000);
      const lines: string[] = [];
      for (let i = 0; i < d; i++) lines.push(`${' '.repeat(i)}${r() < 0.5 ? '- ' : ''}k${i}:`);
      return { kind: `deep-block ${d}`, text: lines.join('\n') };
    }
    case 'many-keys': {
      const parts: string[] = [];
      for (let i = 0; i < count; i++) parts.push(erl ? `k${i} => ${i}` : json ? `"k${i}": ${i}` : `k${i}: ${i}`);
      if (erl) return { kind: `keys ${count}`, text: `#{${parts.join(', ')}}.` };
      if (json) return { kind: `keys ${count}`, text: `{${parts.join(', ')}}` };
      return { kind: `keys ${count}`, text: r() < 0.5 ? `metadata: {${parts.join(', ')}}\n` : `metadata:\n  ${parts.join('\n  ')}\n` };
    }
    case 'many-items': {
      const item = erl ? pick(r, ['1', 'a', '<<"b">>', '{}']) : pick(r, ['1', '"a"', 'null', '[]', '{}']);
      const items = new Array<string>(count).fill(item);
      if (!erl && !json && r() < 0.5) return { kind: `items-block ${count}`, text: `apiVersion: zerverless.io/v1\nkind: Application\nmetadata: {name: x}\nspec:\n  functions:\n${items.map((i) => `    - ${i}`).join('\n')}\n` };
      return { kind: `items ${count}`, text: wrap(`[${items.join(',')}]`) };
    }
    case 'long-string': {
      const body = pick(r, ['a', ' ', '\\n', 'é', '😀', '\\x{1F600}', "''", '\\"']).repeat(near());
      return { kind: 'long-string', text: erl ? `#{name => <<"${body}">>}.` : json ? `{"name": "${body}"}` : `name: "${body}"\n` };
    }
    case 'unicode': {
      let s = '';
      const n = Math.min(near(), 400_000);
      for (let i = 0; i < n; i++) s += String.fromCharCode(int(r, 0, 0xffff));
      return { kind: 'unicode', text: s };
    }
    case 'aliases': {
      if (erl || json) return { kind: 'keys-dup', text: erl ? `#{${'a => 1, '.repeat(20_000)}a => 2}.` : `{${'"a": 1, '.repeat(20_000)}"a": 2}` };
      // A billion laughs, and a flood of alias references.
      const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
      for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${new Array(10).fill(`*a${i - 1}`).join(', ')}]`);
      if (r() < 0.5) lines.push(`flood: [${new Array(int(r, 100, 200_000)).fill('*a0').join(', ')}]`);
      return { kind: 'aliases', text: `${lines.join('\n')}\n` };
    }
    case 'numbers': {
      const nums = ['1e999', '-1e999', '0x' + 'F'.repeat(200), '9'.repeat(400), '1.' + '0'.repeat(10_000) + '1', '.nan', '-.inf', '0o777', '1_000', '16#' + 'Z'.repeat(50), '36#' + 'Z'.repeat(50), '-0', '$\\777'];
      const list = new Array(int(r, 1, 5000)).fill(0).map(() => pick(r, nums));
      return { kind: 'numbers', text: erl ? `[${list.join(', ')}].` : json ? `[${list.join(', ')}]` : `x: [${list.join(', ')}]\n` };
    }
    case 'repeat-token': {
      const tok = pick(r, info.tokens);
      const prefix = pick(r, ['', 'a: ', '[', '{', 'a:\n  ', '#{a => ', '- ']);
      return { kind: `repeat ${JSON.stringify(tok).slice(0, 20)}`, text: prefix + tok.repeat(Math.max(1, Math.floor(near() / Math.max(1, tok.length)))) };
    }
    case 'truncated-big': {
      let s = pick(r, info.seeds);
      while (s.length < info.maxBytes / 2) s += mutate(r, pick(r, info.seeds), info);
      return { kind: 'truncated-big', text: s.slice(0, int(r, 0, s.length)) };
    }
    default:
      return { kind: 'whitespace', text: pick(r, [' ', '\n', '\t', '\r\n', ' \n', '#\n', '%\n']).repeat(near()) };
  }
}

export interface FuzzCase {
  index: number;
  target: Target;
  kind: string;
  text: string;
}

/** The `index`th case of a run with `seed` (deterministic: a failing case can be replayed alone). */
export function makeCase(seed: number, index: number, extremeRate = 0.02): FuzzCase {
  const r = rng((seed * 1_000_003 + index) >>> 0);
  const target = TARGETS[index % TARGETS.length] as Target;
  const info = TARGET_INFO[target];
  if (r() < extremeRate) {
    const e = extreme(r, target, info);
    return { index, target, kind: `extreme ${e.kind}`, text: e.text };
  }
  return { index, target, kind: 'mutation', text: mutate(r, pick(r, info.seeds), info) };
}

export interface CaseOutcome {
  /** returned: the parser answered; zv: it threw a ZvError; throw: anything else (a failure); bad: an answer without positions. */
  result: 'returned' | 'zv' | 'throw' | 'bad';
  detail?: string;
  wallMs: number;
  cpuMs: number;
}

function badDiagnostics(out: unknown): string | undefined {
  if (out === null || typeof out !== 'object') return 'not an object';
  const o = out as Record<string, unknown>;
  if ('error' in o) {
    const e = o.error as { line?: unknown; col?: unknown };
    return Number.isInteger(e.line) && Number.isInteger(e.col) && (e.line as number) >= 1 && (e.col as number) >= 1 ? undefined : `bad position ${JSON.stringify(e)}`;
  }
  if (!('errors' in o)) return undefined;
  const list = o.errors as { line: unknown; col: unknown; message: unknown }[];
  if (!Array.isArray(list) || list.length === 0) return 'empty errors';
  for (const d of list) {
    if (!Number.isInteger(d.line) || !Number.isInteger(d.col) || (d.line as number) < 1 || (d.col as number) < 1 || typeof d.message !== 'string') {
      return `bad diagnostic ${JSON.stringify(d).slice(0, 200)}`;
    }
  }
  return undefined;
}

export function runCase(c: FuzzCase): CaseOutcome {
  const info = TARGET_INFO[c.target];
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  let result: CaseOutcome['result'] = 'returned';
  let detail: string | undefined;
  try {
    const out = info.run(c.text);
    detail = badDiagnostics(out);
    if (detail) result = 'bad';
  } catch (e) {
    if (isZvError(e)) result = 'zv';
    else {
      result = 'throw';
      detail = e instanceof Error ? `${e.name}: ${e.message}`.slice(0, 300) : String(e);
    }
  }
  const wallMs = performance.now() - t0;
  const cpu = cpuUsage(cpu0);
  return { result, ...(detail ? { detail } : {}), wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export interface SlowCase {
  index: number;
  target: Target;
  kind: string;
  wallMs: number;
  cpuMs: number;
  costMs: number;
  bytes: number;
}

export interface FuzzSummary {
  seed: number;
  cases: number;
  byTarget: Record<Target, number>;
  extremes: number;
  returned: number;
  zvErrors: number;
  /** Non-ZvError throws and answers without positions: must be 0. */
  failures: { index: number; target: Target; kind: string; result: string; detail: string; sample: string }[];
  /** By wall-clock time (on a busy machine it includes waiting for a core). */
  slowest: SlowCase;
  /**
   * By cost = min(wall, process CPU): an upper bound of the parsing thread's own CPU time (wall
   * also counts waiting for a core; process CPU also counts the GC's helper threads).
   */
  costliest: SlowCase;
  totalMs: number;
}

/** Runs `cases` cases from `seed` (starting at `from`); `onProgress` is called every 5,000. */
export function fuzz(opts: { seed: number; cases: number; from?: number; extremeRate?: number; onProgress?: (done: number, s: FuzzSummary) => void }): FuzzSummary {
  const start = performance.now();
  const zero: SlowCase = { index: -1, target: 'manifest', kind: '', wallMs: 0, cpuMs: 0, costMs: 0, bytes: 0 };
  const s: FuzzSummary = {
    seed: opts.seed, cases: 0, byTarget: { manifest: 0, 'spec-yaml': 0, 'spec-json': 0, 'spec-erlang': 0, 'erlang-term': 0 },
    extremes: 0, returned: 0, zvErrors: 0, failures: [], slowest: { ...zero }, costliest: { ...zero }, totalMs: 0,
  };
  const from = opts.from ?? 0;
  for (let i = from; i < from + opts.cases; i++) {
    const c = makeCase(opts.seed, i, opts.extremeRate);
    const o = runCase(c);
    s.cases++;
    s.byTarget[c.target]++;
    if (c.kind !== 'mutation') s.extremes++;
    if (o.result === 'returned') s.returned++;
    else if (o.result === 'zv') s.zvErrors++;
    else s.failures.push({ index: i, target: c.target, kind: c.kind, result: o.result, detail: o.detail ?? '', sample: JSON.stringify(c.text.slice(0, 200)) });
    const row: SlowCase = { index: i, target: c.target, kind: c.kind, wallMs: o.wallMs, cpuMs: o.cpuMs, costMs: Math.min(o.wallMs, o.cpuMs), bytes: c.text.length };
    if (row.wallMs > s.slowest.wallMs) s.slowest = row;
    if (row.costMs > s.costliest.costMs) s.costliest = row;
    if (opts.onProgress && s.cases % 5000 === 0) opts.onProgress(s.cases, s);
  }
  s.totalMs = performance.now() - start;
  return s;
}
