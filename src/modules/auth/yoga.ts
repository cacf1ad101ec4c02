import type { Plugin } from 'graphql-yoga';
import { appError } from '../../lib/errors.js';
import { bearerToken, type Principal, type TokenVerifier } from './tokens.js';

/**
 * Authenticates every GraphQL request over HTTP and SSE before it is parsed, so a caller without
 * a valid token learns nothing (not even whether its query is valid). GraphiQL's HTML page is
 * static and served by an earlier hook; it can do nothing without a token either.
 */
export function useBearerAuth(tokens: TokenVerifier, principals: WeakMap<Request, Principal>): Plugin {
  return {
    async onRequest({ request, endResponse, fetchAPI }) {
      const principal = await tokens.verify(bearerToken(request.headers.get('authorization')));
      if (principal) {
        principals.set(request, principal);
        return;
      }
      const error = appError('UNAUTHENTICATED', 'a valid bearer token is required');
      endResponse(
        new fetchAPI.Response(
          JSON.stringify({ errors: [{ message: error.message, extensions: { code: 'UNAUTHENTICATED' } }] }),
          {
            status: 401,
            headers: {
              'content-type': 'application/graphql-response+json; charset=utf-8',
              'www-authenticate': 'Bearer',
            },
          },
        ),
      );
    },
  };
}
