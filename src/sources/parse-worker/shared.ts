// The process's shared parse pool (see pool.ts): zerverless.yaml and the
// apps/<name>/ service specs. One shared pool per process, started on first use.
import type { ParseResult } from '../../core/manifest/index.js';
import type { SpecParseResult } from '../../core/services/spec/index.js';
import { ParsePool } from './pool.js';
import type { ParseFailure, ParsePoolOptions } from './pool.js';


let shared: ParsePool | undefined;
let sharedOptions: ParsePoolOptions = {};

function pool(): ParsePool {
  shared ??= new ParsePool(sharedOptions);
  return shared;
}

/** Options of the shared pool (tests: a shorter time limit); closes the current pool. */
export async function configureParsePool(opts: ParsePoolOptions): Promise<void> {
  sharedOptions = opts;
  await closeParsePool();
}

/** Terminates the shared pool's workers (the next parse starts a new pool). */
export async function closeParsePool(): Promise<void> {
  const p = shared;
  shared = undefined;
  await p?.close();
}

/** parseManifest in a worker, under the time limit. */
export function parseManifestOffThread(text: string, file: string): Promise<ParseResult | ParseFailure> {
  return pool().parse({ kind: 'manifest', text, file });
}

/** parseServiceSpec in a worker, under the time limit. */
export function parseServiceSpecOffThread(text: string, file: string): Promise<SpecParseResult | ParseFailure> {
  return pool().parse({ kind: 'spec', text, file });
}
