import type { Db } from '../../db/client.js';
import type { Prisma } from '../../generated/prisma/client.js';
import type { Actor, AppEvent } from './types.js';

/**
 * The advisory lock every event log writer takes inside its INSERT transaction. `seq` comes from a
 * sequence, so without it two instances on one PostgreSQL could commit seq 11 before seq 10; a
 * catch-up read between the two commits would hand out a position past 10, and entry 10 would
 * never be replayed. Holding one lock from `nextval` to COMMIT makes seq order commit order.
 * (Prisma's migration lock is 72707369; this is "SGEV".)
 */
export const EVENT_LOG_LOCK = 0x53474556;

export interface StoredEvent {
  event: AppEvent;
  actor: Actor | null;
  createdAt: Date;
}

/** Writes the entries in one transaction (one multi-row INSERT); their seqs, in the given order. */
export async function insertEvents(db: Db, items: readonly StoredEvent[]): Promise<bigint[]> {
  const data = items.map(({ event, actor, createdAt }) => ({
    severity: event.severity,
    source: event.source,
    type: event.type,
    message: event.message,
    details: event.details as Prisma.InputJsonValue,
    actorId: actor?.id ?? null,
    actorName: actor?.name ?? null,
    createdAt,
  }));
  const rows = await db.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${EVENT_LOG_LOCK})`);
    return tx.eventLog.createManyAndReturn({ data, select: { seq: true } });
  });
  // A multi-row INSERT draws nextval row by row in VALUES order, so sorted seqs map back by index.
  return rows.map((r) => r.seq).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The highest stored seq (0 for an empty log): where a process that has stored nothing yet stands. */
export async function lastStoredSeq(db: Db): Promise<bigint> {
  const { _max } = await db.eventLog.aggregate({ _max: { seq: true } });
  return _max.seq ?? 0n;
}

/**
 * Deletes entries created before `cutoff`, `batchSize` rows per statement so that no single
 * statement holds locks on (or bloats the WAL with) a huge range. Stops early when asked.
 */
export async function deleteOlderThan(
  db: Db,
  cutoff: Date,
  batchSize: number,
  shouldStop: () => boolean,
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const count = await db.$executeRaw`
      DELETE FROM "EventLog" WHERE "seq" IN (
        SELECT "seq" FROM "EventLog" WHERE "createdAt" < ${cutoff} LIMIT ${batchSize}
      )`;
    deleted += count;
    if (count < batchSize || shouldStop()) return deleted;
  }
}
