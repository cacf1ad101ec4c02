import { beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import { Overflow } from '../../src/lib/bounded-stream.js';
import { createLogger } from '../../src/lib/logger.js';
import { EventBus, type EventBusOptions } from '../../src/modules/events/bus.js';
import type { EventLogEntry } from '../../src/modules/events/types.js';
import { createTestDatabase, TEST_DATABASE_URL } from '../helpers/db.js';
import { dispose } from '../helpers/leftovers.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { captureLog, sample, until } from './helpers.js';

let db: Database;
const statements: string[] = [];
beforeAll(async () => {
  db = await createTestDatabase({ logQueries: true });
  const prisma = db.prisma as unknown as { $on(event: 'query', listener: (e: { query: string }) => void): void };
  prisma.$on('query', (e) => statements.push(e.query));
});

function busOn(database: Database, opts: Partial<EventBusOptions> = {}): EventBus {
  const bus = new EventBus({ db: database.prisma, log: createLogger('silent'), minStoredSeverity: 'WARN', ...opts });
  return dispose(bus, (b) => b.close());
}

const storedMessages = async (database = db) =>
  (await database.prisma.eventLog.findMany({ orderBy: { seq: 'asc' } })).map((r) => r.message);

/** Takes `n` entries from a live iterator. */
async function take(live: AsyncIterator<EventLogEntry | Overflow>, n: number): Promise<EventLogEntry[]> {
  const out: EventLogEntry[] = [];
  while (out.length < n) {
    const next = await live.next();
    if (next.done || next.value instanceof Overflow) break;
    out.push(next.value);
  }
  return out;
}

describe('storage policy', () => {
  it('stores WARN and ERROR, publishes DEBUG and INFO without storing them', async () => {
    await db.prisma.eventLog.deleteMany();
    const bus = busOn(db);
    const results = await Promise.all(
      (['DEBUG', 'INFO', 'WARN', 'ERROR'] as const).map((s, i) => bus.record(sample(s, i))),
    );
    expect(results.map((e) => e?.severity)).toEqual(['DEBUG', 'INFO', 'WARN', 'ERROR']);
    expect(results.map((e) => /^\d+$/.test(e?.id ?? ''))).toEqual([false, false, true, true]);
    expect(results[0]?.id).toMatch(/^live-/);
    expect(await storedMessages()).toEqual(['WARN #2', 'ERROR #3']);
  });

  it('stores INFO too when EVENT_LOG_MIN_SEVERITY is INFO, never DEBUG', async () => {
    await db.prisma.eventLog.deleteMany();
    const bus = busOn(db, { minStoredSeverity: 'INFO' });
    await Promise.all([bus.record(sample('DEBUG', 1)), bus.record(sample('INFO', 2))]);
    expect(await storedMessages()).toEqual(['INFO #2']);
  });

  it('stores events marked alwaysStored (configuration changes, health transitions) whatever their severity', async () => {
    await db.prisma.eventLog.deleteMany();
    const bus = busOn(db, { minStoredSeverity: 'ERROR' });
    const entry = await bus.record(
      {
        type: 'node.deleted',
        alwaysStored: true,
        source: 'nodes',
        severity: 'INFO',
        message: 'cache node "a" deleted',
        details: { id: 'n1', kind: 'CACHE', name: 'a' },
      },
      { id: 'tok-1', name: 'ops' },
    );
    await bus.record({
      type: 'health.changed',
      alwaysStored: true,
      source: 'health',
      severity: 'DEBUG',
      message: 'x became HEALTHY',
      details: {
        subjectKind: 'NODE',
        subjectId: 'n1',
        name: 'x',
        from: 'UNKNOWN',
        to: 'HEALTHY',
        latencyMs: 1,
        detail: null,
      },
    });
    await bus.record(sample('WARN', 3)); // below ERROR and not always stored
    const rows = await db.prisma.eventLog.findMany({ orderBy: { seq: 'asc' } });
    expect(rows.map((r) => r.type)).toEqual(['node.deleted', 'health.changed']);
    expect(rows[0]).toMatchObject({ actorId: 'tok-1', actorName: 'ops', details: { name: 'a' } });
    expect(entry).toMatchObject({ id: String(rows[0]?.seq), actor: { id: 'tok-1', name: 'ops' } });
  });
});

describe('publication', () => {
  it('publishes in emission order, stored entries by seq, each with its catch-up position', async () => {
    await db.prisma.eventLog.deleteMany();
    const bus = busOn(db);
    const live = bus.subscribe({});
    bus.emit(sample('INFO', 1));
    bus.emit(sample('WARN', 2));
    bus.emit(sample('INFO', 3));
    bus.emit(sample('ERROR', 4));
    const seen = await take(live, 4);
    const rows = await db.prisma.eventLog.findMany({ orderBy: { seq: 'asc' } });
    const [w, e] = rows.map((r) => r.seq);
    expect(seen.map((s) => s.message)).toEqual(['INFO #1', 'WARN #2', 'INFO #3', 'ERROR #4']);
    expect(seen.map((s) => s.id)).toEqual([expect.stringMatching(/^live-/), String(w), expect.any(String), String(e)]);
    // An unstored entry sits after the last stored one before it.
    expect(seen[2]?.position).toBe(w);
    expect(seen[3]?.position).toBe(e);
    expect(seen[0]?.position).toBeLessThan(w ?? 0n);
  });

  it('writes a burst of events with one INSERT (batched), in order', async () => {
    await db.prisma.eventLog.deleteMany();
    const bus = busOn(db);
    await bus.record(sample('WARN', 0)); // the first write also learns the last stored seq
    const before = statements.length;
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => bus.record(sample('WARN', i + 1))));
    const inserts = statements.slice(before).filter((q) => /^\s*INSERT INTO/i.test(q));
    expect(inserts).toHaveLength(1);
    const seqs = all.map((e) => BigInt(e?.id ?? '0'));
    expect(seqs).toEqual([...seqs].sort((a, b) => (a < b ? -1 : 1)));
    expect((await storedMessages()).slice(1)).toEqual(all.map((e) => e?.message));
  });

  it('filters subscribers by minimum severity and source', async () => {
    const bus = busOn(db);
    const warnings = bus.subscribe({ minSeverity: 'WARN' });
    const health = bus.subscribe({ source: 'health' });
    bus.emit(sample('INFO', 1, 'health'));
    bus.emit(sample('WARN', 2, 'sessions'));
    bus.emit(sample('ERROR', 3, 'health'));
    expect((await take(warnings, 2)).map((e) => e.message)).toEqual(['WARN #2', 'ERROR #3']);
    expect((await take(health, 2)).map((e) => e.message)).toEqual(['INFO #1', 'ERROR #3']);
  });

  it('ends a subscriber that falls behind its queue limit with one Overflow, and nobody else', async () => {
    const bus = busOn(db, { subscriberQueueLimit: 3 });
    const slow = bus.subscribe({});
    const fast = bus.subscribe({});
    const fastSeen = take(fast, 5);
    // One at a time: the fast one reads each before the next comes; the slow one never reads.
    for (let i = 1; i <= 5; i++) await bus.record(sample('INFO', i));
    expect((await fastSeen).map((e) => e.message)).toHaveLength(5);
    expect((await slow.next()).value).toBeInstanceOf(Overflow);
    expect(await slow.next()).toEqual({ done: true, value: undefined });
    expect(bus.subscriberCount).toBe(1);
  });

  it('forgets a subscriber whose consumer returns', async () => {
    const bus = busOn(db);
    const live = bus.subscribe({});
    expect(bus.subscriberCount).toBe(1);
    await live.return?.();
    expect(bus.subscriberCount).toBe(0);
    expect(await live.next()).toEqual({ done: true, value: undefined });
  });
});

