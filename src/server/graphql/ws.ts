import { GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { type AuthService, bearerToken, type Principal } from '../../modules/auth/index.js';
import type { GraphQLServer } from './yoga.js';

/**
 * graphql-ws on /graphql. Each operation is built with `yoga.getEnveloped`, so it runs through
 * exactly the plugins (auth, masking, limits) an HTTP request does. A bad or missing token in
 * `connection_init` closes the socket with 4403 Forbidden (graphql-ws' own code).
 */
export function createGraphQLWebSocket(auth: AuthService, yoga: GraphQLServer) {
  // GraphQL messages are small; ws' default of 100 MiB per frame would let any peer, before it
  // has even authenticated, make us buffer that much.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const server = useServer<Record<string, unknown>, { principal?: Principal; unwatch?: () => void }>(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      async onConnect(ctx) {
        const header = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        const token = bearerToken(typeof header === 'string' ? header : null);
        const result = await auth.authenticate(token, ctx.extra.request.socket.remoteAddress);
        // 1013 Try Again Later: not a verdict on the token, and no internals in the reason.
        if (result.kind === 'unavailable') ctx.extra.socket.close(1013, 'cannot check the token right now');
        if (result.kind === 'limited') ctx.extra.socket.close(1013, 'too many invalid tokens; try again later');
        if (result.kind !== 'principal') return false;
        ctx.extra.principal = result.principal;
        // A revoked or expired token's socket is closed as a bad token would have been refused.
        ctx.extra.unwatch = auth.watch(result.principal, () =>
          ctx.extra.socket.close(4403, 'Forbidden: token revoked'),
        );
        return true;
      },
      onClose(ctx) {
        ctx.extra.unwatch?.();
      },
      async onSubscribe(ctx, _id, params) {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          principal: ctx.extra.principal,
          params,
        });
        let document: ReturnType<typeof parse>;
        try {
          document = parse(params.query);
        } catch (error) {
          // A syntax error or a parse limit is the client's: answer it as an error message
          // instead of letting graphql-ws close the socket with 4500.
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const args = {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        return errors.length ? errors : args;
      },
    },
    wss,
  );
  return {
    wss,
    /** Closes every socket with 1001 Going Away (graphql-ws' dispose) and stops accepting. */
    close: () => server.dispose(),
  };
}

type Enveloped = ReturnType<GraphQLServer['getEnveloped']>;
