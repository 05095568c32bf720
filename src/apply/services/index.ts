// The service reconciler: public entry point.
export { ServiceReconciler, dependencyOrder, problemText } from './applier.js';
export type {
  ServiceReconcilerOptions, ServiceReconcileResult, FailedService, BlockedService, ServiceLogger, AppliedServices, AppliedServicesPort,
} from './applier.js';
export { isReady, waitReady } from './health.js';
export { readAppliedState, importAppliedFile, importAppliedFiles, appliedFilePath, type AppliedState } from './state-file.js';
