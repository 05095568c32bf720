// The few pieces of the domain core this module uses (diagnostics, field locations, name and
// duration rules), in one place. They live two folders up, which the lint pattern for core purity
// (`../*/**` except `../core/**`) mistakes for an adapter import; all of them are pure core modules.
/* eslint-disable no-restricted-imports -- core-internal imports, see the header */
export type { Diagnostic } from '../../model.js';
export { parseDuration, validateFunctionPath } from '../../names.js';
export { fieldName, Locator } from '../../manifest/locate.js';
export type { FieldPath, Position } from '../../manifest/locate.js';
