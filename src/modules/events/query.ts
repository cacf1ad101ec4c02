import { z } from 'zod';
import type { Db } from '../../db/client.js';
import type { EventLog } from '../../generated/prisma/client.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type Page } from '../../lib/pagination.js';
import { parseInput } from '../../lib/validate.js';
import { newerThan, olderThan, parseEventCursor } from './cursor.js';
import { EVENT_SOURCES, type EventLogEntry, type Severity } from './types.js';

/** Columns to read of an event (a Prisma `select`). */
export type EventColumns = Partial<Record<keyof EventLog, true>>;

export interface EventsArgs {
  first?: number | null;
  after?: string | null;
  severity?: readonly Severity[] | null;
  source?: string | null;
}

const argsSchema = z.object({
  first: z.number().int().min(0, 'must be 0 or more').max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`).nullish(),
  // GraphQL has checked each value; an empty list would silently match nothing.
  severity: z.array(z.string()).min(1, 'must name at least one severity, or be left out').nullish(),
  source: z.enum(EVENT_SOURCES, { error: `must be one of ${EVENT_SOURCES.join(', ')}` }).nullish(),
});

/** `source` of a filter: null for none, else one of EVENT_SOURCES (BAD_USER_INPUT otherwise). */
export function parseSource(source: string | null | undefined, field = 'source'): string | null {
  return parseInput(argsSchema.shape.source, source, field) ?? null;
}

/**
 * One page of the stored log. Without a cursor, or after an older-than cursor: newest first, edges
 * carry older-than cursors. After a catch-up (newer-than) cursor: what was stored after that
 * position, oldest first, edges carry catch-up cursors; page on until `hasNextPage` is false.
 */
export async function listEvents(db: Db, args: EventsArgs, select?: EventColumns): Promise<Page<EventLogEntry>> {
  const { first, severity, source } = parseInput(argsSchema, {
    first: args.first,
    severity: args.severity,
    source: args.source,
  });
  const size = first ?? DEFAULT_PAGE_SIZE;
  const cursor = args.after == null ? null : parseEventCursor(args.after);
  const newer = cursor?.direction === 'newer';
  // With `select`, rows hold only those columns: entryOf fills the rest with undefined, which no
  // field the query asked for reads.
  const rows = (await db.eventLog.findMany({
    ...(select ? { select: { ...select, seq: true } } : {}),
    where: {
      ...(severity ? { severity: { in: severity as Severity[] } } : {}),
      ...(source ? { source } : {}),
      ...(cursor ? { seq: newer ? { gt: cursor.position } : { lt: cursor.position } } : {}),
    },
    orderBy: { seq: newer ? 'asc' : 'desc' },
    take: size + 1,
  })) as EventLog[];
  const edges = rows.slice(0, size).map((row) => ({
    cursor: newer ? newerThan(row.seq) : olderThan(row.seq),
    node: entryOf(row),
  }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > size,
      hasPreviousPage: cursor !== null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

export function entryOf(row: EventLog): EventLogEntry {
  return {
    id: row.seq.toString(),
    severity: row.severity,
    source: row.source,
    type: row.type,
    message: row.message,
    details: row.details,
    actor: row.actorId === null ? null : { id: row.actorId, name: row.actorName ?? '' },
    createdAt: row.createdAt,
    position: row.seq,
  };
}
