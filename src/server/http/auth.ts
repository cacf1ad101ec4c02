import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AuthService, bearerToken, hasRole, type Principal, type Role } from '../../modules/auth/index.js';
import { isRefusal, type Refusal, sendRefusal } from './respond.js';

/**
 * Authenticates a plain HTTP request (everything but GraphQL, /health and /ready: the API's
 * surfaces, and the data plane's routes to node APIs) and checks the token has `role`: the
 * principal, or the refusal to answer (401, 403, 429 or 503). A 401 is the same whatever the
 * path, so it reveals nothing about which resources exist.
 */
export async function authorize(auth: AuthService, req: IncomingMessage, role: Role): Promise<Principal | Refusal> {
  const result = await auth.authenticate(bearerToken(req.headers.authorization), req.socket.remoteAddress);
  switch (result.kind) {
    case 'principal':
      if (hasRole(result.principal.role, role)) return result.principal;
      return {
        status: 403,
        code: 'FORBIDDEN',
        message: `this needs the ${role} role; the token has ${result.principal.role}`,
      };
    case 'unavailable':
      return {
        status: 503,
        code: 'UNAVAILABLE',
        message: 'cannot check the token right now; try again shortly',
        headers: { 'retry-after': '5' },
      };
    case 'limited':
      return {
        status: 429,
        code: 'TOO_MANY_REQUESTS',
        message: 'too many invalid tokens from this address; try again later',
        headers: { 'retry-after': String(result.retryAfterSeconds) },
      };
    default:
      return {
        status: 401,
        code: 'UNAUTHENTICATED',
        message: 'a valid bearer token is required',
        headers: { 'www-authenticate': 'Bearer' },
      };
  }
}

/** authorize(), answering a refusal itself: the principal, or null once refused. */
export async function requirePrincipal(
  auth: AuthService,
  req: IncomingMessage,
  res: ServerResponse,
  role: Role,
): Promise<Principal | null> {
  const outcome = await authorize(auth, req, role);
  if (!isRefusal(outcome)) return outcome;
  sendRefusal(res, outcome);
  return null;
}
