import { Agent } from 'undici';
import type { Database, Db } from './db/client.js';
import type { Env } from './env.js';
import type { Logger } from './lib/logger.js';
import { Authenticator } from './modules/auth/authenticate.js';
import type { Principal, TokenVerifier } from './modules/auth/tokens.js';
import { EventBus } from './modules/events/bus.js';
import { HealthMonitor } from './modules/health/monitor.js';
import { NodeCallBudget } from './modules/nodes/budget.js';
import { createNodeAgent } from './modules/nodes/clients/index.js';
import { NodeDirectory } from './modules/nodes/directory.js';
import { ProxyHealthSource } from './modules/proxies/health.js';
import { NpmClient } from './modules/proxies/npm/client.js';
import { ProxyService } from './modules/proxies/service.js';
import { NpmSync } from './modules/proxies/sync.js';
import type { RouteService } from './modules/routes/service.js';
import { createRouteService } from './modules/routes/wiring.js';
import { StreamRelay } from './modules/sessions/relay.js';
import { SettingsService } from './modules/settings/service.js';

/** Everything the app is built from; tests build their own (see test/helpers). */
export interface AppDeps {
  env: Env;
  database: Database;
  log: Logger;
  tokens: TokenVerifier;
}

/** What one app instance builds from its deps and shares between GraphQL and plain HTTP. */
export interface Services {
  /** The token check of every surface, with its failed-attempt limit per address. */
  auth: Authenticator;
  nodeDirectory: NodeDirectory;
  /** HTTP to node APIs (typed clients and passthrough); closed when the app stops. */
  nodeAgent: Agent;
  /** The event bus: publishes every event live and stores what the policy says. */
  events: EventBus;
  settings: SettingsService;
  /** Checks every monitored subject (nodes, proxies, routes) on a schedule. */
  health: HealthMonitor;
  /** Live sessions: the raw WebSocket relay and its hub (GraphQL frames subscribe to the hub). */
  relay: StreamRelay;
  /** Reverse proxies: validation, lifecycle, Nginx Proxy Manager sync. */
  proxies: ProxyService;
  /** HTTP to proxy destinations and route upstreams (health checks, data plane); closed when the app stops. NPM has its own. */
  proxyAgent: Agent;
  /** The route registry, kept current from its providers (proxies, routes file, nodes). */
  routes: RouteService;
}

export function createServices(deps: AppDeps): Services {
  const { env, log, tokens } = deps;
  const db = deps.database.prisma;
  const nodeAgent = createNodeAgent();
  const events = new EventBus({ db, log, minStoredSeverity: env.EVENT_LOG_MIN_SEVERITY });
  const settings = new SettingsService({ db, events });
  const health = new HealthMonitor({ env, db, log, events, settings, nodeAgent });
  const auth = new Authenticator({ tokens, events, failuresPerMinute: env.AUTH_FAILURES_PER_MINUTE });
  const relay = new StreamRelay({ env, db, log, events, auth });
  // Its own pool: proxy destinations and NPM are not node APIs, and each is one host among many.
  const proxyAgent = new Agent({ keepAliveTimeout: 10_000, connect: { timeout: 5_000 } });
  health.register(new ProxyHealthSource(db, proxyAgent, env.HEALTH_CHECK_TIMEOUT_MS));
  const npm = npmSync(env, { db, events, log, settings });
  const proxies = new ProxyService({ db, events, settings, health, npm });
  const routes = createRouteService({ env, db, log, events, health, agent: proxyAgent });
  return {
    auth,
    nodeDirectory: new NodeDirectory(db),
    nodeAgent,
    events,
    settings,
    health,
    relay,
    proxies,
    proxyAgent,
    routes,
  };
}

/** Nginx Proxy Manager sync when NPM_URL (and, as env.ts requires, its credentials) are set. */
function npmSync(
  env: Env,
  deps: { db: Database['prisma']; events: EventBus; log: Logger; settings: SettingsService },
): NpmSync | null {
  const { NPM_URL: url, NPM_EMAIL: email, NPM_PASSWORD: password } = env;
  if (!url || !email || !password) return null;
  const client = new NpmClient({ url, email, password, timeoutMs: env.NPM_TIMEOUT_MS });
  const installationId = async () => (await deps.settings.get()).installationId;
  return new NpmSync({ client, db: deps.db, events: deps.events, log: deps.log, installationId });
}

/** Per-operation context: resolvers reach dependencies only through it. */
export interface Context extends Services {
  db: Db;
  principal: Principal;
  log: Logger;
  /** Aborted when the HTTP client goes away (absent over graphql-ws): long work can stop early. */
  signal?: AbortSignal;
  /** What this operation may still ask of node APIs (calls, bytes). */
  nodeBudget: NodeCallBudget;
}

export function createContext(deps: AppDeps, services: Services, principal: Principal, signal?: AbortSignal): Context {
  const { NODE_CALLS_PER_OPERATION: calls, NODE_BYTES_PER_OPERATION: bytes } = deps.env;
  return {
    ...services,
    db: deps.database.prisma,
    principal,
    log: deps.log,
    signal,
    nodeBudget: new NodeCallBudget(calls, bytes),
  };
}
