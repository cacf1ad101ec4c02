import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Services } from '../modules/index.js';
import { type AppDeps, buildModules } from '../wiring.js';
import { createDataPlane, type DataPlane } from './data-plane/index.js';
import { GenerationCache } from './graphql/read-cache.js';
import { createGraphQLWebSocket } from './graphql/ws.js';
import { createGraphQL } from './graphql/yoga.js';
import { requirePrincipal } from './http/auth.js';
import { graphiqlEnabled, originAllowed, requireJsonBody } from './http/browser.js';
import { createGraphiQLPage } from './http/graphiql.js';
import { readGraphQLBody } from './http/graphql-body.js';
import { bodyDeadline, limitConnections } from './http/limits.js';
import { listen } from './http/listen.js';
import { createMetrics } from './http/metrics.js';
import { createPassthrough } from './http/passthrough.js';
import { sendHealth, sendReady } from './http/probes.js';
import { sendError } from './http/respond.js';

export interface App {
  /**
   * Listens on PORT/HOST (or the given ones; port 0 picks a free port), and the data plane on
   * PROXY_PORT/PROXY_HOST when it is set (or on `proxyPort` when given). Resolves to the API's base URL.
   */
  start(port?: number, host?: string, proxyPort?: number): Promise<string>;
  /** Stops accepting, lets in-flight requests finish (bounded), closes sockets and the database. */
  stop(): Promise<void>;
  readonly server: ReturnType<typeof createServer>;
  readonly yoga: ReturnType<typeof createGraphQL>;
  /** What the modules built (`services.events`, `services.health`, …), for the CLI and tests. */
  readonly services: Services;
  /** The data plane (listening only when PROXY_PORT is set): `dataPlane.url`. */
  readonly dataPlane: DataPlane;
}

