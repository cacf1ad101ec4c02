import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import { ANY_TABLE, writtenTable } from '../../src/db/write-clock.js';
import { createTestDatabase } from '../helpers/db.js';

/** The write clock moves after each visible write, whichever way it is made, and not on reads. */

let db: Database;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.close());

async function advancesOf(run: () => Promise<unknown>): Promise<number> {
  const before = db.writes.generation;
  await run();
  return db.writes.generation - before;
}

const row = (name: string) => ({ kind: 'STREAMER' as const, name, host: '127.0.0.1', httpPort: 80, apiPort: 81 });

describe('write clock', () => {
  it('stays still on reads', async () => {
    expect(await advancesOf(() => db.prisma.node.findMany({ take: 5 }))).toBe(0);
    expect(await advancesOf(() => db.prisma.$queryRaw`SELECT 1`)).toBe(0);
  });

  it('moves after a model write and a raw write', async () => {
    expect(await advancesOf(() => db.prisma.node.create({ data: row('clock-a') }))).toBeGreaterThan(0);
    expect(
      await advancesOf(() => db.prisma.$executeRaw`UPDATE "Node" SET "name" = 'clock-b' WHERE "name" = 'clock-a'`),
    ).toBeGreaterThan(0);
  });

  it('moves when a transaction commits, not while it is open', async () => {
    let seenInside = 0;
    const start = db.writes.generation;
    await db.prisma.$transaction(async (tx) => {
      const { id } = await tx.node.create({ data: row('clock-c') });
      await tx.node.update({ where: { id }, data: { httpPort: 82 } });
      seenInside = db.writes.generation - start;
    });
    expect(seenInside).toBe(0);
    expect(db.writes.generation - start).toBeGreaterThan(0);
  });

  it('does not move for a transaction that rolls back', async () => {
    const start = db.writes.generation;
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.node.create({ data: row('clock-d') });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(db.writes.generation).toBe(start);
    expect(await db.prisma.node.findFirst({ where: { name: 'clock-d' } })).toBeNull();
  });
});

describe('writtenTable', () => {
  it('names the table of Prisma-style and hand-written writes, * when it cannot tell, null for reads', () => {
    expect(writtenTable('INSERT INTO "public"."Node" ("id") VALUES ($1)')).toBe('Node');
    expect(writtenTable('\n      UPDATE "ApiToken" AS t SET "lastUsedAt" = now()')).toBe('ApiToken');
    expect(writtenTable('DELETE FROM "bench"."EventLog" WHERE "seq" < 5')).toBe('EventLog');
    expect(writtenTable('WITH x AS (DELETE FROM "Node" RETURNING 1) SELECT 1')).toBe(ANY_TABLE);
    expect(writtenTable('  select 1')).toBeNull();
    expect(writtenTable('COMMIT')).toBeNull();
  });

  it('tells listeners which tables a transaction wrote', async () => {
    const seen: string[][] = [];
    const stop = db.writes.onAdvance((notice) => seen.push([...notice.tables]));
    await db.prisma.$transaction(async (tx) => {
      const { id } = await tx.node.create({ data: row('clock-e') });
      await tx.node.delete({ where: { id } });
    });
    stop();
    expect(seen).toEqual([['Node']]);
  });
});
