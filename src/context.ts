import type { Agent } from 'undici';
import type { Database, Db } from './db/client.js';
import type { Env } from './env.js';
import type { Logger } from './lib/logger.js';
import type { Principal, TokenVerifier } from './modules/auth/tokens.js';
import { createNodeAgent } from './modules/nodes/clients/index.js';
import { NodeDirectory } from './modules/nodes/directory.js';

/** Everything the app is built from; tests build their own (see test/helpers). */
export interface AppDeps {
  env: Env;
  database: Database;
  log: Logger;
  tokens: TokenVerifier;
}

/** What one app instance builds from its deps and shares between GraphQL and plain HTTP. */
export interface Services {
  nodeDirectory: NodeDirectory;
  /** HTTP to node APIs (typed clients and passthrough); closed when the app stops. */
  nodeAgent: Agent;
}

export function createServices(deps: AppDeps): Services {
  return { nodeDirectory: new NodeDirectory(deps.database.prisma), nodeAgent: createNodeAgent() };
}

/** Per-operation context: resolvers reach dependencies only through it. */
export interface Context extends Services {
  db: Db;
  principal: Principal;
  log: Logger;
}

export function createContext(deps: AppDeps, services: Services, principal: Principal): Context {
  return { ...services, db: deps.database.prisma, principal, log: deps.log };
}
