import { createHash } from 'node:crypto';
import pg from 'pg';

/** The first half of the two-key advisory locks of named critical sections: "SL". */
const LOCK_CLASS = 0x534c;

/**
 * A critical section across every instance of a deployment: a PostgreSQL session advisory lock,
 * taken on a connection of its own for the section's length. If the instance dies inside it, the
 * connection closes and PostgreSQL frees the lock. Waiting is bounded by `waitMs` (lock_timeout).
 */
export async function withClusterLock<T>(
  connectionString: string,
  name: string,
  waitMs: number,
  section: () => Promise<T>,
): Promise<T> {
  const key = createHash('sha256').update(name).digest().readInt32BE(0);
  const client = new pg.Client({
    connectionString,
    connectionTimeoutMillis: 5_000,
    application_name: 'streamgate-lock',
  });
  client.on('error', () => {}); // a lost connection frees the lock; the section's own I/O reports its errors
  await client.connect();
  try {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.round(waitMs))}`);
    await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS, key]);
    return await section();
  } finally {
    await client.end().catch(() => {});
  }
}
