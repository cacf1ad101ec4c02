import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { type DocumentNode, print } from 'graphql';
import type { Database } from '../../src/db/client.js';
import { parseEnv } from '../../src/env.js';
import { createLogger, type Logger } from '../../src/lib/logger.js';
import { generateToken, TokenVerifier } from '../../src/modules/auth/tokens.js';
import { type App, createApp } from '../../src/server/app.js';
import type { AppDeps } from '../../src/wiring.js';
import { createTestDatabase } from './db.js';
import { dispose } from './leftovers.js';

export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; field?: string; [k: string]: unknown } }[];
}

export interface TestApp {
  app: App;
  url: string;
  token: string;
  db: Database;
  deps: AppDeps;
  /** The data plane's base URL when started with `dataPlane: true`, else null. */
  proxyUrl: string | null;
  /** POSTs a GraphQL operation with the admin token (or `token`, or none when null). */
  gql<T, V>(
    document: TypedDocumentNode<T, V> | DocumentNode | string,
    variables?: V,
    opts?: { token?: string | null },
  ): Promise<GraphQLResponse<T> & { status: number }>;
  /** fetch() against the app with the admin token unless headers say otherwise. */
  fetch(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
}

/**
 * A real server on 127.0.0.1:0 over a database of its own; stopped after the test file. The
 * health monitor is off unless `env` turns it on, so scheduled checks never race a test's asserts.
 */
export async function startTestApp(
  opts: {
    env?: Record<string, string>;
    db?: Database;
    /** Also start the data plane, on a free port of 127.0.0.1. */
    dataPlane?: boolean;
    /** Instead of a silent logger (to read the access log, for instance). */
    log?: Logger;
  } = {},
): Promise<TestApp> {
  const token = generateToken();
  const env = parseEnv({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    ADMIN_TOKEN: token,
    HEALTH_MONITOR: 'off',
    ...opts.env,
  });
  const db = opts.db ?? (await createTestDatabase());
  const deps: AppDeps = {
    env,
    log: opts.log ?? createLogger(env.LOG_LEVEL),
    database: db,
    tokens: new TokenVerifier(db.prisma, token),
  };
  const app = dispose(createApp(deps), (a) => a.stop());
  const url = await app.start(0, '127.0.0.1', opts.dataPlane ? 0 : undefined);
  const authFetch: TestApp['fetch'] = (path, init = {}) => {
    const { token: given, ...rest } = init;
    const headers = new Headers(rest.headers);
    const bearer = given === undefined ? token : given;
    if (bearer !== null && !headers.has('authorization')) headers.set('authorization', `Bearer ${bearer}`);
    return fetch(`${url}${path}`, { ...rest, headers });
  };
  return {
    app,
    url,
    token,
    db,
    deps,
    proxyUrl: app.dataPlane.url,
    fetch: authFetch,
    async gql(document, variables, gqlOpts = {}) {
      const query = typeof document === 'string' ? document : print(document);
      const res = await authFetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query, variables }),
        token: gqlOpts.token,
      });
      return { status: res.status, ...((await res.json()) as GraphQLResponse<never>) };
    },
  };
}

/** The `extensions.code` of every error, for compact assertions. */
export function codes(res: { errors?: readonly { extensions?: { code?: string } }[] | null }): (string | undefined)[] {
  return (res.errors ?? []).map((e) => e.extensions?.code);
}
