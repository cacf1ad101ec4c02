/**
 * Rewrites the README's configuration table from src/env.ts (`npm run docs:env`); test/docs.test.ts
 * fails when the two differ.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { envHelp } from '../src/env.js';
import { PROJECT_ROOT } from '../src/lib/paths.js';

const path = resolve(PROJECT_ROOT, 'README.md');
const lines = (await readFile(path, 'utf8')).split('\n');
const first = lines.findIndex((line) => line.startsWith('| `PORT` |'));
if (first < 0) throw new Error('README.md: no configuration table (a row starting with | `PORT` |)');
let end = first;
while (lines[end]?.startsWith('| `')) end++;
const rows = envHelp().map(
  (v) => `| \`${v.name}\` | ${v.default === 'unset' ? 'unset' : `\`${v.default}\``} | ${v.help} |`,
);
lines.splice(first, end - first, ...rows);
await writeFile(path, lines.join('\n'));
console.log(`README.md: ${rows.length} variables`);
