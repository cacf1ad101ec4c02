import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { createYoga, maskError as defaultMaskError } from 'graphql-yoga';
import { type AppDeps, createContext, type Services } from '../context.js';
import { appError } from '../lib/errors.js';
import type { Principal } from '../modules/auth/tokens.js';
import { useBearerAuth } from '../modules/auth/yoga.js';
import { schema } from '../schema.js';

/** What a graphql-ws connection adds to the initial context (HTTP requests carry a Request). */
export interface SocketContext {
  principal?: Principal;
}

export function createGraphQL(deps: AppDeps, services: Services) {
  const principals = new WeakMap<Request, Principal>();
  const production = deps.env.NODE_ENV === 'production';
  return createYoga<SocketContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // GraphiQL with its JS and CSS inlined: works on machines without internet access. The
    // bundle is large, so it is loaded on the first page view rather than at start-up.
    renderGraphiQL: async (options) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options),
    graphiql: {
      title: 'StreamGate',
      headers: JSON.stringify({ Authorization: 'Bearer <your token>' }, null, 2),
      subscriptionsProtocol: 'WS',
    },
    plugins: [
      useBearerAuth(deps.tokens, principals),
      // Bounds on what one operation may ask for (GraphQL Armor), so a single request cannot
      // fan out into thousands of database queries or node calls. Also apply over graphql-ws.
      maxTokensPlugin({ n: 2_000 }),
      maxDepthPlugin({ n: 10, ignoreIntrospection: true, flattenFragments: true }),
      maxAliasesPlugin({ n: 15 }),
      costLimitPlugin({ maxCost: 5_000, ignoreIntrospection: true }),
    ],
    context: ({ request, principal }) => {
      const who = principal ?? (request ? principals.get(request) : undefined);
      // Unreachable through the server (requests are authenticated first); a guard for new paths.
      if (!who) throw appError('UNAUTHENTICATED', 'a valid bearer token is required');
      return createContext(deps, services, who, request?.signal);
    },
    maskedErrors: {
      isDev: !production,
      maskError(error, message, isDev) {
        const masked = defaultMaskError(error, message, isDev);
        if (masked !== error) deps.log.error({ err: error }, 'unexpected error in a GraphQL operation');
        return masked;
      },
    },
    logging: {
      debug: (...args) => deps.log.debug({ yoga: args }),
      info: (...args) => deps.log.info({ yoga: args }),
      warn: (...args) => deps.log.warn({ yoga: args }),
      error: (...args) => deps.log.error({ yoga: args }),
    },
  });
}

export type GraphQLServer = ReturnType<typeof createGraphQL>;
