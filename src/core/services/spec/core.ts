// The few pieces of the rest of the domain core this module uses (diagnostics, field locations,
// name and duration rules), in one place.
export type { Diagnostic } from '../../desired.js';
export { parseDuration, validateFunctionPath } from '../../names.js';
export { fieldName, joinOr, Locator, toFieldPath } from '../../manifest/locate.js';
export type { FieldPath, Position } from '../../manifest/locate.js';
export { DURATION_PATTERN } from '../../manifest/schema.js';
export { checkBytes, checkYamlDocument, composeYaml, limitMessages, positionAt, scanYamlBounds, SPEC_LIMITS } from '../../manifest/bounds.js';
export type { ParseLimits } from '../../manifest/bounds.js';
