import type { Database, Db } from './db/client.js';
import type { Env } from './env.js';
import type { Logger } from './lib/logger.js';
import type { Principal, TokenVerifier } from './modules/auth/tokens.js';

/** Everything the app is built from; tests build their own (see test/helpers). */
export interface AppDeps {
  env: Env;
  database: Database;
  log: Logger;
  tokens: TokenVerifier;
}

/** Per-operation context: resolvers reach dependencies only through it. */
export interface Context {
  db: Db;
  principal: Principal;
  log: Logger;
}

export function createContext(deps: AppDeps, principal: Principal): Context {
  return { db: deps.database.prisma, principal, log: deps.log };
}
