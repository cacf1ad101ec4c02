import type { SqlDriverAdapter, SqlDriverAdapterFactory, SqlQuery, Transaction } from '@prisma/driver-adapter-utils';

/** What one advance of the clock says: which tables changed (`*`: unknown), and where. */
export interface WriteNotice {
  tables: ReadonlySet<string>;
  /** Announced by another instance (issue 22's cluster link), not written by this process. */
  remote: boolean;
}

/** A statement whose table could not be read: anything may have changed. */
export const ANY_TABLE = '*';

/**
 * A counter that moves after every committed write to the database: what a cached read was
 * computed at tells whether it can still be served (the response cache keys entries by it), and
 * the tables it names tell the other caches (node directory, tokens, settings) what to drop.
 *
 * It moves *after* the write is visible (a statement outside a transaction has answered; a
 * transaction has committed). A read that starts before the move may have seen the old rows, and
 * it carries the old generation, so what it computed is never served again; a read that starts
 * after the move sees the new rows.
 */
export class WriteClock {
  private current = 0;
  private readonly listeners = new Set<(notice: WriteNotice) => void>();

  get generation(): number {
    return this.current;
  }

  /** Something changed in `tables`: written here, or announced by another instance (`remote`). */
  advance(tables: Iterable<string> = [ANY_TABLE], remote = false): void {
    this.current++;
    const notice = { tables: new Set(tables), remote };
    for (const listener of this.listeners) listener(notice);
  }

  /** Calls `listener` after every advance; returns how to stop. */
  onAdvance(listener: (notice: WriteNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * Wraps a Prisma driver adapter factory so that `clock` advances after every write: a statement
 * that is not a plain SELECT, outside a transaction, once it has answered; a transaction that
 * wrote, once it has committed. This is below Prisma, so every path counts the same: the client's
 * model calls, `$executeRaw`, interactive and batch transactions. Over-counting costs a cache
 * refill, never a stale answer.
 */
export function watchWrites(factory: SqlDriverAdapterFactory, clock: WriteClock): SqlDriverAdapterFactory {
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => watchAdapter(await factory.connect(), clock),
  };
}

function watchAdapter(adapter: SqlDriverAdapter, clock: WriteClock): SqlDriverAdapter {
  const afterWrite =
    <R>(run: (query: SqlQuery) => Promise<R>) =>
    async (query: SqlQuery): Promise<R> => {
      const result = await run(query);
      const table = writtenTable(query.sql);
      if (table) clock.advance([table]);
      return result;
    };
  return {
    provider: adapter.provider,
    adapterName: adapter.adapterName,
    queryRaw: afterWrite((q) => adapter.queryRaw(q)),
    executeRaw: afterWrite((q) => adapter.executeRaw(q)),
    executeScript: async (script) => {
      await adapter.executeScript(script);
      clock.advance();
    },
    startTransaction: async (isolationLevel) => watchTransaction(await adapter.startTransaction(isolationLevel), clock),
    getConnectionInfo: adapter.getConnectionInfo?.bind(adapter),
    dispose: () => adapter.dispose(),
  };
}

function watchTransaction(tx: Transaction, clock: WriteClock): Transaction {
  const tables = new Set<string>();
  const noting =
    <R>(run: (query: SqlQuery) => Promise<R>) =>
    (query: SqlQuery): Promise<R> => {
      const table = writtenTable(query.sql);
      if (table) tables.add(table);
      return run(query);
    };
  return {
    provider: tx.provider,
    adapterName: tx.adapterName,
    options: tx.options,
    queryRaw: noting((q) => tx.queryRaw(q)),
    executeRaw: noting((q) => tx.executeRaw(q)),
    commit: async () => {
      await tx.commit();
      if (tables.size) clock.advance(tables);
    },
    rollback: () => tx.rollback(),
    createSavepoint: tx.createSavepoint?.bind(tx),
    rollbackToSavepoint: tx.rollbackToSavepoint?.bind(tx),
    releaseSavepoint: tx.releaseSavepoint?.bind(tx),
  };
}

// Prisma writes `INSERT INTO "schema"."Table"`, `UPDATE "schema"."Table"`, `DELETE FROM …`.
const WRITE = /^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:"[^"]+"\.)?"([^"]+)"/i;
// Reads, and transaction control (the PostgreSQL adapter sends COMMIT as a statement).
const NOT_A_WRITE = /^\s*(?:SELECT|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET|SHOW)\b/i;

/**
 * The table a statement writes; `*` for a write whose table is not plain to see (a CTE, DDL);
 * null for a read or transaction control.
 */
export function writtenTable(sql: string): string | null {
  if (NOT_A_WRITE.test(sql)) return null;
  return WRITE.exec(sql)?.[1] ?? ANY_TABLE;
}

/**
 * Calls `fn` when another instance announces a write to one of `tables` (or to tables it could
 * not name): what a cache holds of them may be out of date.
 */
export function onRemoteWrite(clock: WriteClock, tables: readonly string[], fn: () => void): () => void {
  return clock.onAdvance((notice) => {
    if (notice.remote && (notice.tables.has(ANY_TABLE) || tables.some((t) => notice.tables.has(t)))) fn();
  });
}
