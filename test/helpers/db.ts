import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { inject } from 'vitest';
import { type Database, fromPGlite, openPostgres, parsePostgresUrl } from '../../src/db/client.js';
import { pgliteConnection, postgresConnection, type SqlConnection } from '../../src/db/sql.js';
import { dispose } from './leftovers.js';

/** Which database the suite runs on: embedded by default, PostgreSQL with TEST_DATABASE_URL. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;
export const engine = TEST_DATABASE_URL ? 'postgres' : 'embedded';

/**
 * A migrated, empty database of its own for the caller: a copy of the template dump in memory
 * (embedded), or a fresh schema dropped afterwards (PostgreSQL). Closed after the test file.
 */
export interface TestDatabaseOptions {
  migrated?: boolean;
  logQueries?: boolean;
  /** PostgreSQL only: connect the app through this local port (a TcpProxy) instead. */
  viaPort?: number;
}

export async function createTestDatabase(opts: TestDatabaseOptions = {}): Promise<Database> {
  const migrated = opts.migrated ?? true;
  if (!TEST_DATABASE_URL) {
    const pglite = migrated
      ? await PGlite.create({ loadDataDir: new Blob([await readFile(inject('pgliteTemplate'))]) })
      : await PGlite.create();
    return dispose(fromPGlite(pglite, { location: 'memory', logQueries: opts.logQueries }), (db) => db.close());
  }
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('schema', schema);
  if (opts.viaPort) url.port = String(opts.viaPort);
  const db = await openPostgres(url.toString(), { logQueries: opts.logQueries });
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

/**
 * An empty, unmigrated database plus dedicated SQL connections to it, for tests of the migration
 * applier with hand-made migration lists (`applyMigrations(await connect(), migrations)`).
 * Embedded: the connection shares the in-memory PGlite with Prisma. PostgreSQL: a pg.Client of its
 * own on the same schema, as `Database.migrate()` uses; the caller closes it.
 */
export async function createTestSqlDatabase(): Promise<{ db: Database; connect: () => Promise<SqlConnection> }> {
  if (!TEST_DATABASE_URL) {
    const pglite = await PGlite.create({ loadDataDir: await emptyDump() });
    const db = dispose(fromPGlite(pglite, { location: 'memory' }), (d) => d.close());
    return { db, connect: async () => pgliteConnection(pglite) };
  }
  const db = await createTestDatabase({ migrated: false });
  const [row] = await db.prisma.$queryRaw<{ schema: string }[]>`SELECT current_schema() AS schema`;
  if (!row) throw new Error('no current schema');
  return {
    db,
    connect: () =>
      postgresConnection({
        connectionString: parsePostgresUrl(TEST_DATABASE_URL).connectionString,
        options: `-c search_path="${row.schema}"`,
      }),
  };
}

/** Counts the SQL statements a database opened with `logQueries` runs (the N+1 guard). */
export function countQueries(db: Database): { readonly total: number } {
  const counter = { total: 0 };
  // The client's type only admits `$on('query')` when its log options are known statically.
  const prisma = db.prisma as unknown as { $on(event: 'query', listener: () => void): void };
  prisma.$on('query', () => {
    counter.total++;
  });
  return counter;
}

let empty: Promise<Blob> | undefined;
/** A dump of a fresh, empty PGlite, made once per test file: loading it is several times faster than init. */
function emptyDump(): Promise<Blob> {
  empty ??= (async () => {
    const pglite = await PGlite.create();
    try {
      return await pglite.dumpDataDir('none');
    } finally {
      await pglite.close();
    }
  })();
  return empty;
}
