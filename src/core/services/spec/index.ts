// Public face of the service-spec module: parse one `apps/<name>/` spec (Erlang terms, YAML or
// JSON) into a ServiceSpec, and order a set of specs by `depends_on`.
export { parseServiceSpec, SPEC_FILES, sortDiagnostics } from './parse.js';
export type { SpecParseResult, SpecLocations } from './parse.js';
export { readSpecText, specFormat } from './formats.js';
export type { SpecFormat, SpecLocator, ReadResult } from './formats.js';
export { parseErlangTerm, termToJS, proplistToMap, ErlangLocator } from './erlang.js';
export type { ErlTerm, ErlMapEntry, ErlPos, ErlangError, ErlangParseResult } from './erlang.js';
export { checkServiceGraph, orderServices, removalOrder } from './graph.js';
export type { GraphCheck, GraphOptions } from './graph.js';
export { HEX_REFUSED } from './schema-errors.js';
export {
  serviceSpecSchema, SERVICE_NAME_PATTERN, SOURCE_TYPES, HEALTH_TYPES, DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_HEALTH_TIMEOUT_MS,
} from './schema.js';
