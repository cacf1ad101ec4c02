import type { Dispatcher } from 'undici';
import type { Db } from '../../db/client.js';
import type { Env } from '../../env.js';
import type { Logger } from '../../lib/logger.js';
import type { EventBus } from '../events/bus.js';
import type { HealthMonitor } from '../health/monitor.js';
import { FileRouteProvider } from './providers/file.js';
import { nodesRouteProvider } from './providers/nodes.js';
import type { RouteProvider } from './providers/provider.js';
import { proxiesRouteProvider } from './providers/proxies.js';
import { RouteService } from './service.js';

/**
 * How often the database-backed providers read every row again even without a change here:
 * changes made through another instance on the same database (or in SQL) arrive within this time.
 */
const RESYNC_MS = 30_000;

/** The route registry as the environment configures it. */
export function createRouteService(deps: {
  env: Env;
  db: Db;
  log: Logger;
  events: EventBus;
  health: HealthMonitor;
  agent: Dispatcher;
}): RouteService {
  const { env, db, events, health, agent } = deps;
  const log = deps.log.child({ module: 'routes' });
  const rows = { events, log, resyncMs: RESYNC_MS };
  const providers: RouteProvider[] = [proxiesRouteProvider(db, rows), nodesRouteProvider(db, rows)];
  if (env.ROUTES_FILE) providers.unshift(new FileRouteProvider({ path: env.ROUTES_FILE, log }));
  const reservedPorts = new Map([[env.PORT, 'PORT (the API)']]);
  if (env.PROXY_PORT) reservedPorts.set(env.PROXY_PORT, 'PROXY_PORT (the data plane)');
  return new RouteService({
    providers,
    events,
    log,
    health,
    agent,
    healthTimeoutMs: env.HEALTH_CHECK_TIMEOUT_MS,
    reservedPorts,
  });
}
