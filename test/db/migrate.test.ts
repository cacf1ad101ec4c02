import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyMigrations, loadMigrations, type Migration, MigrationError } from '../../src/db/migrate.js';
import type { SqlConnection } from '../../src/db/sql.js';
import { Prisma } from '../../src/generated/prisma/client.js';
import { MIGRATIONS_DIR } from '../../src/lib/paths.js';
import { createTestDatabase, createTestSqlDatabase } from '../helpers/db.js';
import { dispose } from '../helpers/leftovers.js';

// The applier (src/db/migrate.ts) on a fresh, unmigrated database of the suite's engine: an
// in-memory PGlite by default, a fresh PostgreSQL schema with TEST_DATABASE_URL.

interface MigrationRow {
  id: string;
  migration_name: string;
  checksum: string;
  started_at: Date;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
  applied_steps_count: number;
}

const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

function migration(name: string, sql: string): Migration {
  return { name, sql, checksum: sha256(sql) };
}

const rowsOf = (conn: SqlConnection) =>
  conn.query<MigrationRow>('SELECT * FROM "_prisma_migrations" ORDER BY started_at, migration_name');

/**
 * What a migration can leave behind in the current schema: relations (tables, indexes,
 * sequences, views), their columns, types (enums, domains), and the bookkeeping rows.
 */
async function snapshot(conn: SqlConnection) {
  const relations = await conn.query(
    `SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() ORDER BY c.relname`,
  );
  const columns = await conn.query(
    `SELECT table_name, column_name, data_type FROM information_schema.columns
     WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
  );
  const types = await conn.query(
    `SELECT t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd') ORDER BY t.typname`,
  );
  const bookkeeping = await conn.query(
    'SELECT id, migration_name, checksum, finished_at FROM "_prisma_migrations" ORDER BY id',
  );
  return { relations, columns, types, bookkeeping };
}

