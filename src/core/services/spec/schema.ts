// JSON Schema (draft-07) of a service spec (`apps/<name>/app.config|yaml|json`), the structural
// half of validation shared by the three forms: an Erlang term file is first turned into the same
// JS shape (atoms and binaries → strings). A null value (`undefined`/`nil` in Erlang, an empty
// value in YAML) means "not set": parse.ts drops such keys before this schema sees them. Fields the
// schema does not know are reported as warnings,
// not errors (bc_gitops specs may carry more). Rules across fields (git ref aliases, env key
// upper-casing, port pinning, durations) live in parse.ts.

import { DURATION_PATTERN } from './core.js';

export { DURATION_PATTERN };

/** bc_gitops application names are atoms: lower-case letters, digits, `_` and `-`. */
export const SERVICE_NAME_PATTERN = '^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$';
export const SHA256_PATTERN = '^[0-9a-fA-F]{64}$';
export const SOURCE_TYPES = ['npm', 'git', 'release'] as const;
export const HEALTH_TYPES = ['http', 'tcp', 'custom'] as const;
export const DEFAULT_HEALTH_INTERVAL_MS = 30_000;
export const DEFAULT_HEALTH_TIMEOUT_MS = 5_000;

const port = { type: 'integer', minimum: 1, maximum: 65535 };
const duration = { type: ['integer', 'string'], minimum: 1, pattern: DURATION_PATTERN };

const whenType = (type: string, required: string[]): object => ({
  if: { type: 'object', required: ['type'], properties: { type: { const: type } } },
  then: { required },
});

export const serviceSpecSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'zerverless service spec',
  description: 'One Node service (apps/<name>/app.config, app.yaml, app.json …), the bc_gitops app spec.',
  type: 'object',
  required: ['name', 'version', 'source'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 63, pattern: SERVICE_NAME_PATTERN, description: 'Service name (an atom in Erlang).' },
    version: { type: 'string', minLength: 1, maxLength: 128, description: 'Version to run; a change is an upgrade.' },
    description: { type: 'string', description: 'bc_gitops: informational.' },
    icon: { description: 'bc_gitops: ignored.' },
    source: {
      type: 'object',
      required: ['type'],
      additionalProperties: false,
      description: 'Where the code comes from: npm, git or release.',
      properties: {
        type: { type: 'string', enum: [...SOURCE_TYPES] },
        package: { type: 'string', minLength: 1, description: 'npm: package name (default: the service name).' },
        url: { type: 'string', minLength: 1, description: 'git: repository URL; release: tarball URL.' },
        ref: { type: 'string', minLength: 1, description: 'git: branch, tag or commit.' },
        branch: { type: 'string', minLength: 1, description: 'git: alias of ref.' },
        tag: { type: 'string', minLength: 1, description: 'git: alias of ref.' },
        // Checked for release sources only: on another source it is ignored with a warning (bc_gitops).
        sha256: { description: 'release: sha256 of the tarball (hex).' },
      },
      allOf: [
        whenType('git', ['url']),
        {
          if: { type: 'object', required: ['type'], properties: { type: { const: 'release' } } },
          then: { required: ['url', 'sha256'], properties: { sha256: { type: 'string', pattern: SHA256_PATTERN } } },
        },
      ],
    },
    env: {
      type: 'object',
      additionalProperties: { type: ['string', 'number', 'boolean', 'array', 'object'] },
      description: 'Environment; keys are upper-cased. env.port/PORT pins the port. A list or map value is passed as its JSON text.',
    },
    health: {
      type: 'object',
      additionalProperties: false,
      description: 'Health check run every interval.',
      properties: {
        type: { type: 'string', enum: [...HEALTH_TYPES] },
        port,
        path: { type: 'string', pattern: '^/' },
        command: { type: 'string', minLength: 1 },
        interval: duration,
        timeout: duration,
        module: { description: 'bc_gitops: an Erlang module; ignored (use command).' },
      },
      allOf: [whenType('custom', ['command'])],
    },
    depends_on: {
      type: 'array',
      uniqueItems: true,
      items: { type: 'string', maxLength: 63, pattern: SERVICE_NAME_PATTERN },
      description: 'Services deployed (and healthy) before this one.',
    },
    route: { type: 'string', pattern: '^/', description: 'The gateway proxies /{namespace}{route} to the service.' },
    port: { ...port, description: 'A pinned port (upgrades then stop → start).' },
  },
} as const;
