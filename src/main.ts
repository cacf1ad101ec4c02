#!/usr/bin/env node
import { parseTokenArgs, TOKEN_USAGE } from './commands/token-args.js';
import type { Database } from './db/client.js';
import { type Env, EnvError, envHelp, parseEnv } from './env.js';
import type { Logger } from './lib/logger.js';
import type { App } from './server/app.js';

const COMMANDS = {
  serve: 'apply pending migrations, then serve the API (default)',
  migrate: 'apply pending migrations and exit',
  seed: 'apply pending migrations and add a few demo nodes',
  token: 'create, list or revoke API tokens (see below)',
} as const;
type Command = keyof typeof COMMANDS;

function usage(): string {
  const width = Math.max(...envHelp().map((v) => v.name.length));
  return [
    'Usage: streamgate [serve|migrate|seed|token] [--help]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, help]) => `  ${name.padEnd(8)} ${help}`),
    '',
    'Tokens:',
    ...TOKEN_USAGE.split('\n').map((line) => `  ${line}`),
    '',
    'Environment:',
    ...envHelp().map((v) => `  ${v.name.padEnd(width)}  ${v.help} (default: ${v.default})`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const command = (argv[0] ?? 'serve') as Command;
  if (!(command in COMMANDS)) {
    process.stderr.write(`unknown command "${argv[0]}"\n\n${usage()}\n`);
    return 2;
  }
  const token = command === 'token' ? parseTokenArgs(argv.slice(1)) : null;
  if (typeof token === 'string') {
    process.stderr.write(`streamgate: ${token}\n\n${TOKEN_USAGE}\n`);
    return 2;
  }
  let env: Env;
  try {
    env = parseEnv();
  } catch (error) {
    if (error instanceof EnvError) {
      process.stderr.write(`streamgate: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  // Loaded only now, so that --help and configuration errors answer at once.
  const [{ createLogger }, { DataDirLockedError }, { MigrationError }, { openDatabase }] = await Promise.all([
    import('./lib/logger.js'),
    import('./db/client.js'),
    import('./db/migrate.js'),
    import('./db/open.js'),
  ]);
  const log = createLogger(env.LOG_LEVEL);
  let database: Database;
  let appModule: Promise<typeof import('./server/app.js')> | undefined;
  try {
    // The app's modules load while the database opens: both are start-up's long poles.
    appModule = command === 'serve' ? import('./server/app.js') : undefined;
    appModule?.catch(() => {}); // awaited in serve(); not an unhandled rejection if we exit before
    database = await openDatabase(env, {
      // Another process may now write to the directory: stop at once rather than corrupt it.
      onLockLost(error) {
        log.fatal({ err: error }, `lost the lock on ${env.DATA_DIR}; stopping now`);
        process.exit(1);
      },
      onWaitingForStaleLock: (message) => log.warn(message),
    });
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      process.stderr.write(`streamgate: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  try {
    const report = await database.migrate();
    if (report.applied.length) log.info({ applied: report.applied }, `applied ${report.applied.length} migration(s)`);
    if (report.modified.length) log.warn({ modified: report.modified }, 'applied migrations were edited since');
  } catch (error) {
    await database.close();
    if (error instanceof MigrationError) {
      process.stderr.write(`streamgate: database migration failed; StreamGate did not start.\n  ${error.message}\n`);
      return 1;
    }
    const reason = error instanceof Error ? error.message : String(error);
    process.stderr.write(`streamgate: cannot use the database at ${database.location}: ${reason}\n`);
    return 1;
  }
  if (command === 'migrate') {
    await database.close();
    return 0;
  }
  if (token) {
    const { runToken } = await import('./commands/token.js');
    try {
      return await runToken(token, database, env, log);
    } finally {
      await database.close();
    }
  }
  if (command === 'seed') {
    const { seedDemoNodes } = await import('./modules/nodes/seed.js');
    const added = await seedDemoNodes(database.prisma);
    log.info({ added }, `seeded ${added} demo node(s)`);
    await database.close();
    return 0;
  }
  return serve(env, log, database, await (appModule ?? import('./server/app.js')));
}

async function serve(
  env: Env,
  log: Logger,
  database: Database,
  { createApp }: typeof import('./server/app.js'),
): Promise<number> {
  const { bootstrapAdminToken, TokenVerifier } = await import('./modules/auth/tokens.js');
  const app = createApp({ env, log, database, tokens: new TokenVerifier(database.prisma, env.ADMIN_TOKEN) });
  let url: string;
  try {
    url = await app.start();
  } catch (error) {
    await app.stop();
    const { code, port } = error as NodeJS.ErrnoException & { port?: number };
    if (code !== 'EADDRINUSE') throw error;
    const [name, host] = port === env.PROXY_PORT ? ['PROXY_PORT', env.PROXY_HOST ?? env.HOST] : ['PORT', env.HOST];
    process.stderr.write(`streamgate: port ${port} on ${host} is already in use; set ${name} to a free one\n`);
    return 1;
  }
  // Only once listening: a token printed by a start that then fails would be lost for good.
  const generated = await bootstrapAdminToken(database.prisma, env.ADMIN_TOKEN);
  if (generated) {
    process.stderr.write(
      `\nStreamGate generated an admin token. It is shown only this once; only its hash is stored:\n\n    ${generated.token}\n\nUse it as "Authorization: Bearer <token>".\n\n`,
    );
    await app.services.events.record({
      type: 'auth.token_generated',
      alwaysStored: true,
      source: 'auth',
      severity: 'INFO',
      message: `admin token "${generated.name}" generated at first start`,
      details: { tokenId: generated.id, name: generated.name },
    });
  }
  log.info(
    {
      url,
      ...(app.dataPlane.url ? { dataPlane: app.dataPlane.url } : {}),
      database: database.engine,
      location: database.location,
      startupMs: Math.round(performance.now()),
    },
    'StreamGate ready',
  );
  return new Promise((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'shutting down');
      stop(app, log).then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });
}

async function stop(app: App, log: Logger): Promise<void> {
  try {
    await app.stop();
    log.info('stopped');
  } catch (error) {
    log.error({ err: error }, 'shutdown failed');
    throw error;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`streamgate: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
