import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { TestApp } from './app.js';
import { dispose } from './leftovers.js';

/** A graphql-ws client of the test app with its admin token, no retries, disposed after the file. */
export function graphqlWsClient(app: Pick<TestApp, 'url' | 'token'>): Client {
  const client = createClient({
    url: `${app.url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: { authorization: `Bearer ${app.token}` },
  });
  dispose(client, (c) => c.dispose());
  return client;
}
