import { readInPages } from '../../db/pages.js';
import { isUuid } from '../../lib/uuid.js';
import type { HealthRecord, HealthSubject } from './types.js';

/**
 * The shared half of a health source whose subjects are database rows keyed by UUID (nodes,
 * proxies): paged listing, lookup by id, and a batch's results as column arrays for one
 * `UPDATE … FROM unnest(…)` statement. Each source keeps only its own columns and SQL.
 */
export const rowSubjects = {
  async list<Row extends { id: string }, S>(
    readPage: (after: string | undefined, take: number) => Promise<Row[]>,
    toSubject: (row: Row) => S,
  ): Promise<S[]> {
    return (await readInPages(readPage)).map(toSubject);
  },

  /** Null for a malformed id, without a query. */
  async find<Row, S>(id: string, readOne: (id: string) => Promise<Row | null>, toSubject: (row: Row) => S) {
    if (!isUuid(id)) return null;
    const row = await readOne(id);
    return row ? toSubject(row) : null;
  },

  /** The columns every row-backed source writes, one array each, in the records' order. */
  columns<S extends HealthSubject>(records: HealthRecord<S>[]) {
    return {
      ids: records.map((r) => r.subject.id),
      targets: records.map((r) => r.subject.target ?? ''),
      statuses: records.map((r) => r.status),
      checkedAt: records.map((r) => r.checkedAt.toISOString()),
      latencies: records.map((r) => r.result.latencyMs),
      details: records.map((r) => r.result.detail),
      healthySince: records.map((r) => r.healthySince?.toISOString() ?? null),
    };
  },
};
