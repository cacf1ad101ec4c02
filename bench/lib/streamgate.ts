import type { Database } from '../../src/db/client.js';

/** The bearer token every benchmark's StreamGate accepts (ADMIN_TOKEN). */
export const BENCH_TOKEN = 'sg_bench_admin_token_0123456789abcdef';

/**
 * The real app (`createApp`) over a fresh in-memory, migrated PGlite, NODE_ENV=production and
 * silent logs, listening on `host`:0. `seed` fills the database before the app starts; `env`
 * adds to (or overrides) the environment. `fromEnv`: open the database as a deployment does
 * instead (DATABASE_URL, else the embedded one in DATA_DIR), migrated. Modules load lazily, so a
 * benchmark's other roles (load generators, fake nodes) never pay for them.
 */
export async function startBenchStreamGate(opts: {
  host: string;
  env?: Record<string, string>;
  seed?: (database: Database) => Promise<void>;
  /** Also start the data plane on a free port (`proxyUrl`). */
  dataPlane?: boolean;
  fromEnv?: boolean;
}): Promise<{ url: string; proxyUrl: string | null; database: Database }> {
  const { parseEnv } = await import('../../src/env.js');
  const { createLogger } = await import('../../src/lib/logger.js');
  const { TokenVerifier } = await import('../../src/modules/auth/tokens.js');
  const { createApp } = await import('../../src/server/app.js');

  const env = parseEnv({ NODE_ENV: 'production', LOG_LEVEL: 'silent', ADMIN_TOKEN: BENCH_TOKEN, ...opts.env });
  const database = opts.fromEnv ? await openFromEnv(env) : await openInMemory();
  await opts.seed?.(database);
  const app = createApp({
    env,
    log: createLogger(env.LOG_LEVEL),
    database,
    tokens: new TokenVerifier(database.prisma, BENCH_TOKEN),
  });
  const url = await app.start(0, opts.host, opts.dataPlane ? 0 : undefined);
  return { url, proxyUrl: app.dataPlane.url, database };
}

async function openInMemory(): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { applyMigrations } = await import('../../src/db/migrate.js');
  const { pgliteConnection } = await import('../../src/db/sql.js');
  const { fromPGlite } = await import('../../src/db/client.js');
  const pglite = await PGlite.create();
  await applyMigrations(pgliteConnection(pglite));
  return fromPGlite(pglite, { location: 'memory' });
}

async function openFromEnv(env: import('../../src/env.js').Env): Promise<Database> {
  const { openDatabase } = await import('../../src/db/open.js');
  const database = await openDatabase(env);
  await database.migrate();
  return database;
}
