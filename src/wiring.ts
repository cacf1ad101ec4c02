import type { Database } from './db/client.js';
import type { Env } from './env.js';
import { createHttpAgents, type HttpAgents } from './lib/http-agents.js';
import type { Logger } from './lib/logger.js';
import { OutboundPolicy } from './lib/outbound.js';
import type { TokenVerifier } from './modules/auth/index.js';
import { MODULES, type Services } from './modules/index.js';
import type { AnyModule, CoreDeps } from './modules/module.js';

/** Everything the app is built from; tests build their own (see test/helpers). */
export interface AppDeps {
  env: Env;
  database: Database;
  log: Logger;
  tokens: TokenVerifier;
}

/** The modules' services, and how to start and stop them together. */
export interface Modules {
  readonly services: Services;
  /** The outbound HTTP pools and the address policy every outbound connection goes through. */
  readonly http: HttpAgents;
  /** Starts every module in list order (each awaited). */
  start(): Promise<void>;
  /**
   * Stops every module in reverse list order, each awaited before the next, then closes the
   * outbound HTTP pools (nothing uses them any more) and last the database.
   */
  stop(): Promise<void>;
}

/**
 * Builds every module of src/modules/index.ts in order, each from the core deps and the services
 * built before it, then registers their health sources. A module that reads a service listed after
 * it fails here, at once, naming both.
 */
export function buildModules(deps: AppDeps, modules: readonly AnyModule[] = MODULES): Modules {
  const http = createHttpAgents(OutboundPolicy.fromEnv(deps.env));
  const core: CoreDeps = { ...deps, db: deps.database.prisma, http };
  const built: Record<string, unknown> = {};
  for (const module of modules) built[module.name] = module.create(depsFor(module, core, built, modules));
  const services = built as Services;
  for (const module of modules) {
    for (const source of module.healthSources?.(built[module.name]) ?? []) services.health.register(source);
  }
  let stopping: Promise<void> | undefined;
  return {
    services,
    http,
    async start() {
      for (const module of modules) await module.start?.(built[module.name]);
    },
    stop() {
      stopping ??= (async () => {
        for (const module of [...modules].reverse()) await module.stop?.(built[module.name]);
        await http.destroy(); // every request that used them has finished or been cut
        await deps.database.close();
      })();
      return stopping;
    },
  };
}

/** The core plus the services built so far; reading a later module's service is a wiring bug. */
function depsFor(module: AnyModule, core: CoreDeps, built: Record<string, unknown>, modules: readonly AnyModule[]) {
  const names = new Set(modules.map((m) => m.name));
  return new Proxy({ ...core, ...built } as Record<string, unknown>, {
    get(target, key, receiver) {
      if (typeof key === 'string' && names.has(key) && !(key in built)) {
        throw new Error(`module "${module.name}" uses "${key}", which is listed after it in src/modules/index.ts`);
      }
      return Reflect.get(target, key, receiver);
    },
  });
}
