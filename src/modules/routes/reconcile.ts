import { isIP } from 'node:net';
import { parseDestination } from '../proxies/index.js';
import {
  type ActiveRoute,
  type ExcludedRoute,
  type HttpRoute,
  type HttpRouteSpec,
  PROVIDERS,
  type ProviderName,
  type Route,
  type RouteSpec,
  type StreamRoute,
  type StreamRouteSpec,
} from './types.js';

export interface ResolveOptions {
  /** Ports StreamGate itself listens on (PORT, PROXY_PORT): no stream route may take them. */
  reservedPorts: ReadonlyMap<number, string>;
}

export const MAX_ALIAS_LENGTH = 253;
const ALIAS_CHARS = /^[a-z0-9_.-]+$/;
// An alias is the first label of the host names it serves: no leading "-" or ".", no trailing ".".
const ALIAS_ENDS = /^[a-z0-9_](?:.*[a-z0-9_-])?$/;
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/;

type Built = HttpRoute | StreamRoute | ExcludedRoute;

/**
 * What a spec builds to on its own (parsed, checked; before any claim), per spec object. Providers
 * hand over the same spec objects for what did not change, so a reload re-parses only what did, and
 * an unchanged route comes out as the very object the registry holds (its diff is an identity check).
 */
const builtBySpec = new WeakMap<RouteSpec, Built>();

/**
 * Turns every provider's specs into routes, deterministically: providers in PROVIDERS order, each
 * provider's specs in its own order (the file's line order, proxies and nodes by creation). A spec
 * that is invalid, or claims an alias, host or listen port an earlier one holds, becomes an
 * EXCLUDED route with the reason (naming the winner and its provider); nothing else is affected.
 */
export function resolveRoutes(
  specs: ReadonlyMap<ProviderName, readonly RouteSpec[]>,
  options: ResolveOptions,
): Route[] {
  // Claims hold the winning route itself (or the name of a reserved port's owner): the label that
  // names it in a reason is only built for the rare loser.
  const names = new Map<string, ActiveRoute>();
  const ports = new Map<number, ActiveRoute | string>(options.reservedPorts);
  const routes: Route[] = [];
  for (const provider of PROVIDERS) {
    for (const spec of specs.get(provider) ?? []) routes.push(resolveOne(spec, names, ports));
  }
  return routes;
}

function resolveOne(spec: RouteSpec, names: Map<string, ActiveRoute>, ports: Map<number, ActiveRoute | string>): Route {
  let route = builtBySpec.get(spec);
  if (!route) {
    route = build(spec);
    builtBySpec.set(spec, route);
  }
  if (route.kind === 'EXCLUDED') return route;

  const { alias } = route;
  const host = route.kind === 'HTTP' && route.host !== null && route.host !== alias ? route.host : null;
  const aliasHolder = names.get(alias);
  if (aliasHolder) return taken(spec, route, `alias "${alias}"`, aliasHolder);
  const hostHolder = host === null ? undefined : names.get(host);
  if (hostHolder) return taken(spec, route, `host "${host}"`, hostHolder);
  if (route.kind === 'STREAM') {
    const portHolder = ports.get(route.listenPort);
    if (portHolder) return taken(spec, route, `listen port ${route.listenPort}`, portHolder);
    ports.set(route.listenPort, route);
  }
  names.set(alias, route);
  if (host !== null) names.set(host, route);
  return route;
}

/** The loser of a claim: EXCLUDED, naming what it claimed and who holds it (route and provider). */
function taken(spec: RouteSpec, route: ActiveRoute, what: string, holder: ActiveRoute | string): ExcludedRoute {
  const by =
    typeof holder === 'string'
      ? holder
      : `${holder.kind} route "${holder.alias}" (${holder.provider}, ${holder.origin})`;
  return excludedFrom(spec, route.alias, `${what} is already taken by ${by}`, partialOf(route));
}

/** A spec on its own: the route it describes, or why it cannot be one. */
function build(spec: RouteSpec): Built {
  const alias = normaliseHost(spec.alias);
  if (spec.kind === 'INVALID') return excludedFrom(spec, alias, spec.reason);
  const aliasProblem = checkAlias(alias);
  if (aliasProblem) return excludedFrom(spec, alias, aliasProblem);
  const route = spec.kind === 'HTTP' ? buildHttp(spec, alias) : buildStream(spec, alias);
  return 'problem' in route ? excludedFrom(spec, alias, route.problem, route.partial) : route;
}

function excludedFrom(
  spec: RouteSpec,
  alias: string,
  reason: string,
  extra: Partial<ExcludedRoute> = {},
): ExcludedRoute {
  return {
    kind: 'EXCLUDED',
    ...identity(spec, alias),
    upstreamUrl: null,
    intendedKind: spec.kind === 'INVALID' ? null : spec.kind,
    excludedReason: reason,
    listenPort: spec.kind === 'STREAM' ? spec.listenPort : null,
    host: null,
    ...extra,
  };
}

