import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { AuthService } from '../../modules/auth/index.js';
import { classifyNetworkError, describeNetworkError } from '../../modules/nodes/index.js';
import type { RouteService } from '../../modules/routes/index.js';
import { authorize } from '../http/auth.js';
import { forward, forwardedRequestHeaders, hasBody } from '../http/forward.js';
import { isRefusal, type Refusal, sendRefusal } from '../http/respond.js';
import type { RouteContext } from './context.js';
import { routeRequest, upstreamOf } from './routing.js';

export interface RequestForwarding {
  routes: RouteService;
  auth: AuthService;
  /** The upstreams pool (HttpAgents.upstreams): every connection through the outbound policy. */
  agent: Dispatcher;
  timeoutMs: number;
}

/**
 * One HTTP request through the data plane: routed by Host, forwarded with the shared core
 * (http/forward.ts), or answered here with a small JSON error. The context is filled as it goes,
 * for the access log and metrics that read it when the response closes.
 */
export async function forwardRequest(
  { routes, auth, agent, timeoutMs }: RequestForwarding,
  req: IncomingMessage,
  res: ServerResponse,
  context: RouteContext,
): Promise<void> {
  const routed = routeRequest(routes, req);
  if (isRefusal(routed)) return refuse(res, context, routed);
  context.route = routed;
  const { origin, basePath, adminOnly, profile } = upstreamOf(routed);
  if (adminOnly) {
    // A route made from a node leads to its API: admins only, as the /proxy/* passthrough.
    const principal = await authorize(auth, req, 'admin');
    if (isRefusal(principal)) return refuse(res, context, principal);
  }
  context.upstream = origin;
  try {
    await forward(
      agent,
      {
        origin,
        method: req.method ?? 'GET',
        path: basePath + req.url,
        headers: forwardedRequestHeaders(req, profile.request),
        body: hasBody(req) ? req : null,
        timeoutMs,
      },
      res,
      profile.responseHeaders,
      context,
    );
  } catch (error) {
    if (res.destroyed) return; // the caller went away; nothing to answer
    if (res.headersSent) {
      // The upstream died mid-answer: only this response is cut (its client sees a short body).
      context.error = 'UPSTREAM_CUT';
      res.destroy();
      return;
    }
    refuse(res, context, upstreamFailure(error, timeoutMs));
  }
}

/** An upstream that failed before its answer began, as the status a client gets. */
export function upstreamFailure(error: unknown, timeoutMs: number): Refusal {
  const reason = describeNetworkError(error, timeoutMs);
  switch (classifyNetworkError(error)) {
    case 'timeout':
      return { status: 504, code: 'UPSTREAM_TIMEOUT', message: `the upstream did not answer: ${reason}` };
    case 'forbidden':
      return { status: 502, code: 'UPSTREAM_FORBIDDEN', message: `upstream refused by the outbound policy: ${reason}` };
    default:
      return { status: 502, code: 'UPSTREAM_UNAVAILABLE', message: `the upstream is unreachable: ${reason}` };
  }
}

function refuse(res: ServerResponse, context: RouteContext, refusal: Refusal): void {
  context.error = refusal.code;
  // A request refused before its body was read: the connection cannot be reused for the next one.
  const unread = hasBody(res.req) && !res.req.complete;
  context.bytes = sendRefusal(
    res,
    unread ? { ...refusal, headers: { ...refusal.headers, connection: 'close' } } : refusal,
  );
}