async function tablesIn(conn: SqlConnection): Promise<string[]> {
  const rows = await conn.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`,
  );
  return rows.map((r) => r.table_name);
}

/** An unmigrated database and one dedicated connection to it (closed after the test file). */
async function fresh() {
  const { db, connect } = await createTestSqlDatabase();
  // Disposers run in reverse: the connection is closed before its schema is dropped.
  const conn = dispose(await connect(), (c) => c.close());
  return { db, conn };
}

const good1 = migration('20990101000000_one', 'CREATE TABLE "One" ("id" INTEGER PRIMARY KEY);\n');
const good2 = migration(
  '20990102000000_two',
  `CREATE TYPE "Mood" AS ENUM ('HAPPY', 'SAD');\nCREATE TABLE "Two" ("id" INTEGER PRIMARY KEY, "mood" "Mood");\n`,
);
// Fails on its third statement, after creating a table, an enum, an index and a column.
const bad3 = migration(
  '20990103000000_three',
  [
    'CREATE TABLE "Partial" ("id" INTEGER PRIMARY KEY, "name" TEXT);',
    `CREATE TYPE "Colour" AS ENUM ('RED');`,
    'CREATE INDEX "Partial_name_idx" ON "Partial"("name");',
    'ALTER TABLE "One" ADD COLUMN "extra" TEXT;',
    'ALTER TABLE "DoesNotExist" ADD COLUMN "x" INTEGER;',
  ].join('\n'),
);
const fixed3 = migration(
  '20990103000000_three',
  'CREATE TABLE "Partial" ("id" INTEGER PRIMARY KEY, "name" TEXT);\nALTER TABLE "One" ADD COLUMN "extra" TEXT;\n',
);

describe('applyMigrations', () => {
  it('applies the committed migrations once, with Prisma-compatible bookkeeping', async () => {
    const { db, conn } = await fresh();
    const dirs = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(dirs.length).toBeGreaterThan(0);

    const report = await db.migrate();
    expect(report).toEqual({ applied: dirs, alreadyApplied: 0, modified: [] });

    const rows = await rowsOf(conn);
    expect(rows.map((r) => r.migration_name)).toEqual(dirs);
    for (const row of rows) {
      // Prisma's checksum: lowercase hex SHA-256 of the raw migration.sql bytes.
      const bytes = await readFile(join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(sha256(bytes));
      expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
      expect(row.rolled_back_at).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }

    const again = await db.migrate();
    expect(again).toEqual({ applied: [], alreadyApplied: dirs.length, modified: [] });
    expect(await rowsOf(conn)).toEqual(rows);
  });

  it('records hand-made migrations in order and skips them on the next run', async () => {
    const { conn } = await fresh();
    expect(await applyMigrations(conn, [good1, good2])).toEqual({
      applied: [good1.name, good2.name],
      alreadyApplied: 0,
      modified: [],
    });
    const rows = await rowsOf(conn);
    expect(rows.map((r) => [r.migration_name, r.checksum, r.applied_steps_count])).toEqual([
      [good1.name, good1.checksum, 1],
      [good2.name, good2.checksum, 1],
    ]);
    expect(await tablesIn(conn)).toEqual(['One', 'Two', '_prisma_migrations']);

    expect(await applyMigrations(conn, [good1, good2])).toEqual({ applied: [], alreadyApplied: 2, modified: [] });
    expect(await rowsOf(conn)).toEqual(rows);
  });

  it('a failing migration throws MigrationError naming it and leaves the database exactly as it was', async () => {
    const { conn } = await fresh();
    await applyMigrations(conn, [good1, good2]);
    await conn.exec(`INSERT INTO "One" ("id") VALUES (1), (2)`);
    const before = await snapshot(conn);

    const error = await applyMigrations(conn, [good1, good2, bad3]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toContain(bad3.name);
    expect((error as Error).message).toMatch(/DoesNotExist/);

    // No partial table, enum, index or column; no bookkeeping row; data untouched.
    expect(await snapshot(conn)).toEqual(before);
    expect(await conn.query('SELECT "id" FROM "One" ORDER BY "id"')).toEqual([{ id: 1 }, { id: 2 }]);
    // The connection is usable again: not stuck in an aborted transaction.
    expect(await conn.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);

    // The next run with the fixed migration goes through.
    expect(await applyMigrations(conn, [good1, good2, fixed3])).toEqual({
      applied: [fixed3.name],
      alreadyApplied: 2,
      modified: [],
    });
    expect(await tablesIn(conn)).toEqual(['One', 'Partial', 'Two', '_prisma_migrations']);
    const rows = await rowsOf(conn);
    expect(rows.map((r) => [r.migration_name, r.checksum])).toEqual([
      [good1.name, good1.checksum],
      [good2.name, good2.checksum],
      [fixed3.name, fixed3.checksum],
    ]);
  });

  it('stops at the first failing migration; the ones before it stay applied, none after it run', async () => {
    const { conn } = await fresh();
    const after = migration('20990104000000_four', 'CREATE TABLE "Four" ("id" INTEGER);\n');
    await expect(applyMigrations(conn, [good1, bad3, after])).rejects.toThrow(MigrationError);
    expect(await tablesIn(conn)).toEqual(['One', '_prisma_migrations']);
    expect((await rowsOf(conn)).map((r) => r.migration_name)).toEqual([good1.name]);
  });

  it('refuses to run while a failed migration recorded by Prisma is unresolved', async () => {
    const { conn } = await fresh();
    await applyMigrations(conn, [good1]);
    // What `prisma migrate deploy` leaves after a failure: finished_at and rolled_back_at NULL.
    await conn.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, started_at, applied_steps_count)
       VALUES ('00000000-0000-4000-8000-000000000002', $1, $2, 'ERROR: boom', now(), 0)`,
      [good2.checksum, good2.name],
    );
    const before = await snapshot(conn);
    const error = await applyMigrations(conn, [good1, good2]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toContain(good2.name);
    expect((error as Error).message).toMatch(/prisma migrate resolve/);
    expect(await snapshot(conn)).toEqual(before);
    expect(await tablesIn(conn)).not.toContain('Two');

    // `prisma migrate resolve --rolled-back` sets rolled_back_at: then it is applied again.
    await conn.query(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1`, [good2.name]);
    expect(await applyMigrations(conn, [good1, good2])).toEqual({
      applied: [good2.name],
      alreadyApplied: 1,
      modified: [],
    });
    expect(await tablesIn(conn)).toContain('Two');
  });

  it('reports an applied migration whose SQL was edited since, without re-running it', async () => {
    const { conn } = await fresh();
    await applyMigrations(conn, [good1, good2]);
    const edited = migration(good1.name, `${good1.sql}-- edited after it was applied\n`);
    expect(edited.checksum).not.toBe(good1.checksum);
    expect(await applyMigrations(conn, [edited, good2])).toEqual({
      applied: [],
      alreadyApplied: 2,
      modified: [good1.name],
    });
    // The stored checksum stays the one that was applied.
    expect((await rowsOf(conn)).find((r) => r.migration_name === good1.name)?.checksum).toBe(good1.checksum);
  });

  it('loadMigrations reads prisma/migrations in name order with raw-byte checksums', async () => {
    const migrations = await loadMigrations();
    expect(migrations.map((m) => m.name)).toEqual([...migrations.map((m) => m.name)].sort());
    for (const m of migrations) {
      const bytes = await readFile(join(MIGRATIONS_DIR, m.name, 'migration.sql'));
      expect(m.checksum).toBe(sha256(bytes));
      expect(m.sql).toBe(bytes.toString('utf8'));
    }
  });
});

describe('the migrated database matches the Prisma schema', () => {
  it('covers every model (a new model must be added to the test below)', () => {
    expect(Object.values(Prisma.ModelName).sort()).toEqual([
      'ApiToken',
      'EventLog',
      'Node',
      'Proxy',
      'Session',
      'SessionOperator',
      'Settings',
    ]);
  });

  it('every model can be created and read back', async () => {
    const db = await createTestDatabase({ migrated: false });
    await db.migrate();
    const { prisma } = db;

    const pinged = new Date('2026-01-02T03:04:05.678Z');
    const node = await prisma.node.create({
      data: {
        kind: 'STREAMER',
        name: 'streamer-1',
        host: 'streamer.example',
        apiPort: 8081,
        httpPort: 8080,
        lastPingedAt: pinged,
        healthLatencyMs: 12.5,
        healthDetail: 'ok',
        healthySince: pinged,
        status: 'HEALTHY',
      },
    });
    expect(await prisma.node.findUniqueOrThrow({ where: { id: node.id } })).toEqual(node);
    expect(node).toMatchObject({ kind: 'STREAMER', httpPort: 8080, healthLatencyMs: 12.5, lastPingedAt: pinged });
    // Database-side defaults and the UUIDv7 id.
    const cache = await prisma.node.create({ data: { kind: 'CACHE', name: 'cache-1', host: '10.0.0.1', apiPort: 1 } });
    expect(cache).toMatchObject({ status: 'UNKNOWN', httpPort: null, lastPingedAt: null, healthySince: null });
    expect(cache.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(cache.createdAt).toBeInstanceOf(Date);
    // The unique (kind, name) index exists.
    await expect(
      prisma.node.create({ data: { kind: 'CACHE', name: 'cache-1', host: '10.0.0.2', apiPort: 2 } }),
    ).rejects.toMatchObject({ code: 'P2002' });
    expect(await prisma.node.findUnique({ where: { kind_name: { kind: 'CACHE', name: 'cache-1' } } })).toEqual(cache);

    const token = await prisma.apiToken.create({ data: { name: 'ci', tokenHash: sha256('secret') } });
    expect(token).toMatchObject({ role: 'admin' });
    expect(await prisma.apiToken.findUniqueOrThrow({ where: { tokenHash: sha256('secret') } })).toEqual(token);
    await expect(prisma.apiToken.create({ data: { name: 'ci', tokenHash: sha256('other') } })).rejects.toMatchObject({
      code: 'P2002',
    });
    const created = new Date('2026-03-04T05:06:07.890Z'); // timestamptz(3) keeps milliseconds
    expect(await prisma.apiToken.update({ where: { id: token.id }, data: { createdAt: created } })).toMatchObject({
      createdAt: created,
    });
  });

  it('sessions: operators cascade with their session, and FINISHED is final in the database itself', async () => {
    const { prisma } = await createTestDatabase();
    const clientId = '0191e0a0-0000-7000-8000-000000000001';
    const session = await prisma.session.create({ data: { clientId, streamKeyHash: sha256('key') } });
    expect(session).toMatchObject({ status: 'WAITING', framesRelayed: 0n, bytesRelayed: 0n, startedAt: null });
    await prisma.sessionOperator.create({ data: { sessionId: session.id, userId: 'op-1' } });
    await prisma.session.update({ where: { id: session.id }, data: { status: 'ACTIVE' } });
    // A finished session must have its finishing time …
    await expect(prisma.session.update({ where: { id: session.id }, data: { status: 'FINISHED' } })).rejects.toThrow(
      /Session_finished_has_time_check/,
    );
    const finishedAt = new Date();
    await prisma.session.update({ where: { id: session.id }, data: { status: 'FINISHED', finishedAt } });
    // … and no write, however it is phrased, moves it out of FINISHED.
    await expect(prisma.session.update({ where: { id: session.id }, data: { status: 'ACTIVE' } })).rejects.toThrow(
      /is finished/,
    );
    await expect(prisma.$executeRawUnsafe(`UPDATE "Session" SET status = 'WAITING'`)).rejects.toThrow(/is finished/);
    expect(await prisma.session.findUniqueOrThrow({ where: { id: session.id } })).toMatchObject({
      status: 'FINISHED',
      finishedAt,
    });
    await prisma.session.delete({ where: { id: session.id } });
    expect(await prisma.sessionOperator.count()).toBe(0);
  });

  it('event log entries get increasing seqs; settings is one row holding the defaults', async () => {
    const { prisma } = await createTestDatabase();
    const first = await prisma.eventLog.create({
      data: { severity: 'WARN', source: 'system', type: 't', message: 'm', details: { a: 1 } },
    });
    const second = await prisma.eventLog.create({
      data: { severity: 'INFO', source: 'nodes', type: 't', message: 'm' },
    });
    expect(second.seq).toBeGreaterThan(first.seq);
    expect(first).toMatchObject({ details: { a: 1 }, actorId: null, actorName: null });
    expect(await prisma.settings.findMany()).toEqual([
      expect.objectContaining({
        id: 1,
        staleThresholdDays: 7,
        healthCheckIntervalSeconds: 30,
        healthFailureThreshold: 3,
        healthSuccessThreshold: 2,
        sslCertificateId: null,
      }),
    ]);
    await expect(prisma.settings.create({ data: { id: 2 } })).rejects.toThrow(/Settings_single_row_check/);
  });

  it('proxies: domain and NPM host are unique, and a domain is stored normalised', async () => {
    const { prisma } = await createTestDatabase();
    const proxy = await prisma.proxy.create({
      data: { domain: 'app.example.com', destination: 'http://10.0.0.5:8080/', npmHostId: 7 },
    });
    expect(proxy).toMatchObject({ status: 'UNKNOWN', sslCertificateId: null, lastCheckedAt: null, healthySince: null });
    expect(await prisma.proxy.findUniqueOrThrow({ where: { domain: 'app.example.com' } })).toEqual(proxy);
    await expect(
      prisma.proxy.create({ data: { domain: 'app.example.com', destination: 'http://10.0.0.6/' } }),
    ).rejects.toMatchObject({ code: 'P2002' });
    await expect(
      prisma.proxy.create({ data: { domain: 'other.example.com', destination: 'http://10.0.0.6/', npmHostId: 7 } }),
    ).rejects.toMatchObject({ code: 'P2002' });
    // Uniqueness is case-insensitive because nothing else can be stored.
    await expect(
      prisma.proxy.create({ data: { domain: 'App.example.com', destination: 'http://10.0.0.6/' } }),
    ).rejects.toThrow(/Proxy_domain_normalised/);
    await expect(
      prisma.proxy.create({ data: { domain: 'app.example.com.', destination: 'http://10.0.0.6/' } }),
    ).rejects.toThrow(/Proxy_domain_normalised/);
  });
});
