import { Agent } from 'undici';
import type { EventBus } from '../events/index.js';
import type { HealthMonitor } from '../health/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { FileRouteProvider } from './providers/file.js';
import { nodesRouteProvider } from './providers/nodes.js';
import type { RouteProvider } from './providers/provider.js';
import { proxiesRouteProvider } from './providers/proxies.js';
import { ProxmoxClient } from './proxmox/client.js';
import { ProxmoxLinker } from './proxmox/linker.js';
import { RouteService } from './service.js';
import './schema.js'; // registers the module's GraphQL types

/**
 * How often the database-backed providers read every row again even without a change here:
 * changes made through another instance on the same database (or in SQL) arrive within this time.
 */
const RESYNC_MS = 30_000;
/** One call to the Proxmox API longer than this fails (and the refresh with it). */
const PROXMOX_TIMEOUT_MS = 10_000;

/**
 * Every route (from proxies, nodes and the routes file) in one registry, with live health; what
 * the data plane serves. The proxies and nodes providers follow those modules' changes through
 * the event bus, so this module only needs their rows, not their services.
 */
export const routesModule = defineModule({
  name: 'routes',
  create: (deps: CoreDeps & { events: EventBus; health: HealthMonitor }) => createRouteService(deps),
  healthSources: (routes) => [routes.health],
  // Resolves once the registry holds every provider's routes.
  start: (routes) => routes.start(),
  stop: (routes) => routes.close(),
});

export { RouteService } from './service.js';
export type { StreamTraffic } from './streams/listeners.js';
export type { ActiveRoute, HttpRoute, Route } from './types.js';

/** The route registry as the environment configures it. */
function createRouteService(deps: CoreDeps & { events: EventBus; health: HealthMonitor }): RouteService {
  const { env, db, events, health, http } = deps;
  const log = deps.log.child({ module: 'routes' });
  const rows = { events, log, resyncMs: RESYNC_MS };
  const providers: RouteProvider[] = [proxiesRouteProvider(db, rows), nodesRouteProvider(db, rows)];
  if (env.ROUTES_FILE) providers.unshift(new FileRouteProvider({ path: env.ROUTES_FILE, log }));
  const reservedPorts = new Map([[env.PORT, 'PORT (the API)']]);
  if (env.PROXY_PORT) reservedPorts.set(env.PROXY_PORT, 'PROXY_PORT (the data plane)');
  return new RouteService({
    db,
    providers,
    events,
    log,
    health,
    agent: http.upstreams,
    policy: http.policy,
    healthTimeoutMs: env.HEALTH_CHECK_TIMEOUT_MS,
    reservedPorts,
    proxmox: proxmoxLinker(deps, log),
    streams: {
      connectTimeoutMs: env.PROXY_TIMEOUT_MS,
      idleTimeoutMs: env.STREAM_IDLE_TIMEOUT_MS,
      drainTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      maxConnections: env.MAX_CONNECTIONS,
    },
  });
}

/** Route linking to Proxmox (PROXMOX_URL with its token), null when it is not configured. */
function proxmoxLinker(deps: CoreDeps & { events: EventBus }, log: CoreDeps['log']): ProxmoxLinker | null {
  const { env, events, http } = deps;
  const { PROXMOX_URL: url, PROXMOX_TOKEN_ID: tokenId, PROXMOX_TOKEN_SECRET: tokenSecret } = env;
  if (!url || !tokenId || !tokenSecret) return null;
  if (env.PROXMOX_INSECURE === 'true') {
    log.warn(
      { url },
      'PROXMOX_INSECURE=true: the Proxmox certificate is not verified, and the API token is exposed to anyone on the path',
    );
  }
  // Its own pool: one host, and its own TLS rule (PROXMOX_INSECURE); through the outbound policy.
  const dispatcher = new Agent({
    connect: http.policy.connector({ timeout: 5_000, rejectUnauthorized: env.PROXMOX_INSECURE !== 'true' }),
  });
  return new ProxmoxLinker({
    client: new ProxmoxClient({ url, tokenId, tokenSecret, dispatcher, timeoutMs: PROXMOX_TIMEOUT_MS }),
    events,
    log,
    refreshMs: env.PROXMOX_REFRESH_MS,
    close: () => dispatcher.close(),
  });
}
