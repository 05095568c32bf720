// The package's library entry (`import { createGitOps } from 'zerverless'`): the bc_gitops facade
// of PRODUCT.md §8 and the types a custom runtime or an embedder needs. Nothing here starts the
// HTTP server.
export { createGitOps } from './gitops/facade.js';
export type { GitOps, GitOpsOptions, GitOpsStatus, GitOpsStatusValue, AppStatus, ServiceSpecInput } from './gitops/facade.js';
export { ServiceReconciler } from './apply/services/index.js';
export type {
  ServiceReconcilerOptions, ServiceReconcileResult, FailedService, BlockedService, ServiceLogger, AppliedServices, AppliedServicesPort,
} from './apply/services/index.js';
export { planServices } from './core/plan/index.js';
export type {
  ServiceSpec, ServiceSource, HealthSpec, ServiceAction, ServiceChange, ServiceState, ServiceStatusValue, ServiceHealth, ServiceRuntime,
} from './core/services/types.js';
export { CHANNELS } from './telemetry/events.js';
export type { ChannelName, EventMeta } from './telemetry/events.js';
export { ZvError, isZvError } from './errors/registry.js';
export type { ErrorCode } from './errors/registry.js';
