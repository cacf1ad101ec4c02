import type { Plugin } from 'graphql-yoga';
import { bearerToken, type Principal, TokenCheckUnavailableError, type TokenVerifier } from './tokens.js';

/**
 * Authenticates every GraphQL request over HTTP and SSE before it is parsed, so a caller without
 * a valid token learns nothing (not even whether its query is valid). GraphiQL's HTML page is
 * static and served by an earlier hook; it can do nothing without a token either.
 */
export function useBearerAuth(tokens: TokenVerifier, principals: WeakMap<Request, Principal>): Plugin {
  return {
    async onRequest({ request, endResponse, fetchAPI }) {
      const reject = (status: number, code: string, message: string, headers: Record<string, string>) =>
        endResponse(
          new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
            status,
            headers: { 'content-type': 'application/graphql-response+json; charset=utf-8', ...headers },
          }),
        );
      let principal: Principal | null;
      try {
        principal = await tokens.verify(bearerToken(request.headers.get('authorization')));
      } catch (error) {
        if (!(error instanceof TokenCheckUnavailableError)) throw error;
        reject(503, 'UNAVAILABLE', 'cannot check the token right now; try again shortly', { 'retry-after': '5' });
        return;
      }
      if (principal) principals.set(request, principal);
      else reject(401, 'UNAUTHENTICATED', 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
    },
  };
}
