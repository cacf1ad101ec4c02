import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../../lib/logger.js';
import type { OutboundPolicy } from '../../../lib/outbound.js';
import type { EventBus } from '../../events/index.js';
import type { StreamRoute } from '../types.js';
import { pipeToUpstream } from './pipe.js';

/** A STREAM route's traffic: connections open now and bytes both ways since start. */
export interface StreamTraffic {
  connections: number;
  /** Connections accepted since start. */
  accepted: number;
  /** Bytes received from clients (sent on to the upstream). */
  bytesIn: number;
  /** Bytes sent to clients (received from the upstream). */
  bytesOut: number;
}

export interface StreamListenersOptions {
  policy?: Pick<OutboundPolicy, 'checkLiteral' | 'lookup' | 'addOwnPort'>;
  events: Pick<EventBus, 'emit'>;
  log: Logger;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** How long a removed route's open connections may go on (SHUTDOWN_TIMEOUT_MS). */
  drainTimeoutMs: number;
  /** Per listener (MAX_CONNECTIONS). */
  maxConnections: number;
  /** A route whose port could not be bound, with why: the registry excludes it. */
  unbindable(route: StreamRoute, reason: string): void;
}

interface Listener {
  readonly port: number;
  /** New connections go to this route's upstream (swapped in place when only the upstream changes). */
  route: StreamRoute;
  readonly server: Server;
  readonly sockets: Set<Socket>;
  retired: boolean;
}

/** Per alias; connections still open are counted live from their sockets. */
class Traffic {
  readonly open = new Set<Socket>();
  accepted = 0;
  closedIn = 0;
  closedOut = 0;

  snapshot(): StreamTraffic {
    let bytesIn = this.closedIn;
    let bytesOut = this.closedOut;
    for (const socket of this.open) {
      bytesIn += socket.bytesRead;
      bytesOut += socket.bytesWritten;
    }
    return { connections: this.open.size, accepted: this.accepted, bytesIn, bytesOut };
  }
}

/**
 * One TCP listener per active STREAM route, on its `listenPort`, kept in step with the registry
 * (`sync`). A route that moves to another port gets a new listener; one whose upstream changes
 * keeps its listener and sends new connections to the new upstream. A removed listener stops
 * accepting at once and lets its open connections finish, for `drainTimeoutMs` at most.
 */
export class StreamListeners {
  private host: string | null = null;
  private stopped = false;
  private desired: readonly StreamRoute[] = [];
  private readonly listeners = new Map<number, Listener>();
  private readonly draining = new Set<Listener>();
  private readonly binds = new Set<Promise<void>>();
  private readonly traffic = new Map<string, Traffic>();
  /** Aliases whose upstream failed last time: one WARN per outage, one INFO when it is back. */
  private readonly failing = new Set<string>();

  constructor(private readonly options: StreamListenersOptions) {}

  /** The routes that should be listening now (the registry's STREAM pool). */
  sync(routes: readonly StreamRoute[]): void {
    this.desired = routes;
    if (this.host !== null && !this.stopped) this.reconcile();
  }

  /** Starts listening on `host`; resolves once every port is bound or its route excluded. */
  async start(host: string): Promise<void> {
    this.host = host;
    this.reconcile();
    // A failed bind excludes its route, which can move another onto a port: wait for those too.
    while (this.binds.size > 0) await Promise.all(this.binds);
  }

  /** A route's traffic since start (by alias); zeros for a route that never had any. */
  trafficOf(alias: string): StreamTraffic {
    return this.traffic.get(alias)?.snapshot() ?? { connections: 0, accepted: 0, bytesIn: 0, bytesOut: 0 };
  }

  /** Every alias that has had a connection, with its traffic (for the metrics). */
  *allTraffic(): Generator<[string, StreamTraffic]> {
    for (const [alias, traffic] of this.traffic) yield [alias, traffic.snapshot()];
  }

  /**
   * Stops accepting everywhere, lets open connections finish until `deadline`, then cuts the rest.
   */
  async stop(deadline: Promise<void>): Promise<void> {
    this.stopped = true;
    for (const listener of this.listeners.values()) this.retire(listener);
    await Promise.all(this.binds);
    const closed = [...this.draining].map((l) => new Promise<void>((resolve) => l.server.once('close', resolve)));
    await Promise.race([Promise.all(closed), deadline]);
    for (const listener of this.draining) for (const socket of listener.sockets) socket.destroy();
    await Promise.all(closed);
  }

