import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * PostgreSQL's memory settings for the embedded database. A control plane's tables are small; the
 * defaults (128 MB of shared buffers) are a server's, and cost the process about 115 MB of RSS.
 */
export const EMBEDDED_POSTGRES_CONF = ['shared_buffers = 16MB', 'wal_buffers = 1MB', 'maintenance_work_mem = 16MB'];

/**
 * Creates the embedded cluster in `dataDir` in a short-lived child process when there is none yet.
 * PGlite's initdb grows its WebAssembly memory to about 700 MB, and a WebAssembly memory never
 * shrinks: done in the server's own process, the server would keep that for its whole life
 * instead of the ~250 MB an existing directory opens in. Costs about half a second, once.
 */
export async function initialiseDataDir(dataDir: string): Promise<void> {
  if (await exists(join(dataDir, 'PG_VERSION'))) return;
  const pglite = import.meta.resolve('@electric-sql/pglite');
  const script =
    'const [url, dir, conf] = process.argv.slice(1);' +
    'const { PGlite } = await import(url);' +
    'const db = await PGlite.create(dir, { postgresqlconf: JSON.parse(conf) });' +
    'await db.close();';
  try {
    await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', script, pglite, dataDir, JSON.stringify(EMBEDDED_POSTGRES_CONF)],
      { timeout: 120_000 },
    );
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`could not create the embedded database in ${dataDir}${stderr ? `: ${stderr}` : ''}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
