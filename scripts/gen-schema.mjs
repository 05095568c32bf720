#!/usr/bin/env node
// Writes schema/zerverless.schema.json from the TypeScript schema object (src/core/manifest/schema.ts).
// Run after changing the schema: `node scripts/gen-schema.mjs` (a test fails while they differ).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const { manifestSchema } = await import('../src/core/manifest/schema.ts');
const out = fileURLToPath(new URL('../schema/zerverless.schema.json', import.meta.url));
writeFileSync(out, `${JSON.stringify(manifestSchema, null, 2)}\n`);
console.log(`wrote ${out}`);
