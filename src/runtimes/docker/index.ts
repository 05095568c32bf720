// Public entry of the docker runtime.
export { DockerRuntime } from './runtime.js';
export type { DockerRuntimeOptions } from './runtime.js';
export { imageTag, instanceOf, IMAGE_REPO } from './build.js';
export { LABELS } from './container.js';
