// JSON Schema (draft-07) of zerverless.yaml: the structural half of validation, and what editors
// use for completion. `schema/zerverless.schema.json` is generated from this object by
// `node scripts/gen-schema.mjs` (a test checks they are equal). Rules that need several fields or
// better messages (one code source per function, path rules, durations, duplicates) live in parse.ts.

import { MAX_ENV_FROM } from '../secrets.js';

export const RUNTIMES = ['lua', 'python', 'js', 'javascript', 'typescript', 'ts', 'docker'] as const;
export type ManifestRuntime = (typeof RUNTIMES)[number];

export const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h)?$';
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';

/**
 * Linux capability names (capabilities(7), without `CAP_`), in kernel order (CAP_CHOWN = 0 …
 * CAP_CHECKPOINT_RESTORE = 40). A docker function may keep some; all others are dropped.
 */
export const LINUX_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;
export type LinuxCapability = (typeof LINUX_CAPABILITIES)[number];

/**
 * The capabilities a docker function may keep: Docker's own default set. The others (SYS_ADMIN,
 * SYS_MODULE, DAC_READ_SEARCH, SYS_PTRACE, NET_ADMIN, BPF, …) open ways out of the container.
 */
export const ALLOWED_CAPABILITIES = [
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'NET_RAW',
  'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
] as const satisfies readonly LinuxCapability[];

export const MEMORY_MIN_MB = 8;
export const MEMORY_MAX_MB = 4096;
export const TIMEOUT_MAX_MS = 3_600_000;

const relPath = (description: string) => ({ type: 'string', minLength: 1, description });

export const manifestSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://zerverless.io/schema/zerverless.schema.json',
  title: 'zerverless.yaml',
  description: 'A zerverless Application: functions and a static site deployed from this repository.',
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'zerverless.io/v1', description: 'Manifest format version: zerverless.io/v1.' },
    kind: { const: 'Application', description: 'Always Application.' },
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      description: 'Who this application is.',
      properties: {
        name: {
          type: 'string', maxLength: 63, pattern: DNS_LABEL_PATTERN,
          description: 'Application name: a DNS label (lower-case letters, digits, -).',
        },
        namespace: {
          type: 'string', maxLength: 63, pattern: DNS_LABEL_PATTERN,
          description: 'Must equal the namespace the application is registered in; functions are served at /{namespace}{path}.',
        },
        labels: {
          type: 'object', additionalProperties: { type: 'string' },
          description: 'Free-form string labels (informational).',
        },
      },
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      description: 'What to deploy.',
      properties: {
        source: {
          type: 'object',
          additionalProperties: false,
          description: 'Informational: the registered source (API) wins; a difference is a warning.',
          properties: {
            repoURL: { type: 'string', minLength: 1, description: 'Git repository URL.' },
            branch: { type: 'string', minLength: 1, description: 'Branch to follow (default main).' },
            path: { type: 'string', description: 'Folder of the repository holding zerverless.yaml.' },
          },
        },
        functions: {
          type: 'array',
          description: 'Functions served at /{namespace}{path}.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['path', 'runtime'],
            properties: {
              path: {
                type: 'string', pattern: '^/',
                description: 'URL path below the namespace, starting with / (no .., //, ? or #). Longest prefix wins.',
              },
              runtime: {
                type: 'string', enum: [...RUNTIMES],
                description: 'lua | python | js (javascript) | typescript (ts) | docker.',
              },
              code: { type: 'string', description: 'Inline source code defining handle(req). Exclusive with codeFile.' },
              codeFile: relPath('Source file, relative to the repository folder of zerverless.yaml. Exclusive with code.'),
              dockerfile: relPath('docker only: the Dockerfile, relative to the repository folder.'),
              context: relPath('docker only: the build context folder (default: the folder holding the Dockerfile).'),
              timeout: {
                type: ['string', 'integer'], pattern: DURATION_PATTERN, minimum: 1, maximum: TIMEOUT_MAX_MS,
                description: 'Request timeout: 500ms, 30s, 5m, 1h or milliseconds (default 30s, at most 1h).',
              },
              memory: {
                type: 'integer', minimum: MEMORY_MIN_MB, maximum: MEMORY_MAX_MB,
                description: `Memory limit in MiB (default 128, ${MEMORY_MIN_MB}..${MEMORY_MAX_MB}).`,
              },
              env: {
                type: 'object',
                additionalProperties: { type: ['string', 'number', 'boolean'] },
                propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
                description: 'Environment variables; numbers and booleans are turned into strings.',
              },
              envFrom: {
                type: 'array',
                maxItems: MAX_ENV_FROM,
                items: relPath('A secrets file, relative to the repository folder: encrypted with age to the server (zerverless secrets encrypt) or a SOPS file with age recipients (YAML, JSON or dotenv).'),
                description: `Secrets files whose key/value pairs join env (at most ${MAX_ENV_FROM}); a later file wins over an earlier one, and env wins over all of them.`,
              },
              port: {
                type: 'integer', minimum: 1, maximum: 65535,
                description: 'docker only: the port the container listens on (default: the single port the image EXPOSEs, else 8080; passed as PORT).',
              },
              capabilities: {
                type: 'array',
                uniqueItems: true,
                items: { type: 'string', enum: [...ALLOWED_CAPABILITIES] },
                description: 'docker only: Linux capabilities the container keeps, without CAP_ (e.g. NET_BIND_SERVICE); all others are dropped.',
              },
            },
          },
        },
        static: {
          type: 'object',
          additionalProperties: false,
          required: ['dir'],
          description: 'A static site served at /static/{namespace}/.',
          properties: {
            dir: relPath('Folder of static files, relative to the repository folder of zerverless.yaml.'),
          },
        },
      },
    },
  },
} as const;
