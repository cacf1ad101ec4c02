import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envHelp } from '../src/env.js';
import { PROJECT_ROOT } from '../src/lib/paths.js';

describe('README', () => {
  it('documents every environment variable with its default, as --help does', async () => {
    const readme = await readFile(resolve(PROJECT_ROOT, 'README.md'), 'utf8');
    const rows = new Map(
      [...readme.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \|/gm)].map((m) => [
        m[1],
        (m[2] ?? '').trim().replaceAll('`', ''),
      ]),
    );
    for (const v of envHelp()) expect([v.name, rows.get(v.name)]).toEqual([v.name, v.default]);
  });
});
