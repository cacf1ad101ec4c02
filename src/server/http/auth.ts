import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AuthService, bearerToken, hasRole, type Principal, type Role } from '../../modules/auth/index.js';
import { sendError } from './respond.js';

/**
 * Authenticates a plain HTTP request (everything but GraphQL, /health and /ready) and checks the
 * token has `role`. On failure it answers itself (401, 403, 429 or 503) and returns null; a 401 is the same whatever the path, so it
 * reveals nothing about which resources exist.
 */
export async function requirePrincipal(
  auth: AuthService,
  req: IncomingMessage,
  res: ServerResponse,
  role: Role,
): Promise<Principal | null> {
  const result = await auth.authenticate(bearerToken(req.headers.authorization), req.socket.remoteAddress);
  switch (result.kind) {
    case 'principal':
      if (hasRole(result.principal.role, role)) return result.principal;
      sendError(res, 403, 'FORBIDDEN', `this needs the ${role} role; the token has ${result.principal.role}`);
      return null;
    case 'unavailable':
      res.setHeader('Retry-After', '5');
      sendError(res, 503, 'UNAVAILABLE', 'cannot check the token right now; try again shortly');
      return null;
    case 'limited':
      res.setHeader('Retry-After', String(result.retryAfterSeconds));
      sendError(res, 429, 'TOO_MANY_REQUESTS', 'too many invalid tokens from this address; try again later');
      return null;
    default:
      res.setHeader('WWW-Authenticate', 'Bearer');
      sendError(res, 401, 'UNAUTHENTICATED', 'a valid bearer token is required');
      return null;
  }
}