describe('close()', () => {
  it('writes what is pending, then ends subscriptions; later events are dropped', async () => {
    await db.prisma.eventLog.deleteMany();
    const bus = busOn(db);
    const live = bus.subscribe({});
    for (let i = 1; i <= 3; i++) bus.emit(sample('WARN', i)); // not yet written
    await bus.close();
    expect(await storedMessages()).toEqual(['WARN #1', 'WARN #2', 'WARN #3']);
    expect((await take(live, 10)).map((e) => e.message)).toEqual(['WARN #1', 'WARN #2', 'WARN #3']);
    expect(await live.next()).toEqual({ done: true, value: undefined });
    bus.emit(sample('ERROR', 4));
    expect(await bus.record(sample('ERROR', 5))).toBeNull();
    expect(await bus.subscribe({}).next()).toEqual({ done: true, value: undefined });
    expect(await storedMessages()).toHaveLength(3);
  });
});

describe('database unavailable during a write', () => {
  /**
   * PostgreSQL: the network to it is cut (a TCP relay in between). Embedded (one in-process
   * backend, nothing to cut): the table is renamed away, so every write fails until it is back.
   */
  async function outage(): Promise<{ database: Database; down(): Promise<void>; up(): Promise<void> }> {
    if (TEST_DATABASE_URL) {
      const proxy = await startTcpProxy(Number(new URL(TEST_DATABASE_URL).port || 5432));
      const database = await createTestDatabase({ viaPort: proxy.port });
      return { database, down: async () => proxy.cut(), up: async () => proxy.restore() };
    }
    const database = await createTestDatabase();
    return {
      database,
      down: async () =>
        void (await database.prisma.$executeRawUnsafe('ALTER TABLE "EventLog" RENAME TO "EventLog_away"')),
      up: async () =>
        void (await database.prisma.$executeRawUnsafe('ALTER TABLE "EventLog_away" RENAME TO "EventLog"')),
    };
  }

  it('logs the failure, still publishes, and writes the entries in order once the database is back', async () => {
    const { database, down, up } = await outage();
    const { log, lines } = captureLog();
    const bus = busOn(database, { log, retryDelayMs: 50 });
    await bus.record(sample('WARN', 0));
    const live = bus.subscribe({});
    await down();
    const during = [await bus.record(sample('WARN', 1)), await bus.record(sample('ERROR', 2))];
    // Published live at once, as entries the log does not have (yet).
    expect(during.map((e) => e?.id)).toEqual([expect.stringMatching(/^live-/), expect.stringMatching(/^live-/)]);
    expect((await take(live, 2)).map((e) => e.message)).toEqual(['WARN #1', 'ERROR #2']);
    expect(lines.some((l) => l.level === 50 && /event log write failed/.test(l.msg))).toBe(true);
    await up();
    bus.emit(sample('WARN', 3)); // written after the retried ones, never before them
    await until(async () => (await storedMessages(database).catch(() => [])).length === 4);
    expect(await storedMessages(database)).toEqual(['WARN #0', 'WARN #1', 'ERROR #2', 'WARN #3']);
    expect(lines.some((l) => l.msg === 'event log writes resumed')).toBe(true);
  });

  it('keeps at most maxUnwritten entries, dropping the oldest with an ERROR log', async () => {
    const { database, down, up } = await outage();
    const { log, lines } = captureLog();
    const bus = busOn(database, { log, retryDelayMs: 50, maxUnwritten: 3 });
    await bus.record(sample('WARN', 0));
    await down();
    for (let i = 1; i <= 5; i++) await bus.record(sample('WARN', i));
    expect(lines.find((l) => /dropped the oldest unwritten/.test(l.msg))).toMatchObject({ level: 50, limit: 3 });
    await up();
    await until(async () => (await storedMessages(database).catch(() => [])).length === 4);
    expect(await storedMessages(database)).toEqual(['WARN #0', 'WARN #3', 'WARN #4', 'WARN #5']);
  });
});

