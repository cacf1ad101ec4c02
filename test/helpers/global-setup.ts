import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { applyMigrations } from '../../src/db/migrate.js';
import { pgliteConnection } from '../../src/db/sql.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A dump of a freshly migrated embedded database; each test file loads its own copy. */
    pgliteTemplate: string;
  }
}

/**
 * Initialising a PGlite cluster costs seconds; migrating it once and loading the dump per test
 * file costs a fraction of that (STACK-NOTES: "For fast tests…").
 */
export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), 'streamgate-test-'));
  const db = await PGlite.create();
  await applyMigrations(pgliteConnection(db));
  const dump = await db.dumpDataDir('none');
  const file = join(dir, 'template.tar');
  await writeFile(file, Buffer.from(await dump.arrayBuffer()));
  await db.close();
  project.provide('pgliteTemplate', file);
  return () => rm(dir, { recursive: true, force: true });
}
