import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Env } from '../../env.js';
import type { Logger } from '../../lib/logger.js';
import type { AuthService } from '../../modules/auth/index.js';
import type { RouteService } from '../../modules/routes/index.js';
import { answerClientErrors, limitConnections } from '../http/limits.js';
import { listen } from '../http/listen.js';
import type { Metrics } from '../http/metrics.js';
import { type RouteContext, withRouteContext } from './context.js';
import { forwardRequest, type RequestForwarding } from './requests.js';
import { UpgradeTunnels } from './upgrades.js';

export interface DataPlaneDeps {
  env: Env;
  log: Logger;
  routes: RouteService;
  /** For routes made from nodes: their APIs are for admins only. */
  auth: AuthService;
  /** HttpAgents.upstreams: one keep-alive pool per upstream origin, through the outbound policy. */
  agent: Dispatcher;
  metrics: Metrics;
}

export interface DataPlane {
  /** Listens; resolves to its base URL. */
  start(port: number, host: string): Promise<string>;
  /** `http://host:port` while listening, else null. */
  readonly url: string | null;
  /**
   * Stops accepting, lets requests in flight finish until `deadline`, then closes every
   * connection (open WebSocket tunnels are cut once the requests are done).
   */
  stop(deadline: Promise<void>): Promise<void>;
}

/**
 * The data plane (PROXY_PORT): HTTP and WebSocket traffic routed by `Host` through the route
 * registry to the routes' upstreams. A listener of its own beside the API server, with the same
 * pre-authentication limits (header and idle timeouts, connection caps); it needs no token, as
 * the traffic is the applications' own, and it serves nothing of the API (a route made from a
 * node, which leads to that node's API, needs an admin token, as the passthrough does).
 */
export function createDataPlane({ env, log, routes, auth, agent, metrics }: DataPlaneDeps): DataPlane {
  const accessLog = log.child({ component: 'data-plane' });
  const forwarding: RequestForwarding = { routes, auth, agent, timeoutMs: env.PROXY_TIMEOUT_MS };
  const tunnels = new UpgradeTunnels(forwarding);

  const finished = (req: IncomingMessage, context: RouteContext, status: number) => {
    const seconds = (performance.now() - context.started) / 1000;
    const alias = context.route?.alias ?? '';
    metrics.observeRoute(alias, status, seconds);
    accessLog.info({
      route: alias || null,
      upstream: context.upstream,
      method: req.method,
      // The path only: query strings can carry credentials.
      path: (req.url ?? '').split('?', 1)[0],
      status,
      bytes: context.bytes,
      durationMs: Math.round(seconds * 100_000) / 100,
      client: context.client,
      ...(context.error ? { error: context.error } : {}),
    });
  };

  const newContext = (req: IncomingMessage): RouteContext => ({
    route: null,
    upstream: null,
    status: 0,
    bytes: 0,
    error: null,
    started: performance.now(),
    client: req.socket.remoteAddress,
  });

  let inFlight = 0;
  const server = createServer(
    {
      // Uploads stream for as long as they take; the upstream's timeouts bound each wait instead.
      requestTimeout: 0,
      headersTimeout: env.HEADERS_TIMEOUT_MS,
      keepAliveTimeout: env.KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(1_000, env.HEADERS_TIMEOUT_MS),
      // A request without Host gets our 400 with a reason, not Node's bare one.
      requireHostHeader: false,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const context = withRouteContext(req, newContext(req));
      inFlight++;
      res.once('close', () => {
        inFlight--;
        finished(req, context, res.statusCode);
      });
      forwardRequest(forwarding, req, res, context).catch((error: unknown) => {
        accessLog.error({ err: error }, 'data plane request failed');
        res.destroy();
      });
    },
  );
  limitConnections(server, {
    max: env.MAX_CONNECTIONS,
    perAddress: env.MAX_CONNECTIONS_PER_ADDRESS,
    firstRequestMs: env.HEADERS_TIMEOUT_MS,
  });
  answerClientErrors(server);
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const context = withRouteContext(req, newContext(req));
    tunnels.handle(req, socket, head, context, () => finished(req, context, context.status));
  });

  let url: string | null = null;
  let stopping: Promise<void> | undefined;
  return {
    get url() {
      return url;
    },
    async start(port, host) {
      ({ url } = await listen(server, port, host));
      log.info({ url }, 'data plane listening');
      return url;
    },
    stop(deadline) {
      if (!server.listening) return stopping ?? Promise.resolve();
      stopping ??= drain(deadline);
      return stopping;
    },
  };

  async function drain(deadline: Promise<void>): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Requests in flight finish (keep-alive connections idle between requests are closed as
    // they get there); WebSocket tunnels have no end of their own, so they are cut after.
    let sweeper: NodeJS.Timeout | undefined;
    const drained = new Promise<void>((resolve) => {
      const sweep = () => {
        server.closeIdleConnections();
        if (inFlight === 0) resolve();
      };
      sweeper = setInterval(sweep, 50);
      sweep();
    });
    await Promise.race([drained, deadline]);
    clearInterval(sweeper);
    server.closeAllConnections();
    tunnels.closeAll();
    await closed;
    url = null;
  }
}
