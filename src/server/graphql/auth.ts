import type { IncomingMessage } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import { type AuthService, bearerToken, type Principal } from '../../modules/auth/index.js';

/**
 * Authenticates every GraphQL request over HTTP and SSE before it is parsed, so a caller without
 * a valid token learns nothing (not even whether its query is valid). GraphiQL's HTML page is
 * static and served before Yoga; it can do nothing without a token either.
 */
export function useBearerAuth(auth: AuthService, principals: WeakMap<Request, Principal>): Plugin {
  return {
    async onRequest({ request, serverContext, endResponse, fetchAPI }) {
      const reject = (status: number, code: string, message: string, headers: Record<string, string>) =>
        endResponse(
          new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
            status,
            headers: { 'content-type': 'application/graphql-response+json; charset=utf-8', ...headers },
          }),
        );
      const address = (serverContext as { req?: IncomingMessage } | undefined)?.req?.socket.remoteAddress;
      const result = await auth.authenticate(bearerToken(request.headers.get('authorization')), address);
      switch (result.kind) {
        case 'principal':
          principals.set(request, result.principal);
          return;
        case 'unavailable':
          return reject(503, 'UNAVAILABLE', 'cannot check the token right now; try again shortly', {
            'retry-after': '5',
          });
        case 'limited':
          return reject(429, 'TOO_MANY_REQUESTS', 'too many invalid tokens from this address; try again later', {
            'retry-after': String(result.retryAfterSeconds),
          });
        default:
          return reject(401, 'UNAUTHENTICATED', 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
      }
    },
  };
}
