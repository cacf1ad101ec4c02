import { authModule } from './auth/index.js';
import { clusterModule } from './cluster/index.js';
import { eventsModule } from './events/index.js';
import { healthModule } from './health/index.js';
import type { ServicesOf } from './module.js';
import { nodesModule } from './nodes/index.js';
import { proxiesModule } from './proxies/index.js';
import { routesModule } from './routes/index.js';
import { sessionsModule } from './sessions/index.js';
import { settingsModule } from './settings/index.js';

/**
 * Every domain module, in dependency order: each may use the services of those above it. They are
 * built and started in this order and stopped in reverse (src/wiring.ts). Adding a module is one
 * folder under src/modules and one line here (README, "Adding a module").
 */
export const MODULES = [
  eventsModule,
  settingsModule,
  healthModule,
  clusterModule,
  authModule,
  nodesModule,
  sessionsModule,
  proxiesModule,
  routesModule,
] as const;

/** What the modules build: `ctx.<module>` in resolvers, `app.services.<module>` for the CLI and tests. */
export type Services = ServicesOf<typeof MODULES>;