/** Builds the whole HTTP/WebSocket surface on one node:http server. No side effects until start(). */
export function createApp(deps: AppDeps): App {
  const { env, log, database } = deps;
  const modules = buildModules(deps);
  const { services } = modules;
  const { relay } = services.sessions;
  const readCache = new GenerationCache(database.writes);
  const yoga = createGraphQL(deps, services, readCache);
  const graphqlWs = createGraphQLWebSocket(services.auth, yoga);
  const metrics = createMetrics();
  metrics.trackStreams(() => services.routes.streams.allTraffic());
  metrics.trackReadCache(readCache.stats);
  const passthrough = createPassthrough({
    nodes: services.nodes.directory,
    agent: services.nodes.agent,
    timeoutMs: env.PASSTHROUGH_TIMEOUT_MS,
  });
  const dataPlane = createDataPlane({
    env,
    log,
    routes: services.routes,
    auth: services.auth,
    agent: modules.http.upstreams,
    metrics,
  });
  const graphiql = graphiqlEnabled(env) ? createGraphiQLPage() : null;
  let draining = false;

  async function route(req: IncomingMessage, res: ServerResponse, surface: string): Promise<void> {
    switch (surface) {
      case 'health':
        return sendHealth(res);
      case 'ready':
        return sendReady(res, database, draining, services.cluster);
      case 'graphql':
        if (graphiql?.wants(req)) return graphiql.send(req, res);
        if (!requireJsonBody(req, res)) return;
        if (req.method === 'POST') {
          const body = await readGraphQLBody(req, res);
          if (body === undefined) return;
          (req as IncomingMessage & { body?: unknown }).body = body;
        }
        return yoga.handle(req, res);
    }
    // The passthrough can do anything a node's API allows: admin only.
    if (!(await requirePrincipal(services.auth, req, res, surface === 'proxy' ? 'admin' : 'viewer'))) return;
    switch (surface) {
      case 'proxy':
        return passthrough(req, res);
      case 'metrics':
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(await metrics.registry.metrics());
        return;
      default:
        sendError(res, 404, 'NOT_FOUND', 'no such route');
    }
  }

  // requestTimeout 0: Node's would cut streamed passthrough uploads; bodyDeadline covers the rest.
  const server = createServer(
    {
      requestTimeout: 0,
      headersTimeout: env.HEADERS_TIMEOUT_MS,
      keepAliveTimeout: env.KEEP_ALIVE_TIMEOUT_MS,
      // How often Node looks for connections past headersTimeout (its default, 30 s, would let a
      // dribbling peer hold a connection three times longer than the timeout says).
      connectionsCheckingInterval: Math.min(1_000, env.HEADERS_TIMEOUT_MS),
    },
    (req, res) => {
      const started = performance.now();
      const surface = surfaceOf(req.url ?? '/');
      if (surface !== 'proxy') bodyDeadline(req, res, env.REQUEST_TIMEOUT_MS);
      res.once('finish', () =>
        metrics.observe(surface, req.method ?? '', res.statusCode, (performance.now() - started) / 1000),
      );
      route(req, res, surface).catch((error: unknown) => {
        // The path only: query strings can carry credentials (`?access_token=`).
        log.error({ err: error, path: (req.url ?? '').split('?', 1)[0] }, 'request failed');
        sendError(res, 500, 'INTERNAL', 'internal error');
      });
    },
  );
  limitConnections(server, {
    max: env.MAX_CONNECTIONS,
    perAddress: env.MAX_CONNECTIONS_PER_ADDRESS,
    firstRequestMs: env.HEADERS_TIMEOUT_MS,
  });

  server.on('upgrade', (req, socket: Socket, head) => {
    const surface = surfaceOf(req.url ?? '/');
    // A browser page from another origin must not open sockets with an operator's credentials
    // (cross-site WebSocket hijacking); clients that are not browsers send no Origin.
    if (!originAllowed(req.headers.origin, env.CORS_ORIGINS)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    if (surface === 'graphql') {
      graphqlWs.wss.handleUpgrade(req, socket, head, (ws) => graphqlWs.wss.emit('connection', ws, req));
      return;
    }
    if (surface === 'stream') return relay.handleUpgrade(req, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });

  let stopping: Promise<void> | undefined;

  return {
    server,
    yoga,
    services,
    dataPlane,
    async start(port = env.PORT, host = env.HOST, proxyPort = env.PROXY_PORT) {
      // Every module is ready (sessions recovered, routes loaded) before the first request.
      await modules.start();
      // STREAM routes listen on their own ports whether or not PROXY_PORT is set: each one was asked for.
      await services.routes.streams.start(env.PROXY_HOST ?? host);
      if (proxyPort !== undefined) {
        const proxyUrl = await dataPlane.start(proxyPort, env.PROXY_HOST ?? host);
        modules.http.policy.addOwnPort(Number(new URL(proxyUrl).port)); // no loops through the data plane
      }
      const api = await listen(server, port, host);
      // Nothing outbound may come back to this server (with PORT=0, only now is its port known).
      modules.http.policy.addOwnPort(api.port);
      return api.url;
    },
    stop() {
      stopping ??= (async () => {
        draining = true;
        const deadline = new Promise<void>((resolve) => setTimeout(resolve, env.SHUTDOWN_TIMEOUT_MS).unref());
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Keep-alive connections idle between requests would hold close() open; in-flight ones
        // finish first. WebSockets get 1001 and until the deadline to answer it (a peer that
        // never does would otherwise hold shutdown for ws' own 30 s close timeout).
        const idleSweeper = setInterval(() => server.closeIdleConnections(), 50);
        server.closeIdleConnections();
        await Promise.race([
          Promise.all([
            closed,
            graphqlWs.close(),
            relay.close(),
            dataPlane.stop(deadline),
            services.routes.streams.stop(deadline),
          ]),
          deadline,
        ]);
        clearInterval(idleSweeper);
        for (const socket of graphqlWs.wss.clients) socket.terminate();
        relay.terminate();
        server.closeAllConnections();
        await Promise.all([closed, dataPlane.stop(deadline), services.routes.streams.stop(deadline)]);
        await yoga.dispose();
        // No request is left: the modules stop in reverse order (proxies' NPM calls finish while
        // the event log is open; the monitor's last writes and the log's last entries come before
        // the database closes), then the outbound pools and the database close.
        await modules.stop();
      })();
      return stopping;
    },
  };
}

/** The surface a request is for, from its path (also the `surface` label of the metrics). */
function surfaceOf(url: string): string {
  const path = url.split('?', 1)[0] ?? '/';
  if (path === '/graphql') return 'graphql';
  if (path.startsWith('/proxy/')) return 'proxy';
  if (path.startsWith('/ws/stream/')) return 'stream';
  if (path === '/health') return 'health';
  if (path === '/ready') return 'ready';
  if (path === '/metrics') return 'metrics';
  return 'other';
}
