// The default Node runtime for services (PRODUCT.md §8): public entry point.
export { NodeServiceRuntime, type NodeServiceRuntimeOptions } from './runtime.js';
export type { Backoff, HealthTiming } from './instance.js';
export { versionFolder } from './fetch.js';
export { failureOf, type ServiceFailure } from './errors.js';
export { PortPool } from './ports.js';
