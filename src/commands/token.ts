import { GraphQLError } from 'graphql';
import type { Database } from '../db/client.js';
import type { Env } from '../env.js';
import type { Logger } from '../lib/logger.js';
import { AuthService, TokenVerifier } from '../modules/auth/index.js';
import { EventBus } from '../modules/events/index.js';
import type { TokenCommand } from './token-args.js';

const CLI_ACTOR = { id: 'cli', name: 'streamgate CLI' };

/** Runs a token command on a migrated database; every change is an event-log entry by the CLI. */
export async function runToken(command: TokenCommand, database: Database, env: Env, log: Logger): Promise<number> {
  const db = database.prisma;
  const events = new EventBus({ db, log, minStoredSeverity: env.EVENT_LOG_MIN_SEVERITY });
  const auth = new AuthService({
    db,
    log,
    events,
    tokens: new TokenVerifier(db, env.ADMIN_TOKEN),
    failuresPerMinute: env.AUTH_FAILURES_PER_MINUTE,
  });
  try {
    switch (command.action) {
      case 'create': {
        const { token, apiToken } = await auth.createToken(command, CLI_ACTOR);
        process.stderr.write(`created ${apiToken.role} token "${apiToken.name}" (${apiToken.id}); shown only now:\n`);
        process.stdout.write(`${token}\n`);
        return 0;
      }
      case 'list': {
        const rows = await auth.listTokens();
        const when = (d: Date | null) => d?.toISOString() ?? '-';
        process.stdout.write('id\tname\trole\tcreated\texpires\tlast used\n');
        for (const r of rows) {
          process.stdout.write(
            `${r.id}\t${r.name}\t${r.role}\t${when(r.createdAt)}\t${when(r.expiresAt)}\t${when(r.lastUsedAt)}\n`,
          );
        }
        return 0;
      }
      case 'revoke': {
        const revoked = await auth.revokeToken(command.id, CLI_ACTOR);
        if (!revoked) {
          process.stderr.write(`streamgate: no token ${command.id}\n`);
          return 1;
        }
        process.stdout.write(`revoked ${revoked.role} token "${revoked.name}" (${revoked.id})\n`);
        return 0;
      }
    }
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    process.stderr.write(`streamgate: ${error.message} (${String(error.extensions.code)})\n`);
    return 1;
  } finally {
    await events.close();
  }
}
