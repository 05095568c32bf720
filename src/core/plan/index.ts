// The plan of one application: what its desired state (one commit's functions, static site and
// services) changes in what is deployed. Pure data, printable as JSON; the reconciler's plan step
// calls planApplication and the appliers carry it out, functions and static first, then services.
import type { DeployedState, DesiredState } from '../desired.js';
import type { ServiceAction, ServiceSpec } from '../services/types.js';
import { planFunctions, type Plan, type PlanSummary } from './functions.js';
import { planServices } from './services.js';

export { planFunctions, functionChanges, isNoop } from './functions.js';
export type { Action, FunctionChange, Plan, PlanSummary, StaticChange } from './functions.js';
export { planServices, canonical } from './services.js';

/** One commit read: what should run. */
export interface DesiredApplication {
  state: DesiredState;
  /** The specs of the apps/ folder (none without one). */
  services?: readonly ServiceSpec[];
}

/** What runs now: the last committed state (null before the first sync) and the applied service specs. */
export interface DeployedApplication {
  state: DeployedState | null;
  services?: readonly ServiceSpec[];
}

const SERVICE_COUNT: Record<ServiceAction, keyof PlanSummary> = {
  deploy: 'create', upgrade: 'update', reconfigure: 'update', apply: 'update', remove: 'delete', unchanged: 'unchanged',
};

/** The one plan of an application: functions, static files and services, with one summary. */
export function planApplication(desired: DesiredApplication, deployed: DeployedApplication): Plan {
  const plan = planFunctions(desired.state, deployed.state);
  const services = planServices(desired.services ?? [], deployed.services ?? []);
  for (const c of services) plan.summary[SERVICE_COUNT[c.action]]++;
  return { ...plan, services };
}
