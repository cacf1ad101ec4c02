import type { Env } from '../env.js';
import { type Database, openEmbedded, openPostgres } from './client.js';

/** PostgreSQL when DATABASE_URL is set, else the embedded database in DATA_DIR. */
export function openDatabase(
  env: Pick<Env, 'DATABASE_URL' | 'DATA_DIR'>,
  opts: { onLockLost?: (error: Error) => void } = {},
): Promise<Database> {
  return env.DATABASE_URL ? openPostgres(env.DATABASE_URL) : openEmbedded(env.DATA_DIR, opts);
}
