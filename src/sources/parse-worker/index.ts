// Bounded parsing of repository files off the main thread: zerverless.yaml and the apps/<name>/
// service specs are parsed by the core parsers (which bound size, nesting, keys, items and tokens)
// in worker threads under a time limit (pool.ts); files over their byte limit are not even read (files.ts).
export { ParsePool, PARSE_TIME_LIMIT_MS } from './pool.js';
export type { ParseFailure, ParsePoolOptions } from './pool.js';
export { closeParsePool, configureParsePool, parseManifestOffThread, parseServiceSpecOffThread } from './shared.js';
export { readManifestFile, readSpecFile } from './files.js';
export type { ManifestRead, SpecRead } from './files.js';
