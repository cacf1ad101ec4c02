import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { inject } from 'vitest';
import { type Database, fromPGlite, openPostgres } from '../../src/db/client.js';
import { dispose } from './leftovers.js';

/** Which database the suite runs on: embedded by default, PostgreSQL with TEST_DATABASE_URL. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;
export const engine = TEST_DATABASE_URL ? 'postgres' : 'embedded';

/**
 * A migrated, empty database of its own for the caller: a copy of the template dump in memory
 * (embedded), or a fresh schema dropped afterwards (PostgreSQL). Closed after the test file.
 */
export async function createTestDatabase(opts: { migrated?: boolean } = {}): Promise<Database> {
  const migrated = opts.migrated ?? true;
  if (!TEST_DATABASE_URL) {
    const pglite = migrated
      ? await PGlite.create({ loadDataDir: new Blob([await readFile(inject('pgliteTemplate'))]) })
      : await PGlite.create();
    return dispose(fromPGlite(pglite, { location: 'memory' }), (db) => db.close());
  }
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('schema', schema);
  const db = await openPostgres(url.toString());
  dispose(db, async (d) => {
    await d.close();
    const cleanup = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await cleanup.connect();
    await cleanup.query(`DROP SCHEMA "${schema}" CASCADE`);
    await cleanup.end();
  });
  if (migrated) await db.migrate();
  return db;
}
