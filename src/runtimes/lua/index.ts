// Public entry of the Lua runtime.
export { LuaRuntime } from './runtime.js';
export type { LuaRuntimeOptions } from './runtime.js';
