import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { GraphQLError } from 'graphql';
import { createYoga, maskError as defaultMaskError } from 'graphql-yoga';
import { isDatabaseUnavailable } from '../../db/errors.js';
import type { Context } from '../../graphql/context.js';
import { appError } from '../../lib/errors.js';
import type { Principal } from '../../modules/auth/index.js';
import type { Services } from '../../modules/index.js';
import { NodeCallBudget } from '../../modules/nodes/index.js';
import { schema } from '../../schema.js';
import type { AppDeps } from '../../wiring.js';
import { useBearerAuth } from './auth.js';
import { useNodeCallCost } from './node-call-cost.js';
import { type GenerationCache, useReadCache } from './read-cache.js';

/** What a graphql-ws connection adds to the initial context (HTTP requests carry a Request). */
export interface SocketContext {
  principal?: Principal;
}

export function createGraphQL(deps: AppDeps, services: Services, readCache: GenerationCache) {
  const principals = new WeakMap<Request, Principal>();
  const { CORS_ORIGINS: origins, EXPOSE_ERRORS } = deps.env;
  return createYoga<SocketContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // The app serves GraphiQL itself, compressed and cached (src/server/http/graphiql.ts).
    graphiql: false,
    // No CORS headers unless CORS_ORIGINS lists origins (exact matches); never credentials:
    // browsers send the bearer token in a header, which CORS does not need credentials for.
    cors: (request) => {
      const origin = request.headers.get('origin');
      if (!origin || !origins?.includes(origin)) return false;
      return {
        origin,
        credentials: false,
        methods: ['GET', 'POST'],
        allowedHeaders: ['authorization', 'content-type', 'accept'],
      };
    },
    plugins: [
      useBearerAuth(services.auth, principals),
      // Bounds on what one operation may ask for (GraphQL Armor), so a single request cannot
      // fan out into thousands of database queries or node calls. Also apply over graphql-ws.
      maxTokensPlugin({ n: 2_000 }),
      maxDepthPlugin({ n: 10, ignoreIntrospection: true, flattenFragments: true }),
      maxAliasesPlugin({ n: 15 }),
      costLimitPlugin({ maxCost: 5_000, ignoreIntrospection: true }),
      // Node calls cost what they fan out to (Armor cannot weigh a field): see node-call-cost.ts.
      useNodeCallCost(deps.env.NODE_CALLS_PER_OPERATION),
      // Last: a cached answer skips execution only, after auth and every limit above.
      useReadCache(readCache, deps.env.RESPONSE_CACHE_TTL_MS),
    ],
    context: ({ request, principal }) => {
      const who = principal ?? (request ? principals.get(request) : undefined);
      // Unreachable through the server (requests are authenticated first); a guard for new paths.
      if (!who) throw appError('UNAUTHENTICATED', 'a valid bearer token is required');
      return createContext(deps, services, who, request?.signal);
    },
    // Masked in every mode: an unexpected error's message, stack and Prisma's invocation text stay
    // in our log. EXPOSE_ERRORS=true shows them, for local debugging only.
    maskedErrors: {
      isDev: EXPOSE_ERRORS === 'true',
      maskError(error, message, isDev) {
        // Yoga's own request errors (a malformed JSON body) carry the parser's message, which
        // quotes the body, as `extensions.originalError`: the fixed message is enough. The request
        // is malformed whatever the Accept header, so it is a 400 (`spec` would make it 200 for
        // application/json).
        if (!isDev && error instanceof GraphQLError && error.extensions.originalError !== undefined) {
          const { originalError: _dropped, http, ...extensions } = error.extensions as Record<string, unknown>;
          const status = (http as { status?: number } | undefined)?.status ?? 400;
          return new GraphQLError(error.message, { extensions: { ...extensions, http: { status } } });
        }
        // The database going away is not a bug: the caller is told to try again (PROTOCOLS.md).
        if (isDatabaseUnavailable(error instanceof GraphQLError ? error.originalError : error)) {
          return appError('UNAVAILABLE', 'the database is unavailable right now; try again shortly');
        }
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

/** One operation's context: the modules' services, who asks, and its own node-call budget. */
function createContext(deps: AppDeps, services: Services, principal: Principal, signal?: AbortSignal): Context {
  const { NODE_CALLS_PER_OPERATION: calls, NODE_BYTES_PER_OPERATION: bytes } = deps.env;
  return {
    ...services,
    db: deps.database.prisma,
    principal,
    actor: { id: principal.id, name: principal.name },
    log: deps.log,
    signal,
    nodeBudget: new NodeCallBudget(calls, bytes),
  };
}
