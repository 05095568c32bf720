// Public face of the manifest module: parse and validate zerverless.yaml, and its JSON Schema.
export { parseManifest, MANIFEST_FILES, DEFAULT_TIMEOUT_MS, DEFAULT_MEMORY_MB, DEFAULT_DOCKER_PORT } from './parse.js';
export type { ParseResult, ManifestLocations } from './parse.js';
export { manifestSchema, RUNTIMES, LINUX_CAPABILITIES } from './schema.js';
export type { ManifestRuntime, LinuxCapability } from './schema.js';
export type { Position } from './locate.js';
export { MANIFEST_LIMITS, SPEC_LIMITS, limitMessages } from './bounds.js';
export type { ParseLimits } from './bounds.js';
