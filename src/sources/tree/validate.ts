// `zerverless validate [DIR]`: every check a sync would make on a tree, as diagnostics (empty = valid).
// Each part of a repository has a TreeValidator; zerverless.yaml is checked fully (syntax, schema,
// rules, files on disk, containment); the apps/*/app.* service specs are another validator.
import { stat } from 'node:fs/promises';
import type { Diagnostic } from '../../core/desired.js';
import { isZvError } from '../../errors/registry.js';
import { FsSnapshot } from '../fs-snapshot.js';
import type { Snapshot } from '../snapshot.js';
import { findServiceSpecs } from './apps.js';
import { readManifestEntry } from './files.js';
import { findManifest } from './find.js';
import type { ManifestLocation } from './find.js';
import { collectDesiredState } from './read.js';

export interface TreeCheck {
  /** Whether the part this validator checks exists in the tree. */
  found: boolean;
  diagnostics: Diagnostic[];
  warnings?: Diagnostic[];
}

export type TreeValidator = (snap: Snapshot) => Promise<TreeCheck>;

export async function validateZerverlessYaml(snap: Snapshot): Promise<TreeCheck> {
  let found: ManifestLocation | null;
  try {
    found = await findManifest(snap);
  } catch (e) {
    if (!isZvError(e)) throw e;
    return { found: true, diagnostics: [{ file: 'zerverless.yaml', line: 1, col: 1, message: e.message }] };
  }
  if (!found) return { found: false, diagnostics: [] };
  // The same bounded path as a sync: byte limit from the size, parse in a worker under a time limit.
  const parsed = await readManifestEntry(snap, found.entry, found.relFile);
  if ('errors' in parsed) return { found: true, diagnostics: parsed.errors };
  const { problems, warnings } = await collectDesiredState(snap, found.appDir, parsed.manifest, {
    commit: '', manifestFile: found.relFile, locations: parsed.locations,
  });
  return { found: true, diagnostics: problems.map((p) => p.diagnostic), warnings: [...parsed.warnings, ...warnings] };
}

/**
 * The bc_gitops side: every `<appsDir>/<name>/` spec (Erlang terms, YAML or JSON) parsed and
 * checked against the schema, plus duplicate names, missing dependencies and depends_on cycles.
 */
export function appsDirValidator(appsDir = 'apps'): TreeValidator {
  return async (snap) => {
    const r = await findServiceSpecs(snap, appsDir);
    return { found: r.found, diagnostics: r.errors, warnings: r.warnings };
  };
}

export interface ValidateOptions {
  appsDir?: string;
  /** Receives warnings (valid, but worth saying). */
  onWarning?: (d: Diagnostic) => void;
}

/** Validates a local folder (`zerverless validate DIR`) or a snapshot. */
export async function validateTree(dir: string | Snapshot, opts: ValidateOptions = {}): Promise<Diagnostic[]> {
  if (typeof dir === 'string') {
    const exists = await stat(dir).then((s) => s.isDirectory(), () => false);
    if (!exists) return [{ file: dir, line: 1, col: 1, message: 'is not a folder' }];
  }
  const snap = typeof dir === 'string' ? new FsSnapshot(dir) : dir;
  const validators = [validateZerverlessYaml, appsDirValidator(opts.appsDir)];
  const diagnostics: Diagnostic[] = [];
  let anyFound = false;
  for (const v of validators) {
    const check = await v(snap);
    anyFound ||= check.found;
    diagnostics.push(...check.diagnostics);
    for (const w of check.warnings ?? []) opts.onWarning?.(w);
  }
  if (!anyFound) {
    diagnostics.push({
      file: 'zerverless.yaml', line: 1, col: 1,
      message: `not found, and there is no ${opts.appsDir ?? 'apps'}/ folder: nothing to deploy`,
    });
  }
  return diagnostics;
}
