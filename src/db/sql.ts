import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/**
 * One dedicated database connection for work that must not go through a pool: migrations hold a
 * session-level advisory lock and run multi-statement SQL inside BEGIN/COMMIT on one connection.
 */
export interface SqlConnection {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements (simple-query protocol, no parameters). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export function pgliteConnection(db: PGlite): SqlConnection {
  return {
    async query<T>(sql: string, params: unknown[] = []) {
      return (await db.query<T>(sql, params)).rows;
    },
    async exec(sql) {
      await db.exec(sql);
    },
    // The PGlite instance is shared with Prisma; its owner closes it.
    async close() {},
  };
}

export async function postgresConnection(config: pg.ClientConfig): Promise<SqlConnection> {
  const client = new pg.Client(config);
  await client.connect();
  return {
    async query<T>(sql: string, params: unknown[] = []) {
      return (await client.query(sql, params)).rows as T[];
    },
    async exec(sql) {
      await client.query(sql);
    },
    async close() {
      await client.end();
    },
  };
}
