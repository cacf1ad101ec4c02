import type { Dispatcher } from 'undici';
import type { Db } from '../../db/client.js';
import type { Logger } from '../../lib/logger.js';
import type { OutboundPolicy } from '../../lib/outbound.js';
import type { EventBus } from '../events/index.js';
import type { HealthMonitor, HealthStatus } from '../health/index.js';
import { RouteHealthSource } from './health.js';
import { type OriginLoaders, originLoaders } from './origins.js';
import type { RouteProvider, RouteSink } from './providers/provider.js';
import { RouteSourceError } from './providers/provider.js';
import type { ProxmoxLinker } from './proxmox/linker.js';
import { excludeResolved, resolveRoutes } from './reconcile.js';
import { type RouteChanges, RouteRegistry } from './registry.js';
import { StreamListeners, type StreamListenersOptions } from './streams/listeners.js';
import type { ActiveRoute, ExcludedRoute, ProviderName, Route, RouteKind, RouteSpec, StreamRoute } from './types.js';

export interface RouteServiceOptions {
  db: Db;
  providers: RouteProvider[];
  events: Pick<EventBus, 'emit'>;
  log: Logger;
  health: Pick<HealthMonitor, 'forget' | 'relistSoon' | 'statusOf' | 'intervalMs'>;
  /** HTTP for the file routes' health checks (through the outbound address policy). */
  agent: Dispatcher;
  /** The outbound address policy, for STREAM routes' connections and TCP checks (HTTP ones go through `agent`). */
  policy?: Pick<OutboundPolicy, 'checkLiteral' | 'lookup' | 'addOwnPort'>;
  healthTimeoutMs: number;
  /** Ports StreamGate itself listens on, with what they are (PORT, PROXY_PORT). */
  reservedPorts: ReadonlyMap<number, string>;
  /** Links routes to Proxmox nodes and guests (PROXMOX_URL); null when off. */
  proxmox?: ProxmoxLinker | null;
  /** STREAM routes' listeners (streams/listeners.ts). */
  streams: Omit<StreamListenersOptions, 'unbindable' | 'events' | 'log' | 'policy'>;
}

/**
 * The route registry kept current. Each provider hands over its whole list whenever it changes;
 * every provider's list is then resolved together (reconcile.ts: precedence, exclusions) and the
 * registry takes the difference, so only what changed is touched. Resolving is synchronous and
 * re-parses only specs that changed, which keeps a single proxy or node change cheap however many
 * routes there are.
 */
export class RouteService {
  readonly registry = new RouteRegistry();
  readonly health: RouteHealthSource;
  /** Every STREAM route's TCP listener; they listen once `streams.start(host)` is called. */
  readonly streams: StreamListeners;
  private readonly specs = new Map<ProviderName, readonly RouteSpec[]>();
  private readonly refused = new WeakMap<ActiveRoute, ExcludedRoute | null>();
  /**
   * STREAM routes whose port could not be bound, by what they ask for (unbindableKey); tried again
   * when their provider hands over a new list (the routes file saved again).
   */
  private readonly unbound = new Map<string, ExcludedRoute>();
  /** Until every provider has loaded once, updates are only collected (no half-built registry). */
  private loading = true;
  private closed = false;

  constructor(private readonly options: RouteServiceOptions) {
    this.health = new RouteHealthSource(this.registry, options.agent, options.healthTimeoutMs, options.policy);
    this.streams = new StreamListeners({
      ...options.streams,
      events: options.events,
      log: options.log,
      policy: options.policy,
      unbindable: (route, reason) => this.unbindable(route, reason),
    });
  }

  /** The proxy and node rows routes were made from, batched per operation (origins.ts). */
  origins(operation: object): OriginLoaders {
    return originLoaders(this.options.db, operation);
  }

  /** Route linking to Proxmox; null when PROXMOX_URL is not set. */
  get proxmox(): ProxmoxLinker | null {
    return this.options.proxmox ?? null;
  }

  /** Loads every provider and starts following them; resolves once the first full set is in place. */
  async start(): Promise<void> {
    // Proxmox is read beside the providers, not waited for: a slow or absent Proxmox must not hold
    // the start; routes are linked as soon as its inventory is in.
    this.proxmox?.start();
    await Promise.all(this.options.providers.map((provider) => provider.start(this.sinkFor(provider.name))));
    this.loading = false;
    this.apply();
  }

  /** Routes of a kind and/or provider, in registry order (HTTP, STREAM, EXCLUDED). */
  list(filter: { kind?: RouteKind | null; provider?: string | null } = {}): readonly Route[] {
    const { kind, provider } = filter;
    const routes =
      kind === 'HTTP'
        ? this.registry.http.values()
        : kind === 'STREAM'
          ? this.registry.stream.values()
          : kind === 'EXCLUDED'
            ? this.registry.excluded.values()
            : this.registry.iterAll();
    return provider ? routes.filter((r) => r.provider === provider) : routes;
  }

  /** A route by alias as written (any case, a trailing dot), EXCLUDED ones included. */
  find(alias: string): Route | null {
    return this.registry.find(alias) ?? null;
  }