/** An active route EXCLUDED after resolution (the outbound address policy refuses its upstream). */
export function excludeResolved(route: ActiveRoute, reason: string): ExcludedRoute {
  const { alias, provider, origin, ref, upstreamUrl } = route;
  return {
    kind: 'EXCLUDED',
    alias,
    provider,
    origin,
    ref,
    upstreamUrl,
    intendedKind: route.kind,
    excludedReason: reason,
    listenPort: route.kind === 'STREAM' ? route.listenPort : null,
    host: route.kind === 'HTTP' ? route.host : null,
  };
}

/** What every route says of where it came from. */
function identity(spec: RouteSpec, alias: string) {
  return { alias, provider: spec.provider, origin: spec.origin, ref: spec.ref ?? null };
}

/** What an excluded route still shows of a spec that parsed. */
function partialOf(route: HttpRoute | StreamRoute): Partial<ExcludedRoute> {
  return {
    upstreamUrl: route.upstreamUrl,
    host: route.kind === 'HTTP' ? route.host : null,
    listenPort: route.kind === 'STREAM' ? route.listenPort : null,
  };
}

function buildHttp(
  spec: HttpRouteSpec,
  alias: string,
): HttpRoute | { problem: string; partial?: Partial<ExcludedRoute> } {
  const parsed = parseDestination(spec.upstream);
  if (!parsed.ok) return { problem: `upstream: ${parsed.detail}` };
  const url = new URL(parsed.destination.url);
  const upstreamUrl = parsed.destination.url;
  if (url.search !== '' || url.hash !== '') {
    return {
      problem: 'upstream: a query string or fragment is not allowed (the data plane forwards the client’s)',
      partial: { upstreamUrl },
    };
  }
  let host: string | null = null;
  if (spec.host !== undefined) {
    host = normaliseHost(spec.host);
    if (!HOST_NAME.test(host) && isIP(host) === 0) return { problem: `host "${spec.host}" is not a valid host name` };
  }
  const healthPath = spec.healthPath ?? url.pathname;
  if (!healthPath.startsWith('/')) return { problem: `healthPath "${healthPath}" must start with "/"` };
  return {
    kind: 'HTTP',
    ...identity(spec, alias),
    upstreamUrl,
    upstream: {
      protocol: parsed.destination.scheme,
      host: parsed.destination.host,
      port: parsed.destination.port,
      basePath: url.pathname.replace(/\/$/, ''),
    },
    host,
    healthUrl: new URL(healthPath, url.origin).href,
  };
}

function buildStream(
  spec: StreamRouteSpec,
  alias: string,
): StreamRoute | { problem: string; partial?: Partial<ExcludedRoute> } {
  if (!Number.isInteger(spec.listenPort) || spec.listenPort < 1 || spec.listenPort > 65535) {
    return { problem: `listenPort ${spec.listenPort} is out of range (1-65535)` };
  }
  const upstream = parseHostPort(spec.upstream);
  if ('problem' in upstream) return { problem: `upstream: ${upstream.problem}` };
  const shown = isIP(upstream.host) === 6 ? `[${upstream.host}]` : upstream.host;
  return {
    kind: 'STREAM',
    ...identity(spec, alias),
    upstreamUrl: `tcp://${shown}:${upstream.port}`,
    upstream,
    listenPort: spec.listenPort,
  };
}

/** `host:port` or `[v6]:port`. */
export function parseHostPort(raw: string): { host: string; port: number } | { problem: string } {
  const input = raw.trim();
  const match = /^(?:\[([^\]]+)\]|([^:[\]/\s]+)):(\d{1,5})$/.exec(input);
  if (!match) return { problem: `"${raw}" is not host:port` };
  const host = normaliseHost(match[1] ?? match[2] ?? '');
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return { problem: `port ${port} is out of range (1-65535)` };
  if (match[1] !== undefined && isIP(host) !== 6) return { problem: `"${match[1]}" is not an IPv6 address` };
  if (match[2] !== undefined && isIP(host) === 0 && !HOST_NAME.test(host)) {
    return { problem: `"${match[2]}" is not a valid host name or IP address` };
  }
  return { host, port };
}

function checkAlias(alias: string): string | null {
  if (alias === '') return 'alias is empty';
  if (alias.length > MAX_ALIAS_LENGTH) return `alias is ${alias.length} characters long (at most ${MAX_ALIAS_LENGTH})`;
  if (!ALIAS_CHARS.test(alias)) return `alias "${alias}" may hold only letters, digits, ".", "_" and "-"`;
  if (!ALIAS_ENDS.test(alias)) return `alias "${alias}" may not start with "-" or ".", nor end with "."`;
  return null;
}

/** Host names compare case-insensitively, and `example.com.` is `example.com`. */
export function normaliseHost(host: string): string {
  const lower = host.trim().toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
