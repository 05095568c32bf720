// The tree reader: turns one commit's checked-out tree + its manifest into desired state.
export { findManifest, loadApp, parseManifestOrThrow } from './find.js';
export type { ManifestLocation, LoadOptions, LoadedApp } from './find.js';
export { readDesiredState, collectDesiredState, functionHash, canonicalJson, sha256, throwProblems } from './read.js';
export type { ReadOptions, TreeReadResult, DockerBuildSource } from './read.js';
export { walkStatic, isPublished } from './static.js';
export { hashContext, listContext, parseDockerignore, readContext } from './context.js';
export type { ContextEntry, ContextOptions } from './context.js';
export type { HashFn, StaticFileSource, StaticWalkResult } from './static.js';
export { isInside, resolveInside } from './resolve.js';
export type { TreeProblem, Resolved } from './resolve.js';
export { findServiceSpecs, MAX_SPEC_BYTES } from './apps.js';
export type { ServiceSpecsResult } from './apps.js';
export { validateTree, validateZerverlessYaml, appsDirValidator } from './validate.js';
export type { TreeValidator, TreeCheck, ValidateOptions } from './validate.js';
