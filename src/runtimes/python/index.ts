// Public entry of the Python runtime.
export { PythonRuntime } from './runtime.js';
export type { PythonRuntimeOptions } from './runtime.js';
