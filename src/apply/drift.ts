// Drift repair (PRODUCT.md §11): what a repair of a function, static file or service reports. The
// appliers make these (Deployer.repairDrift, ServiceHost.repairDrift); reconciler/drift.ts ties
// them together for one application, publishes each one and describes them for the history.

export interface DriftRepair {
  kind: 'function' | 'static' | 'service';
  /** The function's path (`/api/hello`), the static file's path (`css/site.css`) or the service's name. */
  target: string;
  /** What was wrong, in a few words: `container removed`, `container stopped`, `blob missing`, `blob corrupt`, `process gone`. */
  problem: string;
  result: 'repaired' | 'failed';
  /** Why the repair failed. */
  message?: string;
  /** What the check saw (e.g. the container id, the blob hash). */
  detail?: string;
}