  /**
   * An active route's health as the monitor holds it now, without I/O (the data plane asks on
   * every request): the proxy's or node's it was made from, else the route's own. UNKNOWN while it
   * is not tracked (HEALTH_MONITOR=off, or not checked yet).
   */
  healthStatus(route: ActiveRoute): HealthStatus {
    const { ref } = route;
    const status = ref
      ? this.options.health.statusOf(ref.kind === 'proxy' ? 'PROXY' : 'NODE', ref.id)
      : this.options.health.statusOf('ROUTE', route.alias);
    return status ?? 'UNKNOWN';
  }

  /** Seconds until an unhealthy route is checked again, at the latest (for `Retry-After`). */
  get recheckSeconds(): number {
    return Math.max(1, Math.ceil(this.options.health.intervalMs / 1000));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.options.providers.map((p) => p.close()), this.proxmox?.stop()]);
    // The app drains stream connections with its shutdown deadline first; whatever is left is cut.
    await this.streams.stop(Promise.resolve());
  }

  private sinkFor(name: ProviderName): RouteSink {
    return {
      update: (specs) => {
        if (this.closed) return;
        this.specs.set(name, specs);
        for (const [key, route] of this.unbound) if (route.provider === name) this.unbound.delete(key);
        if (!this.loading) this.apply();
      },
      failed: (error) => this.sourceFailed(name, error),
      gone: (reason) => {
        if (this.closed) return;
        const had = this.specs.get(name)?.length ?? 0;
        this.specs.set(name, []);
        this.options.events.emit({
          type: 'routes.source_removed',
          source: 'routes',
          severity: 'INFO',
          message: `${reason}: its ${had} route(s) removed`,
          details: { provider: name, removed: had, reason },
        });
        if (!this.loading) this.apply();
      },
    };
  }

  /** A provider that cannot be read keeps its previous routes; an ERROR event says why and where. */
  private sourceFailed(name: ProviderName, error: unknown): void {
    if (this.closed) return;
    const { file = null, line = null } = error instanceof RouteSourceError ? error.location : {};
    const message = error instanceof Error ? error.message : String(error);
    const kept = this.specs.get(name)?.length ?? 0;
    this.options.log.error({ err: error, provider: name }, 'routes: provider could not be loaded');
    this.options.events.emit({
      type: 'routes.source_invalid',
      source: 'routes',
      severity: 'ERROR',
      message: `${name} routes not reloaded (${kept} previous kept): ${message}`,
      details: { provider: name, file, line, error: message },
    });
  }

  private apply(): void {
    const resolved = resolveRoutes(this.specs, { reservedPorts: this.options.reservedPorts });
    const changes = this.registry.replace(
      resolved.map(
        (route) => (route.kind === 'STREAM' && this.unbound.get(unbindableKey(route))) || this.withinPolicy(route),
      ),
    );
    if (changes.added.length || changes.removed.length) this.announce(changes);
    this.streams.sync(this.registry.stream.values());
  }

  /** A STREAM route whose port cannot be listened on is EXCLUDED with the reason (and a WARN event). */
  private unbindable(route: StreamRoute, reason: string): void {
    if (this.closed) return;
    this.unbound.set(unbindableKey(route), excludeResolved(route, reason));
    this.apply();
  }

  /**
   * An upstream written as an IP the outbound address policy refuses makes the route EXCLUDED (a
   * name is checked when it resolves, at connect time). Remembered per resolved route, which
   * resolving keeps stable, so an unchanged route stays the same object and is not announced again.
   */
  private withinPolicy(route: Route): Route {
    const { policy } = this.options;
    if (!policy || route.kind === 'EXCLUDED') return route;
    let excluded = this.refused.get(route);
    if (excluded === undefined) {
      const reason = policy.checkLiteral(route.upstream.host, route.upstream.port);
      excluded = reason ? excludeResolved(route, `upstream refused by the outbound address policy: ${reason}`) : null;
      this.refused.set(route, excluded);
    }
    return excluded ?? route;
  }

  private announce({ added, removed }: RouteChanges): void {
    const { events, health } = this.options;
    // A removed or changed route's check still running says nothing about what replaces it.
    for (const route of removed) if (route.kind !== 'EXCLUDED') health.forget('ROUTE', route.alias);
    health.relistSoon('ROUTE');
    for (const route of added) {
      if (route.kind !== 'EXCLUDED') continue;
      events.emit({
        type: 'route.excluded',
        source: 'routes',
        severity: 'WARN',
        message: `route "${route.alias}" (${route.provider}, ${route.origin}) excluded: ${route.excludedReason}`,
        details: { alias: route.alias, provider: route.provider, origin: route.origin, reason: route.excludedReason },
      });
    }
    const byProvider = new Map<string, { added: number; removed: number }>();
    const count = (route: Route, field: 'added' | 'removed') => {
      const entry = byProvider.get(route.provider) ?? { added: 0, removed: 0 };
      entry[field]++;
      byProvider.set(route.provider, entry);
    };
    for (const route of added) count(route, 'added');
    for (const route of removed) count(route, 'removed');
    for (const [provider, n] of byProvider) {
      events.emit({
        type: 'routes.reloaded',
        source: 'routes',
        severity: 'INFO',
        message: `${provider} routes reloaded: ${n.added} added, ${n.removed} removed`,
        details: { provider, ...n, active: this.registry.numActive, excluded: this.registry.excluded.size },
      });
    }
  }
}

/** What a STREAM route asks for: the same route from the same provider fails to bind the same way. */
function unbindableKey(route: StreamRoute): string {
  return `${route.provider}\0${route.alias}\0${route.listenPort}\0${route.upstreamUrl}`;
}
