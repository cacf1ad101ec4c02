import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import lockfile from 'proper-lockfile';
import { PrismaClient } from '../generated/prisma/client.js';
import { applyMigrations, type MigrationReport } from './migrate.js';
import { EMBEDDED_POSTGRES_CONF, initialiseDataDir } from './pglite-init.js';
import { pgliteConnection, postgresConnection, type SqlConnection } from './sql.js';
import { WriteClock, watchWrites } from './write-clock.js';

export type Db = PrismaClient;

/** The one handle the app has on its database, whichever engine is behind it. */
export interface Database {
  readonly prisma: PrismaClient;
  readonly engine: 'postgres' | 'embedded';
  /** Where the data lives, safe to log (no password). */
  readonly location: string;
  /** Advances after every committed write, whoever made it (the response cache reads it). */
  readonly writes: WriteClock;
  migrate(): Promise<MigrationReport>;
  /** True when a trivial query answers within the timeout (readiness). */
  isReady(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

export interface PostgresTarget {
  connectionString: string;
  /** Prisma's `?schema=` convention; default `public`. */
  schema: string;
}

/** Splits Prisma's `?schema=` parameter off a PostgreSQL URL (node-postgres does not know it). */
export function parsePostgresUrl(url: string): PostgresTarget {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? 'public';
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.toString(), schema };
}

export interface OpenOptions {
  /** Emit Prisma `query` events (tests count SQL statements with them: the N+1 guard). */
  logQueries?: boolean;
}

const clientOptions = (opts: OpenOptions) => ({
  log: opts.logQueries ? [{ emit: 'event' as const, level: 'query' as const }] : [],
});

export async function openPostgres(url: string, opts: OpenOptions = {}): Promise<Database> {
  const target = parsePostgresUrl(url);
  const schema = `"${target.schema.replaceAll('"', '""')}"`;
  // Fail fast instead of waiting for ever on a database that drops packets.
  const config = {
    connectionString: target.connectionString,
    options: `-c search_path=${schema}`,
    connectionTimeoutMillis: 5_000,
  };
  const writes = new WriteClock();
  const adapter = watchWrites(new PrismaPg(config, { schema: target.schema }), writes);
  const prisma = new PrismaClient({ adapter, ...clientOptions(opts) });
  const location = new URL(target.connectionString);
  location.password = '';
  return wrap({
    prisma,
    writes,
    engine: 'postgres',
    location: `${location.host}${location.pathname} (schema ${target.schema})`,
    // Migrations need one dedicated connection: the advisory lock is per session. Like Prisma,
    // create the `?schema=` schema when it does not exist yet.
    connect: async () => {
      const conn = await postgresConnection(config);
      await conn.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}`).catch(async (error: unknown) => {
        await conn.close();
        throw error;
      });
      return conn;
    },
    close: () => prisma.$disconnect(),
  });
}

/**
 * The embedded database: PGlite in `dataDir`. PGlite has a single backend and two processes on
 * one directory silently lose writes, so a lock inside the directory keeps a second process out.
 */
export async function openEmbedded(dataDir: string, opts: EmbeddedOpenOptions = {}): Promise<Database> {
  await mkdir(dataDir, { recursive: true });
  const release = await lockDataDir(dataDir, opts);
  try {
    await initialiseDataDir(dataDir);
    const pglite = await PGlite.create(dataDir, { postgresqlconf: EMBEDDED_POSTGRES_CONF });
    return fromPGlite(pglite, { location: dataDir, onClose: release });
  } catch (error) {
    await release();
    throw error;
  }
}

/** Wraps an open PGlite (a data directory, or an in-memory copy in tests). */
export function fromPGlite(
  pglite: PGlite,
  opts: OpenOptions & { location: string; onClose?: () => Promise<void> },
): Database {
  const writes = new WriteClock();
  const prisma = new PrismaClient({ adapter: watchWrites(new PrismaPGlite(pglite), writes), ...clientOptions(opts) });
  return wrap({
    prisma,
    writes,
    engine: 'embedded',
    location: opts.location,
    connect: async () => pgliteConnection(pglite),
    close: async () => {
      await prisma.$disconnect();
      await pglite.close();
      await opts.onClose?.();
    },
  });
}

/** What opening the embedded database may tell its caller. */
export interface EmbeddedOpenOptions {
  /** The lock was lost later (see lockDataDir): another process may write now; stop at once. */
  onLockLost?: (error: Error) => void;
  /** Said once when start-up waits for a lock left by a process that is gone. */
  onWaitingForStaleLock?: (message: string) => void;
}

/** The lock is refreshed every 5 s; one left by a crashed process goes stale after 15 s. */
const LOCK_STALE_MS = 15_000;
const LOCK_HOLDER_FILE = 'streamgate.lock.holder';

/**
 * Takes the data directory's lock. A lock held by a live process (on this host: its pid in the
 * holder file answers) is an error at once. Any other lock (left by a process killed with
 * `kill -9`, or by one on another host that shares the directory) is waited for until it is stale
 * and taken over, saying so once; if it stays fresh, its owner is alive after all: an error.
 *
 * `onLockLost`: the lock could not be refreshed or was taken over (deleted by hand, or stale after
 * a long stall). Another process may now write to the directory; the owner should stop at once.
 */
async function lockDataDir(dataDir: string, opts: EmbeddedOpenOptions): Promise<() => Promise<void>> {
  const options = {
    lockfilePath: join(dataDir, 'streamgate.lock'),
    stale: LOCK_STALE_MS,
    update: 5_000,
    realpath: false,
    ...(opts.onLockLost ? { onCompromised: opts.onLockLost } : {}),
  };
  const inUse = (detail: string) =>
    new DataDirLockedError(
      `the data directory ${dataDir} is in use by another StreamGate process${detail}; ` +
        'stop it first, or give this one its own DATA_DIR (or a DATABASE_URL)',
    );
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dataDir, { ...options, retries: 0 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    const holder = await readLockHolder(dataDir);
    if (holder && holder.hostname === hostname() && holder.pid !== process.pid && isAlive(holder.pid)) {
      throw inUse(` (pid ${holder.pid})`);
    }
    opts.onWaitingForStaleLock?.(
      `the data directory ${dataDir} is locked by a process that is gone; waiting for its lock to clear (up to ${LOCK_STALE_MS / 1000} s)`,
    );
    try {
      // Until the lock is stale, plus two refresh periods.
      release = await lockfile.lock(dataDir, {
        ...options,
        retries: { retries: (LOCK_STALE_MS + 10_000) / 1_000, factor: 1, minTimeout: 1_000, maxTimeout: 1_000 },
      });
    } catch (retryError) {
      if ((retryError as NodeJS.ErrnoException).code === 'ELOCKED') throw inUse('');
      throw retryError;
    }
  }
  await writeFile(join(dataDir, LOCK_HOLDER_FILE), JSON.stringify({ pid: process.pid, hostname: hostname() }));
  return release;
}

async function readLockHolder(dataDir: string): Promise<{ pid: number; hostname: string } | null> {
  try {
    const holder = JSON.parse(await readFile(join(dataDir, LOCK_HOLDER_FILE), 'utf8')) as unknown;
    const { pid, hostname: host } = (holder ?? {}) as { pid?: unknown; hostname?: unknown };
    return typeof pid === 'number' && typeof host === 'string' ? { pid, hostname: host } : null;
  } catch {
    return null; // none (an older version), or unreadable: wait for staleness
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

function wrap(parts: {
  prisma: PrismaClient;
  writes: WriteClock;
  engine: Database['engine'];
  location: string;
  connect: () => Promise<SqlConnection>;
  close: () => Promise<void>;
}): Database {
  let closed: Promise<void> | undefined;
  return {
    prisma: parts.prisma,
    writes: parts.writes,
    engine: parts.engine,
    location: parts.location,
    async migrate() {
      const conn = await parts.connect();
      try {
        return await applyMigrations(conn);
      } finally {
        await conn.close();
      }
    },
    async isReady(timeoutMs = 2_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const probe = parts.prisma.$queryRaw`SELECT 1`.then(
        () => true,
        () => false,
      );
      try {
        return await Promise.race([probe, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      closed ??= parts.close();
      return closed;
    },
  };
}
