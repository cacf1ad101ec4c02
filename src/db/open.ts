import type { Env } from '../env.js';
import { type Database, type EmbeddedOpenOptions, openEmbedded, openPostgres } from './client.js';

/** PostgreSQL when DATABASE_URL is set, else the embedded database in DATA_DIR. */
export function openDatabase(
  env: Pick<Env, 'DATABASE_URL' | 'DATA_DIR'>,
  opts: EmbeddedOpenOptions = {},
): Promise<Database> {
  return env.DATABASE_URL ? openPostgres(env.DATABASE_URL) : openEmbedded(env.DATA_DIR, opts);
}
