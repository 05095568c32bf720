// Lint configuration: typescript-eslint's recommended rules over src/, plain JS rules for scripts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.zerverless/**', 'examples/**/handlers/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Buffer: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'path', 'http', 'child_process', 'better-sqlite3', 'hono', '@hono/*'], message: 'The domain core is pure: no I/O imports.' },
          {
            group: ['**/sources/**', '**/runtimes/**', '**/store/**', '**/gateway/**', '**/api/**', '**/cli/**', '**/server/**', '**/reconciler/**', '**/telemetry/**', '**/services/node/**', '**/services/reconciler/**', '**/services/gitops*'],
            message: 'The core must not import adapters.',
          },
        ],
      }],
    },
  },
);
