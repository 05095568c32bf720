// Reading a manifest or a service spec from a snapshot, bounded as on disk: over its byte limit it
// is refused from the entry's size (never read); any other is parsed off the main thread under the
// time limit (parse-worker).
import { limitMessages, MANIFEST_LIMITS, SPEC_LIMITS } from '../../core/manifest/index.js';
import { parseManifestOffThread, parseServiceSpecOffThread } from '../parse-worker/index.js';
import type { ManifestRead, SpecRead } from '../parse-worker/index.js';
import type { Snapshot, SnapshotEntry } from '../snapshot.js';

/** zerverless.yaml at `entry` (named `relFile` in messages) → the parse result (MANIFEST_TOO_LARGE, PARSE_TIMEOUT as codes). */
export async function readManifestEntry(snap: Snapshot, entry: SnapshotEntry, relFile: string): Promise<ManifestRead> {
  const size = entry.size ?? 0;
  if (size > MANIFEST_LIMITS.maxBytes) {
    return { errors: [{ file: relFile, line: 1, col: 1, message: limitMessages.bytes(size, 'zerverless.yaml', MANIFEST_LIMITS.maxBytes) }], code: 'MANIFEST_TOO_LARGE' };
  }
  return parseManifestOffThread((await snap.read(entry, { maxBytes: MANIFEST_LIMITS.maxBytes })).toString('utf8'), relFile);
}

/** A service spec at `entry` (named `relFile` in messages) → the parse result (SERVICE_SPEC_TOO_LARGE, PARSE_TIMEOUT as codes). */
export async function readSpecEntry(snap: Snapshot, entry: SnapshotEntry, relFile: string): Promise<SpecRead> {
  const size = entry.size ?? 0;
  if (size > SPEC_LIMITS.maxBytes) {
    return { errors: [{ file: relFile, line: 1, col: 1, message: limitMessages.bytes(size, 'a service spec', SPEC_LIMITS.maxBytes) }], code: 'SERVICE_SPEC_TOO_LARGE' };
  }
  return parseServiceSpecOffThread((await snap.read(entry, { maxBytes: SPEC_LIMITS.maxBytes })).toString('utf8'), relFile);
}