describe('react', () => {
  it('holds record() until the reactions to that type have finished, and only for that type', async () => {
    const bus = busOn(db);
    const seen: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stop = bus.react(['events.purged'], async (entry) => {
      seen.push(`start ${entry.message}`);
      await gate;
      seen.push(`end ${entry.message}`);
    });
    let recorded = false;
    const pending = bus.record(sample('INFO', 1)).then(() => {
      recorded = true;
    });
    await until(async () => seen.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(recorded).toBe(false);
    release();
    await pending;
    expect(seen).toEqual(['start INFO #1', 'end INFO #1']);

    // Another type is not held; after `stop` this one is not reacted to either.
    await bus.record(sample('INFO', 2, 'health'));
    stop();
    await bus.record(sample('INFO', 3));
    expect(seen).toHaveLength(2);
  });

  it('a reaction that throws is logged, and the entry is still published and recorded', async () => {
    const { log, lines } = captureLog();
    const bus = busOn(db, { log });
    bus.react(['events.purged'], () => {
      throw new Error('boom');
    });
    const entry = await bus.record(sample('WARN', 4));
    expect(entry?.message).toBe('WARN #4');
    expect(lines).toContainEqual(expect.objectContaining({ level: 50, msg: 'a reaction to an event failed' }));
  });
});
