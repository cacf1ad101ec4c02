import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import { type AuthService, bearerToken, hasRole } from '../../modules/auth/index.js';
import type { HttpRoute, RouteService } from '../../modules/routes/index.js';
import { APPLICATION_TRAFFIC, type ForwardingProfile, NODE_API } from '../http/forward.js';
import { parseHost } from './host.js';

/** A request the data plane answers itself: the status, our error code and a short reason. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
  /** Seconds, for 503. */
  retryAfter?: number;
}

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
      retryAfter: routes.recheckSeconds,
    };
  }
  return route;
}

function refusal(status: number, code: string, message: string): Refusal {
  return { status, code, message };
}

export function isRefusal(value: HttpRoute | Refusal): value is Refusal {
  return 'status' in value;
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

/** The JSON body of an answer of our own: `{"error":{"code","message"}}`, as on the API port. */
export function refusalBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/**
 * Whether the caller may use a route that leads to a node's API (an admin bearer token, checked
 * as on the API port); null when it may, else what to answer.
 */
export async function nodeRouteRefusal(auth: AuthService, req: IncomingMessage): Promise<Refusal | null> {
  const result = await auth.authenticate(bearerToken(req.headers.authorization), req.socket.remoteAddress);
  switch (result.kind) {
    case 'principal':
      if (hasRole(result.principal.role, 'admin')) return null;
      return refusal(403, 'FORBIDDEN', `a node's API needs the admin role; the token has ${result.principal.role}`);
    case 'unavailable':
      return { ...refusal(503, 'UNAVAILABLE', 'cannot check the token right now; try again shortly'), retryAfter: 5 };
    case 'limited':
      return {
        ...refusal(429, 'TOO_MANY_REQUESTS', 'too many invalid tokens from this address; try again later'),
        retryAfter: result.retryAfterSeconds,
      };
    default:
      return refusal(401, 'UNAUTHENTICATED', "a node's API needs an admin bearer token");
  }
}
