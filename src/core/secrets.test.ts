// The pure rules of envFrom: merge order (explicit env wins, later files win), plan lines that
// name changed keys and never values, and the manifest field.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DesiredFunction, DesiredState } from './desired.js';
import { envChanges, mergeEnv } from './secrets.js';
import { functionChanges, planApplication } from './plan/index.js';
import { parseManifest } from './manifest/index.js';

const fn = (over: Partial<DesiredFunction> = {}): DesiredFunction => ({
  path: '/f', runtime: 'python', code: 'x', filename: 'zerverless.yaml', timeoutMs: 1000, memoryMb: 64, env: {}, hash: 'h', ...over,
});
const secret = (digests: Record<string, string>, file = 'secrets/prod.env.age') => ({ file, data: 'Y2lwaGVy', digests });
const state = (f: DesiredFunction, commit = 'c'): DesiredState => ({ commit, functions: [f], static: null, warnings: [] });

describe('envFrom rules', () => {
  it('merges files in order, then the explicit env on top', () => {
    assert.deepEqual(mergeEnv({ A: 'explicit' }, [{ A: 'file1', B: 'file1', C: 'file1' }, { B: 'file2' }]), { A: 'explicit', B: 'file2', C: 'file1' });
  });

  it('names added, removed and changed keys, comparing secret values by digest only', () => {
    const before = fn({ env: { MODE: 'a', GONE: 'x' }, secrets: [secret({ DB_PASSWORD: 'd1', SAME: 's' })] });
    const after = fn({ env: { MODE: 'b', NEW: 'y' }, secrets: [secret({ DB_PASSWORD: 'd2', SAME: 's', ADDED: 'z' })] });
    assert.deepEqual(envChanges(before, after), ['env.ADDED added', 'env.DB_PASSWORD changed', 'env.GONE removed', 'env.MODE changed', 'env.NEW added']);
    // An explicit value shadows a secret one: the secret's change does not matter.
    const shadowA = fn({ env: { DB_PASSWORD: 'plain' }, secrets: [secret({ DB_PASSWORD: 'd1' })] });
    const shadowB = fn({ env: { DB_PASSWORD: 'plain' }, secrets: [secret({ DB_PASSWORD: 'd2' })] });
    assert.deepEqual(envChanges(shadowA, shadowB), []);
  });

  it('a plan says env.DB_PASSWORD changed, with no value in it', () => {
    const before = fn({ hash: 'h1', env: { GREETING: 'hi' }, secrets: [secret({ DB_PASSWORD: 'aaaa' })] });
    const after = fn({ hash: 'h2', env: { GREETING: 'hi' }, secrets: [secret({ DB_PASSWORD: 'bbbb' })] });
    const plan = planApplication({ state: state(after, 'c2') }, { state: state(before, 'c1') });
    assert.deepEqual(plan.functions, [{ path: '/f', runtime: 'python', action: 'update', fromHash: 'h1', toHash: 'h2', changes: ['env.DB_PASSWORD changed'] }]);
    assert.equal(plan.summary.update, 1);
  });

  it('lists the other kinds of change by name', () => {
    const a = fn({ secrets: [secret({}, 'a.env.age')] });
    const b = fn({ code: 'y', timeoutMs: 2, memoryMb: 8, secrets: [secret({}, 'b.env.age')] });
    assert.deepEqual(functionChanges(a, b), ['code', 'timeout', 'memory', 'envFrom']);
  });
});

describe('envFrom in zerverless.yaml', () => {
  const doc = (envFrom: string): string => `apiVersion: zerverless.io/v1
kind: Application
metadata: { name: app }
spec:
  functions:
    - path: /f
      runtime: lua
      code: 'function handle() return "x" end'
      envFrom: ${envFrom}
`;

  it('keeps the files normalised and in order', () => {
    const r = parseManifest(doc('[./secrets/a.env.age, secrets/b.enc.yaml]'));
    assert.ok('manifest' in r, JSON.stringify(r));
    assert.deepEqual(r.manifest.spec.functions[0]!.envFrom, ['secrets/a.env.age', 'secrets/b.enc.yaml']);
    assert.ok(r.locations['spec.functions[0].envFrom[1]']);
  });

  it('refuses .., absolute paths, duplicates, non-strings and too many files, at the item', () => {
    for (const [bad, message] of [
      ['[../x.age]', /envFrom\[0\]/],
      ['[/etc/passwd]', /envFrom\[0\]/],
      ['[a.age, ./a.age]', /envFrom\[1\]: "\.\/a\.age" is already listed as envFrom\[0\]/],
      ['[1]', /envFrom\[0\]/],
      [`[${Array.from({ length: 17 }, (_, i) => `f${i}.age`).join(', ')}]`, /envFrom/],
    ] as const) {
      const r = parseManifest(doc(bad));
      assert.ok('errors' in r, bad);
      assert.match(r.errors.map((d) => `${d.line}:${d.field ?? ''}: ${d.message}`).join('\n'), message, bad);
    }
  });
});
