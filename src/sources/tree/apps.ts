// The services side of a tree: every `<appsDir>/<folder>/` holds one spec, the first of SPEC_FILES
// found (app.config, app.yaml, …, config). Folders and files are resolved in the snapshot
// (resolveInSnapshot) and must stay inside the repository, like every other path the tree reader follows. A folder without a
// spec is a warning; a spec that does not parse, two folders with the same `name`, a dependency
// on a missing name and a `depends_on` cycle are errors.
import type { Diagnostic } from '../../core/desired.js';
import { normalizeRelPath } from '../../core/names.js';
import type { ServiceSpec } from '../../core/services/types.js';
import { checkServiceGraph, SPEC_FILES, sortDiagnostics } from '../../core/services/spec/index.js';
import type { SpecLocations } from '../../core/services/spec/index.js';
import { SPEC_LIMITS } from '../../core/manifest/index.js';
import type { Snapshot, SnapshotEntry } from '../snapshot.js';
import { readSpecEntry } from './files.js';
import { posixJoin, resolveInside } from './resolve.js';

/** A spec file larger than this is refused unread (SERVICE_SPEC_TOO_LARGE; the other limits: SPEC_LIMITS). */
export const MAX_SPEC_BYTES = SPEC_LIMITS.maxBytes;

export interface ServiceSpecsResult {
  /** Whether `<appsDir>` is a folder inside the tree (false: there are no services, which is fine). */
  found: boolean;
  /** Parsed specs, by folder name. */
  specs: ServiceSpec[];
  /** Where each spec's fields are, by service name (for later messages). */
  locations: Map<string, SpecLocations>;
  errors: Diagnostic[];
  warnings: Diagnostic[];
  /** The error code for `errors` when a spec crossed a limit (SERVICE_SPEC_TOO_LARGE) or its parse timed out. */
  code?: 'SERVICE_SPEC_TOO_LARGE' | 'PARSE_TIMEOUT' | 'INTERNAL';
}

const at = (file: string, message: string, field?: string): Diagnostic => ({ file, line: 1, col: 1, ...(field ? { field } : {}), message });

/**
 * Reads and checks every service spec under `appsDir` of the snapshot (relative to the repository
 * root, e.g. `apps` or `deploy/apps`). Never throws for problems in the tree: they come back as
 * diagnostics whose files are relative to the root.
 */
export async function findServiceSpecs(snap: Snapshot, appsDir = 'apps'): Promise<ServiceSpecsResult> {
  const out: ServiceSpecsResult = { found: false, specs: [], locations: new Map(), errors: [], warnings: [] };
  const rel = normalizeRelPath(appsDir);
  if ('error' in rel) {
    out.errors.push(at(appsDir, `apps folder: ${rel.error}`));
    return out;
  }
  const appsRes = await resolveInside(snap, '', rel.path);
  if (appsRes.kind === 'escape') {
    out.found = true;
    out.errors.push(at(rel.path, 'resolves outside the repository'));
    return out;
  }
  if (appsRes.kind !== 'ok' || !appsRes.isDir) return out;
  out.found = true;

  const entries = (await snap.readdir(appsRes.real))
    .filter((e) => !e.name.startsWith('.') && (e.kind === 'dir' || e.kind === 'symlink'))
    .map((e) => e.name)
    .sort();
  const firstFile = new Map<string, string>(); // name → file that declared it
  const routeFile = new Map<string, string>(); // route → file that declared it
  for (const folder of entries) {
    const folderRel = posixJoin(rel.path, folder);
    const sub = await resolveInside(snap, appsRes.real, folder);
    if (sub.kind === 'escape') {
      out.errors.push(at(folderRel, 'resolves outside the repository'));
      continue;
    }
    if (sub.kind !== 'ok' || !sub.isDir) continue; // A symlink to a file or nowhere: not a service folder.
    let spec: { entry: SnapshotEntry; rel: string; size: number } | undefined;
    for (const name of SPEC_FILES) {
      const fileRel = posixJoin(folderRel, name);
      const r = await resolveInside(snap, sub.real, name);
      if (r.kind === 'escape') {
        out.errors.push(at(fileRel, 'resolves outside the repository'));
        spec = undefined;
        break;
      }
      if (r.kind === 'ok' && r.isFile) {
        spec = { entry: r.entry, rel: fileRel, size: r.size };
        break;
      }
      if (r.kind === 'missing' && r.dangling) {
        out.errors.push(at(fileRel, 'is a symlink to a missing file'));
        break;
      }
    }
    if (!spec) {
      if (!out.errors.some((e) => e.file.startsWith(`${folderRel}/`))) {
        out.warnings.push(at(folderRel, `has no service spec (${SPEC_FILES.join(', ')}); folder skipped`));
      }
      continue;
    }
    // Bounded: over MAX_SPEC_BYTES it is not read; it is parsed in a worker under a time limit.
    const parsed = await readSpecEntry(snap, spec.entry, spec.rel);
    if ('errors' in parsed) {
      out.errors.push(...parsed.errors);
      if (parsed.code) out.code ??= parsed.code;
      continue;
    }
    out.warnings.push(...parsed.warnings);
    const { name } = parsed.spec;
    const other = firstFile.get(name);
    if (other !== undefined) {
      const pos = parsed.locations.name ?? { line: 1, col: 1 };
      out.errors.push({ file: spec.rel, ...pos, field: 'name', message: `"${name}" is already the name of the service in ${other}` });
      continue;
    }
    const route = parsed.spec.route;
    const routeOwner = route ? routeFile.get(route) : undefined;
    if (route && routeOwner !== undefined) {
      const pos = parsed.locations.route ?? { line: 1, col: 1 };
      out.errors.push({ file: spec.rel, ...pos, field: 'route', message: `"${route}" is already the route of the service in ${routeOwner}` });
      continue;
    }
    if (route) routeFile.set(route, spec.rel);
    firstFile.set(name, spec.rel);
    out.specs.push(parsed.spec);
    out.locations.set(name, parsed.locations);
  }

  const graph = checkServiceGraph(out.specs, { locate: (s, field) => out.locations.get(s.name)?.[field] });
  // A dependency no spec declares is a warning (bc_gitops deploys the service anyway). With a spec
  // that failed to parse, it may just be that spec: say nothing yet.
  if (out.errors.length === 0) out.warnings.push(...graph.missing);
  out.errors.push(...graph.cycles);
  out.errors = sortDiagnostics(out.errors);
  out.warnings = sortDiagnostics(out.warnings);
  return out;
}
