/**
 * `prisma migrate diff` / `migrate dev --create-only` for machines that cannot download Prisma's
 * native schema engine (see ../../shared/STACK-NOTES.md, "Prisma 7 without engine downloads").
 *
 *   npx tsx scripts/migrate-diff.ts                    print SQL from prisma/migrations to schema.prisma
 *   npx tsx scripts/migrate-diff.ts --create <name>    write it as prisma/migrations/<ts>_<name>/migration.sql
 *   npx tsx scripts/migrate-diff.ts --schema <file>    diff to another schema file instead
 *
 * It drives the WebAssembly build of the same schema engine (`@prisma/schema-engine-wasm`), so the
 * SQL is what Prisma itself would generate. The engine replays the committed migrations into a
 * throw-away in-memory PGlite (the shadow database), introspects it and diffs that against the
 * Prisma schema: no network, no PostgreSQL server. Unlike `migrate dev`, nothing is applied and
 * there are no data-loss warnings: review the SQL (e.g. a NOT NULL column without a default fails
 * on a non-empty table).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
// The same version as @prisma/adapter-pg's (pinned in devDependencies), which the engine expects.
import { bindMigrationAwareSqlAdapterFactory, DriverAdapterError } from '@prisma/driver-adapter-utils';
import * as engineGlue from '@prisma/schema-engine-wasm/schema_engine_bg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { loadMigrations } from '../src/db/migrate.js';
import { MIGRATIONS_DIR, PROJECT_ROOT } from '../src/lib/paths.js';

const SCHEMA_PATH = resolve(PROJECT_ROOT, 'prisma/schema.prisma');

// TypeScript's ES2023 lib (no DOM) has no WebAssembly types; this is the one call we need.
declare const WebAssembly: {
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: Record<string, unknown> } }>;
};

let engineClass: Promise<typeof engineGlue.SchemaEngine> | undefined;

/**
 * The package's entry point does `import * as wasm from './schema_engine_bg.wasm'`, which Node 20
 * cannot load. So wire the wasm-bindgen glue by hand, as Prisma's own loader does. Once per
 * process: wasm-bindgen keeps global state and a second instantiation breaks it.
 */
function loadSchemaEngine(): Promise<typeof engineGlue.SchemaEngine> {
  engineClass ??= (async () => {
    const glue = createRequire(import.meta.url).resolve('@prisma/schema-engine-wasm/schema_engine_bg');
    const bytes = await readFile(glue.replace(/\.js$/, '.wasm'));
    const { instance } = await WebAssembly.instantiate(bytes, { './schema_engine_bg.js': engineGlue });
    engineGlue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return engineGlue.SchemaEngine;
  })();
  return engineClass;
}

/**
 * One in-memory PGlite serves as both databases the engine asks for. A diff never touches the
 * "main" database beyond a version probe at start-up, and each PGlite costs seconds to initialise.
 * Owning the instance (rather than the adapter's own `connectToShadowDb`) also lets us close it.
 */
class ShadowOnlyPGlite extends PrismaPGlite {
  constructor(private readonly db: PGlite) {
    super(db);
  }

  override async connect() {
    const adapter = await super.connect();
    // pglite-prisma-adapter 0.7.2 does not await exec() here: a failing migration then becomes an
    // unhandled rejection while the engine diffs a half-migrated database. Await it, and map
    // PostgreSQL errors the way the adapter does elsewhere so the engine names the failing step.
    adapter.executeScript = async (script) => {
      try {
        await this.db.exec(script);
      } catch (e) {
        const pg = e as { code?: string; severity?: string; message: string; detail?: string; hint?: string };
        if (typeof pg.code !== 'string') throw e;
        const { code, severity = 'ERROR', message, detail, hint } = pg;
        throw new DriverAdapterError({ kind: 'postgres', code, severity, message, detail, hint, column: undefined });
      }
    };
    return adapter;
  }

  override connectToShadowDb() {
    return this.connect();
  }
}

export interface DiffOptions {
  /** Target schema file; defaults to prisma/schema.prisma. */
  schemaPath?: string;
  /** Target schema text (wins over schemaPath); lets tests diff a modified schema in memory. */
  schema?: string;
  migrationsDir?: string;
}

/**
 * SQL taking a database migrated with every committed migration to what the Prisma schema
 * describes; '' when they agree.
 */
export async function diffMigrationsToSchema(options: DiffOptions = {}): Promise<string> {
  const schemaPath = resolve(options.schemaPath ?? SCHEMA_PATH);
  const schema = options.schema ?? (await readFile(schemaPath, 'utf8'));
  const migrationsDir = resolve(options.migrationsDir ?? MIGRATIONS_DIR);
  // Same list, order and bytes as the app's own migrator applies (src/db/migrate.ts).
  const migrations = await loadMigrations(migrationsDir);
  // The engine picks its connector from the lock file and refuses to run without it.
  const lockfile = await readFile(join(migrationsDir, 'migration_lock.toml'), 'utf8').catch(() => null);

  const SchemaEngine = await loadSchemaEngine();
  const db = new PGlite();
  const adapter = bindMigrationAwareSqlAdapterFactory(new ShadowOnlyPGlite(db));
  const log = (line: string) => process.env.DEBUG && process.stderr.write(line);
  const files = [{ path: schemaPath, content: schema }];
  const engine = await SchemaEngine.new({ datamodels: [[schemaPath, schema]] }, log, adapter);
  try {
    const { stdout } = await engine.diff({
      from: {
        tag: 'migrations',
        baseDir: migrationsDir,
        lockfile: { path: 'migration_lock.toml', content: lockfile },
        shadowDbInitScript: '',
        migrationDirectories: migrations.map(({ name, sql }) => ({
          path: name,
          migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: sql } },
        })),
      },
      to: { tag: 'schemaDatamodel', files },
      script: true,
      exitCode: null,
      filters: { externalTables: [], externalEnums: [] },
    });
    const sql = stdout ?? '';
    // No difference comes back as "-- This is an empty migration."; callers want a plain ''.
    return sql.replace(/--.*$/gm, '').trim() === '' ? '' : sql;
  } finally {
    engine.free();
    await db.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { create: { type: 'string' }, schema: { type: 'string' } } });
  const sql = await diffMigrationsToSchema({ schemaPath: values.schema });
  if (values.create === undefined) {
    if (sql) process.stdout.write(sql);
    else console.error('No difference: the migrations already match the schema.');
    return;
  }
  if (!/^\w+$/.test(values.create)) throw new Error('--create: use letters, digits and _ only');
  if (!sql) throw new Error('Nothing to migrate: the migrations already match the schema.');
  // Same directory naming as `prisma migrate dev`, so the history stays usable by the real CLI.
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const name = `${stamp}_${values.create}`;
  // Migrations apply in name order; a clock behind the newest one would slip this in before it.
  const last = (await loadMigrations()).at(-1)?.name;
  if (last && name <= last) throw new Error(`${name} would sort before ${last}: check the clock`);
  const dir = join(MIGRATIONS_DIR, name);
  await mkdir(dir);
  await writeFile(join(dir, 'migration.sql'), sql);
  console.error(`Wrote ${join(dir, 'migration.sql')}; review it before committing.`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
