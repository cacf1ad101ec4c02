import { Pool } from './pool.js';
import { normaliseHost } from './reconcile.js';
import {
  type ActiveRoute,
  type ExcludedRoute,
  type HttpRoute,
  PROVIDERS,
  type Route,
  type StreamRoute,
} from './types.js';

/** What one `replace` changed: a changed route is removed (its old self) and added (its new self). */
export interface RouteChanges {
  added: Route[];
  removed: Route[];
}

/**
 * Every route, in memory, in three pools keyed by alias (GoDoxy's `internal/route/routes`): HTTP
 * and STREAM hold the active routes, EXCLUDED the ones that failed validation. Lookups are O(1)
 * map reads; iteration works on snapshots (pool.ts), so it is safe while the registry changes.
 *
 * The registry itself does not validate: RouteService hands it the full, resolved set
 * (reconcile.ts) and it applies only the difference, so unchanged routes keep their identity.
 */
export class RouteRegistry {
  readonly http = new Pool<HttpRoute>();
  readonly stream = new Pool<StreamRoute>();
  readonly excluded = new Pool<ExcludedRoute>();
  private readonly pools = [this.http, this.stream, this.excluded] as Pool<Route>[];
  /**
   * HTTP routes by the exact hosts they serve: their explicit `host`, and their alias when it has a
   * dot (a proxy's domain). A dotted alias can never be a host's first label, so this map is the
   * only way to reach it, and getHttpRouteOrExact needs two lookups at most. Reconcile keeps aliases
   * and hosts in one namespace, so the two kinds of key never collide.
   */
  private readonly hosts = new Map<string, HttpRoute>();
  private activeSnapshot: readonly ActiveRoute[] | null = null;
  private allSnapshot: readonly Route[] | null = null;
  /** Each route's identity as last applied, to tell a changed route from an unchanged one. */
  private readonly signatures = new WeakMap<Route, string>();

  /** An active route by alias, HTTP first, then STREAM. Expects the alias lower-cased, as stored. */
  get(alias: string): ActiveRoute | undefined {
    return this.http.get(alias) ?? this.stream.get(alias);
  }

  /**
   * A route by alias as a person writes it (any case, a trailing dot), from any pool: active
   * ones first, then an EXCLUDED one, so `route(alias)` can say why it does not serve.
   */
  find(alias: string): Route | undefined {
    const key = normaliseHost(alias);
    return this.get(key) ?? this.excluded.get(key);
  }

  /**
   * The HTTP route for a request (GoDoxy's `GetHTTPRouteOrExact`): by alias (the host's first
   * label) first, else by the exact host, as a key or as a route's explicit `host`. Both arguments
   * are expected lower-cased (the data plane normalises the Host header once).
   */
  getHttpRouteOrExact(alias: string, host: string): HttpRoute | undefined {
    return this.http.get(alias) ?? this.hosts.get(host);
  }

  /** HTTP and STREAM routes (a snapshot). */
  iterActive(): readonly ActiveRoute[] {
    this.activeSnapshot ??= Object.freeze([...this.http.values(), ...this.stream.values()]);
    return this.activeSnapshot;
  }

  /** Every route, EXCLUDED too (a snapshot). */
  iterAll(): readonly Route[] {
    this.allSnapshot ??= Object.freeze([...this.iterActive(), ...this.excluded.values()]);
    return this.allSnapshot;
  }

  get numActive(): number {
    return this.http.size + this.stream.size;
  }

  get numAll(): number {
    return this.numActive + this.excluded.size;
  }

  /** Routes grouped by provider, in provider precedence order; providers without routes are left out. */
  byProvider(): Map<string, Route[]> {
    const groups = new Map<string, Route[]>(PROVIDERS.map((p) => [p, []]));
    for (const route of this.iterAll()) groups.get(route.provider)?.push(route);
    for (const [provider, routes] of groups) if (routes.length === 0) groups.delete(provider);
    return groups;
  }

  /**
   * Makes the registry hold exactly `routes` (the resolved set from every provider): adds the new,
   * removes the gone, replaces the changed, leaves the rest as they are.
   */
  replace(routes: readonly Route[]): RouteChanges {
    const next = new Map<string, Route>();
    // Active routes first, so an excluded one never takes the plain alias an active one needs.
    for (const route of routes) if (route.kind !== 'EXCLUDED') next.set(route.alias, route);
    for (const route of routes) if (route.kind === 'EXCLUDED') next.set(this.excludedKey(route, next), route);
    const changes: RouteChanges = { added: [], removed: [] };
    for (const pool of this.pools) {
      for (const [key, current] of pool.entries()) {
        const incoming = next.get(key);
        // Identity first: a route whose spec did not change comes back as the same object (reconcile.ts).
        if (
          incoming === current ||
          (incoming?.kind === current.kind && this.signatureOf(incoming) === this.signatureOf(current))
        ) {
          next.delete(key); // unchanged: keep the current object
          continue;
        }
        this.remove(key, current);
        changes.removed.push(current);
      }
    }
    for (const [key, route] of next) {
      this.insert(key, route);
      changes.added.push(route);
    }
    if (changes.added.length || changes.removed.length) {
      this.activeSnapshot = null;
      this.allSnapshot = null;
    }
    return changes;
  }

  clear(): void {
    this.replace([]);
  }

  /** An excluded route is keyed by its alias too, unless that is taken (then made unique). */
  private excludedKey(route: ExcludedRoute, taken: ReadonlyMap<string, Route>): string {
    if (!taken.has(route.alias)) return route.alias;
    for (let n = 2; ; n++) {
      const key = `${route.alias}#${n}`;
      if (!taken.has(key)) return key;
    }
  }

  private insert(key: string, route: Route): void {
    if (route.kind === 'HTTP') {
      this.http.add(key, route);
      if (key.includes('.')) this.hosts.set(key, route);
      if (route.host && route.host !== key) this.hosts.set(route.host, route);
    } else if (route.kind === 'STREAM') this.stream.add(key, route);
    else this.excluded.add(key, route);
  }

  private remove(key: string, route: Route): void {
    if (route.kind === 'HTTP') {
      this.http.del(key);
      if (this.hosts.get(key) === route) this.hosts.delete(key);
      if (route.host && this.hosts.get(route.host) === route) this.hosts.delete(route.host);
    } else if (route.kind === 'STREAM') this.stream.del(key);
    else this.excluded.del(key);
  }

  private signatureOf(route: Route): string {
    let signature = this.signatures.get(route);
    if (signature === undefined) {
      signature = JSON.stringify(route);
      this.signatures.set(route, signature);
    }
    return signature;
  }
}
