// The tree reader: turns one commit's snapshot + its manifest into desired state.
export { findManifest, loadApp, parseManifestOrThrow } from './find.js';
export type { ManifestLocation, LoadOptions, LoadedApp } from './find.js';
export { readDesiredState, collectDesiredState, functionHash, canonicalJson, sha256, throwProblems } from './read.js';
export type { ReadOptions, TreeReadResult, DockerBuildSource } from './read.js';
export { walkStatic, isPublished } from './static.js';
export { hashContext, listContext, materialiseContext, parseDockerignore, readContext } from './context.js';
export type { ContextEntry, ContextOptions, MaterialisedContext } from './context.js';
export type { HashFn, PreviousStatic, StaticFileSource, StaticWalkResult } from './static.js';
export { isInside, resolveInside } from './resolve.js';
export { readManifestEntry, readSpecEntry } from './files.js';
export type { TreeProblem, Resolved } from './resolve.js';
export { findServiceSpecs, MAX_SPEC_BYTES } from './apps.js';
export type { ServiceSpecsResult } from './apps.js';
export { validateTree, validateZerverlessYaml, appsDirValidator } from './validate.js';
export type { TreeValidator, TreeCheck, ValidateOptions } from './validate.js';
