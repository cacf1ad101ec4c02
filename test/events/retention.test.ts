import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import type { Overflow } from '../../src/lib/bounded-stream.js';
import { createLogger } from '../../src/lib/logger.js';
import { EventBus, type EventBusOptions } from '../../src/modules/events/bus.js';
import type { EventLogEntry } from '../../src/modules/events/types.js';
import { createTestDatabase } from '../helpers/db.js';
import { dispose } from '../helpers/leftovers.js';
import { sample } from './helpers.js';

const DAY = 24 * 60 * 60 * 1000;
let db: Database;
const deletes: string[] = [];
beforeAll(async () => {
  db = await createTestDatabase({ logQueries: true });
  const prisma = db.prisma as unknown as { $on(event: 'query', listener: (e: { query: string }) => void): void };
  prisma.$on('query', (e) => {
    if (/^\s*DELETE FROM "EventLog"/i.test(e.query)) deletes.push(e.query);
  });
});

beforeEach(async () => {
  await db.prisma.eventLog.deleteMany();
  await db.prisma.settings.update({ where: { id: 1 }, data: { staleThresholdDays: 7 } });
  deletes.length = 0;
});

function bus(opts: Partial<EventBusOptions> = {}): EventBus {
  const b = new EventBus({ db: db.prisma, log: createLogger('silent'), minStoredSeverity: 'WARN', ...opts });
  return dispose(b, (x) => x.close());
}

/** Entries created `daysAgo` days ago, straight into the table. */
async function seed(count: number, daysAgo: number, label: string): Promise<void> {
  await db.prisma.eventLog.createMany({
    data: Array.from({ length: count }, (_, i) => ({
      severity: 'WARN' as const,
      source: 'system',
      type: 'test',
      message: `${label} ${i}`,
      createdAt: new Date(Date.now() - daysAgo * DAY),
    })),
  });
}

async function next(live: AsyncIterator<EventLogEntry | Overflow>): Promise<EventLogEntry | undefined> {
  return (await live.next()).value as EventLogEntry | undefined;
}

describe('retention purge', () => {
  it('deletes entries older than staleThresholdDays in batches, then publishes one INFO events.purged', async () => {
    await seed(5, 8, 'stale');
    await seed(2, 6, 'kept');
    const b = bus({ purgeBatchSize: 2 });
    const live = b.subscribe({});
    expect(await b.purge()).toBe(5);
    expect(deletes).toHaveLength(3); // 2 + 2 + 1 rows
    const left = await db.prisma.eventLog.findMany({ orderBy: { seq: 'asc' } });
    expect(left.map((r) => r.message)).toEqual(['kept 0', 'kept 1']);
    const purged = await next(live);
    expect(purged).toMatchObject({
      type: 'events.purged',
      severity: 'INFO',
      source: 'system',
      details: { deleted: 5, olderThan: expect.any(String) },
    });
    const olderThan = new Date((purged?.details as { olderThan?: string } | undefined)?.olderThan ?? 0).getTime();
    expect(Math.abs(olderThan - (Date.now() - 7 * DAY))).toBeLessThan(60_000);
    // Nothing old enough left: no deletion, and no event (the next one seen is a later marker).
    expect(await b.purge()).toBe(0);
    b.emit(sample('INFO', 99));
    expect((await next(live))?.message).toBe('INFO #99');
  });

  it('follows the staleThresholdDays setting', async () => {
    await seed(3, 2, 'two-days');
    const b = bus();
    expect(await b.purge()).toBe(0);
    await db.prisma.settings.update({ where: { id: 1 }, data: { staleThresholdDays: 1 } });
    expect(await b.purge()).toBe(3);
    expect(await db.prisma.eventLog.count()).toBe(0);
  });

  it('runs on its own shortly after start(), and close() stops it', async () => {
    await seed(1, 30, 'ancient');
    const b = bus({ purgeDelayMs: 20, purgeIntervalMs: 20 });
    const live = b.subscribe({ source: 'system' });
    b.start();
    expect(await next(live)).toMatchObject({ type: 'events.purged', details: { deleted: 1 } });
    await b.close();
    await seed(1, 30, 'after close');
    await new Promise((r) => setTimeout(r, 100)); // several intervals: a running timer would purge
    expect(await db.prisma.eventLog.count()).toBe(1);
  });
});
