// Adapter from the tree reader (sources/tree) to the reconciler's DesiredReader port: the
// zerverless.yaml side (functions, static site) and the apps/ side (service specs) of one commit's
// snapshot. The deployed static site is handed to the reader, so unchanged files cost nothing.
import { ZvError } from '../errors/registry.js';
import { formatDiagnostic } from '../core/desired.js';
import { findServiceSpecs, loadApp } from './tree/index.js';
import type { DesiredRead, DesiredReader, DesiredReadOptions } from './types.js';
import type { SecretsKeyring } from '../core/secrets.js';
import type { Snapshot } from './snapshot.js';

export class TreeDesiredReader implements DesiredReader {
  constructor(private readonly appsDir = 'apps', private readonly secrets?: SecretsKeyring) {}

  async read(snap: Snapshot, opts: Omit<DesiredReadOptions, 'repoURL' | 'branch'> & { repoURL?: string; branch?: string }): Promise<DesiredRead> {
    const appsDir = opts.path ? `${opts.path}/${this.appsDir}` : this.appsDir;
    const apps = await findServiceSpecs(snap, appsDir);
    if (apps.errors.length) {
      throw new ZvError(apps.code ?? 'MANIFEST_INVALID', apps.errors.map(formatDiagnostic).join('\n'), { diagnostics: apps.errors });
    }
    const loaded = await loadApp(snap, {
      commit: opts.commit, path: opts.path, namespace: opts.namespace, repoURL: opts.repoURL, branch: opts.branch,
      ...(this.secrets ? { secrets: this.secrets } : {}),
      ...(opts.deployed?.static ? { previousStatic: opts.deployed.static } : {}),
    });
    const warnings = apps.warnings.map(formatDiagnostic);
    if (!loaded) {
      if (!apps.found) {
        const where = opts.path ? `folder '${opts.path}' of the repository` : 'the repository root';
        throw new ZvError('MANIFEST_NOT_FOUND', `${where} has neither zerverless.yaml nor an ${this.appsDir}/ folder (commit ${opts.commit.slice(0, 12)})`);
      }
      return { state: { commit: opts.commit, functions: [], static: null, warnings }, staticFiles: [], docker: [], services: apps.specs };
    }
    loaded.state.warnings.push(...warnings);
    return {
      state: loaded.state,
      staticFiles: loaded.staticFiles.map((f) => ({ entry: f.entry, read: f.read })),
      docker: loaded.docker.map((d) => ({ path: d.path, dockerfile: d.dockerfile, context: d.context, contextFiles: d.contextFiles, materialise: d.materialise })),
      services: apps.specs,
    };
  }
}
