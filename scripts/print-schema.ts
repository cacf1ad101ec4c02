// Writes schema.graphql from the Pothos schema (sorted). test/schema.test.ts fails when the
// committed file is stale, so run this after changing any module's schema.ts.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PROJECT_ROOT } from '../src/lib/paths.js';
import { printSortedSchema } from '../src/schema.js';

const target = resolve(PROJECT_ROOT, 'schema.graphql');
await writeFile(target, printSortedSchema());
console.log(`wrote ${target}`);
