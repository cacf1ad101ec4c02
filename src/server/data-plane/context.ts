import type { IncomingMessage } from 'node:http';
import type { HttpRoute } from '../../modules/routes/index.js';

/**
 * What the data plane knows about a request once it is routed, carried with the request itself
 * (GoDoxy's `WithRouteContext` / `TryGetRoute`): the access log and the metrics read it when the
 * response ends, whatever path the request took.
 */
export interface RouteContext {
  /** The route the request was matched to; null when none matched (404, 400). */
  route: HttpRoute | null;
  /** `http(s)://host:port` the request went to; null when it went nowhere. */
  upstream: string | null;
  /** The status answered (set for upgrades; an HTTP request's is its response's). */
  status: number;
  /** Body bytes sent back to the caller (the upstream's answer, or our error body). */
  bytes: number;
  /** Why the request failed, when it did (the error code of our answer). */
  error: string | null;
  started: number;
  /** The caller's address (kept here: the socket is detached from the request by the time it is logged). */
  client: string | undefined;
}

const contexts = new WeakMap<IncomingMessage, RouteContext>();

export function withRouteContext(req: IncomingMessage, context: RouteContext): RouteContext {
  contexts.set(req, context);
  return context;
}

export function tryGetRoute(req: IncomingMessage): RouteContext | undefined {
  return contexts.get(req);
}
