import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from '../../http/respond.js';
import { bearerToken, type Principal, TokenCheckUnavailableError, type TokenVerifier } from './tokens.js';

/**
 * Authenticates a plain HTTP request (everything but GraphQL, /health and /ready). On failure it
 * answers 401 itself and returns null; the answer is the same whatever the path, so it reveals
 * nothing about which resources exist.
 */
export async function requirePrincipal(
  tokens: TokenVerifier,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<Principal | null> {
  let principal: Principal | null;
  try {
    principal = await tokens.verify(bearerToken(req.headers.authorization));
  } catch (error) {
    if (!(error instanceof TokenCheckUnavailableError)) throw error;
    res.setHeader('Retry-After', '5');
    sendError(res, 503, 'UNAVAILABLE', 'cannot check the token right now; try again shortly');
    return null;
  }
  if (!principal) {
    res.setHeader('WWW-Authenticate', 'Bearer');
    sendError(res, 401, 'UNAUTHENTICATED', 'a valid bearer token is required');
  }
  return principal;
}