  private reconcile(): void {
    const wanted = new Map(this.desired.map((route) => [route.listenPort, route]));
    for (const listener of this.listeners.values()) if (!wanted.has(listener.port)) this.retire(listener);
    for (const [port, route] of wanted) {
      const listener = this.listeners.get(port);
      if (listener) listener.route = route;
      else this.bind(route);
    }
  }

  private bind(route: StreamRoute): void {
    const host = this.host as string;
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(listener, socket));
    server.maxConnections = this.options.maxConnections;
    const listener: Listener = { port: route.listenPort, route, server, sockets: new Set(), retired: false };
    this.listeners.set(listener.port, listener);
    const bound = new Promise<void>((resolve) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        if (this.listeners.get(listener.port) === listener) this.listeners.delete(listener.port);
        this.draining.delete(listener);
        resolve();
        if (!listener.retired) this.options.unbindable(listener.route, cannotBind(error, host, listener.port));
      });
      server.listen({ port: listener.port, host }, () => {
        server.removeAllListeners('error');
        server.on('error', (error) => this.options.log.error({ err: error, port: listener.port }, 'stream listener'));
        this.options.policy?.addOwnPort(listener.port); // no route may lead back into a listener
        this.options.log.info({ route: listener.route.alias, host, port: listener.port }, 'stream route listening');
        if (listener.retired) server.close();
        resolve();
      });
    });
    this.binds.add(bound);
    void bound.then(() => this.binds.delete(bound));
  }

  private accept(listener: Listener, socket: Socket): void {
    const { route } = listener;
    const { alias } = route;
    let traffic = this.traffic.get(alias);
    if (!traffic) {
      traffic = new Traffic();
      this.traffic.set(alias, traffic);
    }
    const counted = traffic;
    counted.accepted++;
    counted.open.add(socket);
    listener.sockets.add(socket);
    const upstream = `${route.upstream.host}:${route.upstream.port}`;
    pipeToUpstream(socket, route.upstream, this.options, {
      connected: () => {
        if (this.failing.delete(alias)) {
          this.options.events.emit({
            type: 'route.upstream_recovered',
            source: 'routes',
            severity: 'INFO',
            message: `stream route "${alias}": upstream ${upstream} accepts connections again`,
            details: { alias, upstream },
          });
        }
      },
      failed: (error) => this.upstreamFailed(alias, upstream, error),
      closed: () => {
        counted.open.delete(socket);
        counted.closedIn += socket.bytesRead;
        counted.closedOut += socket.bytesWritten;
        listener.sockets.delete(socket);
      },
    });
  }

  private upstreamFailed(alias: string, upstream: string, error: Error): void {
    const reason = (error as NodeJS.ErrnoException).code ?? error.message;
    this.options.log.warn({ route: alias, upstream, err: error }, 'stream route: upstream unreachable');
    if (this.failing.has(alias)) return;
    this.failing.add(alias);
    this.options.events.emit({
      type: 'route.upstream_unavailable',
      source: 'routes',
      severity: 'WARN',
      message: `stream route "${alias}": upstream ${upstream} unreachable (${reason}); its clients are disconnected until it answers`,
      details: { alias, upstream, error: error.message },
    });
  }

  /** Stops accepting; open connections go on for `drainTimeoutMs` at most. */
  private retire(listener: Listener): void {
    if (this.listeners.get(listener.port) === listener) this.listeners.delete(listener.port);
    if (listener.retired) return;
    listener.retired = true;
    this.draining.add(listener);
    const cut = setTimeout(() => {
      for (const socket of listener.sockets) socket.destroy();
    }, this.options.drainTimeoutMs).unref();
    listener.server.once('close', () => {
      clearTimeout(cut);
      this.draining.delete(listener);
    });
    if (listener.server.listening) listener.server.close();
  }
}

/** Why a port cannot be listened on, in words an operator can act on. */
function cannotBind(error: NodeJS.ErrnoException, host: string, port: number): string {
  const where = `listenPort ${port} cannot be bound on ${host}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return `${where}: in use by another process (EADDRINUSE)`;
    case 'EACCES':
      return `${where}: permission denied (EACCES; ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL':
      return `${where}: no such local address (EADDRNOTAVAIL; check PROXY_HOST)`;
    default:
      return `${where}: ${error.code ?? error.message}`;
  }
}
