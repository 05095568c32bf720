// bc_gitops interop: a spec whose depends_on names a service no spec declares is applied (the
// reader warns), in dependency order among the known names, without waiting for the unknown one.
// The specs are read from real files (findServiceSpecs) and applied by a ServiceReconciler with an
// in-memory runtime.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ServiceRuntime, ServiceSpec, ServiceState } from '../../core/services/types.js';
import { formatDiagnostic } from '../../core/desired.js';
import { findServiceSpecs } from '../../sources/tree/index.js';
import { FsSnapshot } from '../../sources/fs-snapshot.js';
import { dependencyOrder, ServiceReconciler } from './applier.js';

const dir = mkdtempSync(join(tmpdir(), 'zv-unknown-deps-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Deploys in memory; every deployed service is running and healthy at once. */
class MemoryRuntime implements ServiceRuntime {
  readonly calls: string[] = [];
  readonly services = new Map<string, ServiceState>();
  async deploy(spec: ServiceSpec): Promise<void> {
    this.calls.push(`deploy ${spec.name}`);
    this.services.set(spec.name, { name: spec.name, version: spec.version, status: 'running', health: 'healthy', restarts: 0 });
  }
  async upgrade(spec: ServiceSpec): Promise<void> { await this.deploy(spec); }
  async reconfigure(spec: ServiceSpec): Promise<void> { await this.deploy(spec); }
  async remove(name: string): Promise<void> { this.services.delete(name); }
  async getCurrentState(): Promise<ServiceState[]> { return [...this.services.values()]; }
}

test('a depends_on on an unknown service is a warning; the applier orders and waits on the known ones only', async () => {
  const files: Record<string, string> = {
    'apps/web/app.config': '#{name => web, version => <<"1.0.0">>, source => #{type => npm},\n  depends_on => [db, metrics_collector]}.\n',
    'apps/db/app.yaml': 'name: db\nversion: "1.0.0"\nsource: {type: npm}\ndepends_on: [vault]\n',
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  const read = await findServiceSpecs(new FsSnapshot(dir));
  assert.deepEqual(read.errors, []);
  assert.deepEqual(read.warnings.map(formatDiagnostic), [
    'apps/db/app.yaml:4:14: depends_on: db depends on "vault", which no service spec declares (ignored)',
    'apps/web/app.config:2:22: depends_on: web depends on "metrics_collector", which no service spec declares (ignored)',
  ]);
  assert.deepEqual(dependencyOrder(read.specs), ['db', 'web']);

  const rt = new MemoryRuntime();
  const rec = new ServiceReconciler({ runtime: rt, healthTimeoutMs: 30_000, healthPollMs: 10 });
  const r = await rec.apply(read.specs);
  assert.deepEqual(rt.calls, ['deploy db', 'deploy web']);
  assert.deepEqual([r.failed, r.blocked], [[], []]);
  assert.deepEqual(r.applied.map((c) => c.name), ['db', 'web']);
  assert.deepEqual(rec.appliedSpecs().map((s) => [s.name, s.dependsOn]).sort(), [['db', ['vault']], ['web', ['db', 'metrics_collector']]]);
});
