import type { Database, Db } from '../db/client.js';
import type { Env } from '../env.js';
import type { HttpAgents } from '../lib/http-agents.js';
import type { Logger } from '../lib/logger.js';
import type { TokenVerifier } from './auth/index.js';
import type { HealthSource } from './health/index.js';

/** What every module may be built from: configuration, storage, logging, outbound HTTP. */
export interface CoreDeps {
  env: Env;
  database: Database;
  /** `database.prisma`, the one Prisma client. */
  db: Db;
  log: Logger;
  /** Where bearer tokens are looked up (the CLI and tests build it; the auth module uses it). */
  tokens: TokenVerifier;
  /** Outbound HTTP pools; closed by the app after every module has stopped. */
  http: HttpAgents;
}

/**
 * One domain module, as `src/modules/index.ts` lists it. Importing the module's `index.ts`
 * registers its GraphQL types (it imports its `schema.ts`); the descriptor says how to build,
 * start and stop what it serves. Modules are built and started in list order and stopped in
 * reverse, so a module may use (and outlive nothing of) the modules listed before it.
 */
export interface ModuleDescriptor<Name extends string = string, Service = unknown, Deps = CoreDeps> {
  /** Also the key of its service in the GraphQL context (`ctx.<name>`) and in `App.services`. */
  readonly name: Name;
  /** Builds the module's service from the core and the services listed before it. No I/O, no timers. */
  create(deps: Deps): Service;
  /** What the health monitor checks for this module; registered once every module is built. */
  healthSources?(service: Service): HealthSource[];
  /** Called in list order before the server listens (awaited), e.g. to load state or start timers. */
  start?(service: Service): Promise<void> | void;
  /** Called in reverse list order once the server has stopped taking requests (awaited). */
  stop?(service: Service): Promise<void> | void;
}

// biome-ignore lint/suspicious/noExplicitAny: a list of descriptors is heterogeneous by nature
export type AnyModule = ModuleDescriptor<string, any, any>;

/** Declares a module (only for the types: the descriptor is returned as it is). */
export function defineModule<Name extends string, Service, Deps>(
  descriptor: ModuleDescriptor<Name, Service, Deps>,
): ModuleDescriptor<Name, Service, Deps> {
  return descriptor;
}

/** The services of a list of modules, each under its module's name. */
export type ServicesOf<Modules extends readonly AnyModule[]> = {
  [M in Modules[number] as M['name']]: M extends ModuleDescriptor<string, infer S, infer _D> ? S : never;
};
