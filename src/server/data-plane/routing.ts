import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import type { HttpRoute, RouteService } from '../../modules/routes/index.js';
import { APPLICATION_TRAFFIC, type ForwardingProfile, NODE_API } from '../http/forward.js';
import type { Refusal } from '../http/respond.js';
import { parseHost } from './host.js';

/**
 * The route a request goes to, by its `Host` (registry.getHttpRouteOrExact: the first label as
 * alias, else the exact host), or why it goes nowhere. Reads the registry as it is now: a route
 * changed or removed takes effect for the next request, while one already routed keeps its route.
 */
export function routeRequest(routes: RouteService, req: IncomingMessage): HttpRoute | Refusal {
  const target = req.url ?? '';
  if (target.charCodeAt(0) !== 47 /* '/' */) {
    return refusal(400, 'BAD_REQUEST', 'the request target must be a path (`/…`), not an absolute URL or `*`');
  }
  // Node's parser refuses both headers together (HPE_INVALID_TRANSFER_ENCODING, see clientError);
  // this holds even if it is ever run leniently: such a request is never forwarded.
  if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] !== undefined) {
    return refusal(400, 'BAD_REQUEST', 'the request has both Content-Length and Transfer-Encoding');
  }
  const host = parseHost(req.headers.host);
  if (typeof host === 'string') return refusal(400, 'BAD_HOST', host);
  const route = routes.registry.getHttpRouteOrExact(host.alias, host.host);
  if (!route) return refusal(404, 'ROUTE_NOT_FOUND', `no route serves host "${host.host}"`);
  if (routes.healthStatus(route) === 'UNHEALTHY') {
    return {
      ...refusal(503, 'ROUTE_UNHEALTHY', `route "${route.alias}" is unhealthy; try again later`),
      headers: { 'retry-after': String(routes.recheckSeconds) },
    };
  }
  return route;
}

function refusal(status: number, code: string, message: string): Refusal {
  return { status, code, message };
}

/** Where a route's traffic goes, worked out once per route object (routes are immutable). */
export interface UpstreamTarget {
  origin: string;
  /** Prefixed to every request path ('' for none). */
  basePath: string;
  /**
   * A route made from a node leads to that node's own API: only an admin may use it (as the
   * `/proxy/*` passthrough), and it is forwarded with the passthrough's header rules.
   */
  adminOnly: boolean;
  profile: ForwardingProfile;
}

const targets = new WeakMap<HttpRoute, UpstreamTarget>();

export function upstreamOf(route: HttpRoute): UpstreamTarget {
  let target = targets.get(route);
  if (!target) {
    const { protocol, host, port, basePath } = route.upstream;
    const shownHost = isIPv6(host) ? `[${host}]` : host;
    const adminOnly = route.provider === 'nodes';
    target = {
      origin: `${protocol}://${shownHost}:${port}`,
      basePath: basePath === '/' ? '' : basePath,
      adminOnly,
      profile: adminOnly ? NODE_API : APPLICATION_TRAFFIC,
    };
    targets.set(route, target);
  }
  return target;
}
