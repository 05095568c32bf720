// Reading a repository file and parsing it, bounded: a file over its byte limit is refused from its
// size on disk (never read), any other is parsed off the main thread under the time limit.
import { readFile, stat } from 'node:fs/promises';
import { limitMessages, MANIFEST_LIMITS, SPEC_LIMITS } from '../../core/manifest/index.js';
import type { ParseResult } from '../../core/manifest/index.js';
import type { SpecParseResult } from '../../core/services/spec/index.js';
import { parseManifestOffThread, parseServiceSpecOffThread } from './shared.js';
import type { ParseFailure } from './pool.js';

export type ManifestRead = ParseResult | ParseFailure;
export type SpecRead = SpecParseResult | ParseFailure;

/** zerverless.yaml at `absPath` (named `relFile` in messages) → the parse result (MANIFEST_TOO_LARGE, PARSE_TIMEOUT as codes). */
export async function readManifestFile(absPath: string, relFile: string): Promise<ManifestRead> {
  const { size } = await stat(absPath);
  if (size > MANIFEST_LIMITS.maxBytes) {
    return { errors: [{ file: relFile, line: 1, col: 1, message: limitMessages.bytes(size, 'zerverless.yaml', MANIFEST_LIMITS.maxBytes) }], code: 'MANIFEST_TOO_LARGE' };
  }
  return parseManifestOffThread(await readFile(absPath, 'utf8'), relFile);
}

/** A service spec at `absPath` (named `relFile` in messages) → the parse result (SERVICE_SPEC_TOO_LARGE, PARSE_TIMEOUT as codes). */
export async function readSpecFile(absPath: string, relFile: string): Promise<SpecRead> {
  const { size } = await stat(absPath);
  if (size > SPEC_LIMITS.maxBytes) {
    return { errors: [{ file: relFile, line: 1, col: 1, message: limitMessages.bytes(size, 'a service spec', SPEC_LIMITS.maxBytes) }], code: 'SERVICE_SPEC_TOO_LARGE' };
  }
  return parseServiceSpecOffThread(await readFile(absPath, 'utf8'), relFile);
}
