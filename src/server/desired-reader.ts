// Adapter from the tree reader (sources/tree) to the reconciler's DesiredReader port.
import { ZvError } from '../errors/registry.js';
import { loadApp, isDirInside } from '../sources/tree/index.js';
import type { DesiredRead, DesiredReader } from '../reconciler/ports.js';

export class TreeDesiredReader implements DesiredReader {
  async read(dir: string, opts: { path: string; namespace: string; commit: string }): Promise<DesiredRead> {
    const loaded = await loadApp(dir, { commit: opts.commit, path: opts.path, namespace: opts.namespace });
    if (!loaded) {
      const where = opts.path ? `folder '${opts.path}' of the repository` : 'the repository root';
      const appsDir = opts.path ? `${opts.path}/apps` : 'apps';
      if (await isDirInside(dir, appsDir)) {
        throw new ZvError('RUNTIME_UNAVAILABLE', `${appsDir}/ holds service specs, which this server does not deploy yet; add a zerverless.yaml to ${where}`);
      }
      throw new ZvError('MANIFEST_NOT_FOUND', `${where} has neither zerverless.yaml nor an apps/ folder (commit ${opts.commit.slice(0, 12)})`);
    }
    return {
      state: loaded.state,
      staticFiles: loaded.staticFiles.map((f) => ({ entry: f.entry, absPath: f.absPath })),
      docker: loaded.docker.map((d) => ({ path: d.path, dockerfile: d.dockerfile, context: d.context })),
    };
  }
}
