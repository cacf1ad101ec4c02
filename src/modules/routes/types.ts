/**
 * The route registry's vocabulary. Providers describe routes as specs; the registry validates them
 * (reconcile.ts) into Routes, each in one of three pools.
 */

export type RouteKind = 'HTTP' | 'STREAM' | 'EXCLUDED';
export const ROUTE_KINDS = ['HTTP', 'STREAM', 'EXCLUDED'] as const satisfies readonly RouteKind[];

/**
 * Where routes come from, in precedence order: when two providers name the same alias, host or
 * listen port, the one listed first wins. The routes file is the operator's explicit word and
 * beats proxies; both are asked for by name and beat the routes derived from the node registry.
 */
export const PROVIDERS = ['file', 'proxies', 'nodes'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

interface SpecBase {
  /** As the provider wrote it; the registry lower-cases it (host names are case-insensitive). */
  alias: string;
  provider: ProviderName;
  /** Where it was defined, for reasons and events: `line 12`, `proxy 7d3…`, `node 01a…`. */
  origin: string;
  /** The proxy or node it was made from; absent for file routes. */
  ref?: RouteRef;
}

/** A route's link to the row it was made from. */
export interface RouteRef {
  kind: 'proxy' | 'node';
  id: string;
}

/** Traffic for `{alias}.*` (or the exact `host`) goes to `upstream`, an http(s) URL. */
export interface HttpRouteSpec extends SpecBase {
  kind: 'HTTP';
  upstream: string;
  /** Also served for exactly this host name. */
  host?: string;
  /** What the health check GETs (default: the upstream's own path). */
  healthPath?: string;
}

/** TCP on `listenPort` is piped to `upstream` (`host:port`). */
export interface StreamRouteSpec extends SpecBase {
  kind: 'STREAM';
  listenPort: number;
  upstream: string;
}

/** A route its provider could already tell is broken (the file's schema errors): excluded as is. */
export interface InvalidRouteSpec extends SpecBase {
  kind: 'INVALID';
  reason: string;
}

export type RouteSpec = HttpRouteSpec | StreamRouteSpec | InvalidRouteSpec;

export interface HttpUpstream {
  protocol: 'http' | 'https';
  host: string;
  port: number;
  /** The upstream URL's path (no query), prefixed to every request path; `/` for none. */
  basePath: string;
}

export interface StreamUpstream {
  host: string;
  port: number;
}

interface RouteBase {
  /** Lower-cased alias. */
  readonly alias: string;
  readonly provider: ProviderName;
  readonly origin: string;
  /** http(s)://host:port/path for HTTP routes, tcp://host:port for STREAM; null when unparseable. */
  readonly upstreamUrl: string | null;
  readonly ref: RouteRef | null;
}

export interface HttpRoute extends RouteBase {
  readonly kind: 'HTTP';
  readonly upstream: HttpUpstream;
  /** Lower-cased, without a trailing dot. */
  readonly host: string | null;
  /** The URL the health check GETs. */
  readonly healthUrl: string;
}

export interface StreamRoute extends RouteBase {
  readonly kind: 'STREAM';
  readonly upstream: StreamUpstream;
  readonly listenPort: number;
}

export interface ExcludedRoute extends RouteBase {
  readonly kind: 'EXCLUDED';
  /** The spec's kind when it had a valid one. */
  readonly intendedKind: 'HTTP' | 'STREAM' | null;
  readonly excludedReason: string;
  readonly listenPort: number | null;
  readonly host: string | null;
}

export type Route = HttpRoute | StreamRoute | ExcludedRoute;
export type ActiveRoute = HttpRoute | StreamRoute;
