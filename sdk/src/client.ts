import { type DocumentNode, type OperationDefinitionNode, print } from 'graphql';
import { createClient, type Client as WsClient } from 'graphql-ws';
import { type GraphQLErrorShape, StreamGateError } from './errors.js';
import type { EventLoggedSubscription, EventLoggedSubscriptionVariables } from './generated/sdk.js';
import { EventLoggedDocument, getSdk, type Requester } from './generated/sdk.js';
import { createRelay, type Relay } from './relay.js';

export interface StreamGateClientOptions {
  /** The server's base URL (`http://localhost:4000`); the client adds `/graphql`. */
  url: string;
  /** An API token (`streamgate token create`, or `createApiToken`); sent as `Authorization: Bearer …`. */
  token: string;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /**
   * A WebSocket constructor for subscriptions and the relay: default the global `WebSocket`
   * (browsers, Node ≥ 22); on Node 20 pass the `ws` package's.
   */
  webSocketImpl?: unknown;
  /** Subscriptions reconnect after a lost connection: how often (default: forever) and how fast. */
  reconnect?: { attempts?: number; minDelayMs?: number; maxDelayMs?: number };
}

/** Per call: cancel it, or add headers. */
export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

type GeneratedSdk = ReturnType<typeof getSdk<RequestOptions>>;

/**
 * One typed function per operation. Subscriptions return AsyncIterableIterators (the generated
 * signature says AsyncIterable): `next()` and `return()` can be called directly.
 */
export type StreamGateSdk = {
  [K in keyof GeneratedSdk]: GeneratedSdk[K] extends (...args: infer A) => AsyncIterable<infer R>
    ? (...args: A) => AsyncIterableIterator<R>
    : GeneratedSdk[K];
};

export interface StreamGateClient extends Omit<StreamGateSdk, 'sessions'> {
  /** Any query or mutation of your own (a typed document works too); resolves to its `data`. */
  request<Data = Record<string, unknown>, Variables = Record<string, unknown>>(
    document: DocumentNode | string,
    variables?: Variables,
    options?: RequestOptions,
  ): Promise<Data>;
  /** Any subscription of your own: an AsyncIterable of its `data`, ended by `return()` (or `break`). */
  subscribe<Data = Record<string, unknown>, Variables = Record<string, unknown>>(
    document: DocumentNode | string,
    variables?: Variables,
  ): AsyncIterableIterator<Data>;
  /**
   * The `sessions` query, which also carries the raw relay of live sessions (docs/relay.md):
   * `sessions.publish(…)` sends frames, `sessions.watch(…)` receives them as an operator.
   */
  sessions: StreamGateSdk['sessions'] & Relay;
  /** Closes the subscriptions' connection (HTTP calls need no closing). */
  close(): Promise<void>;
}

/**
 * The StreamGate SDK over two transports: queries and mutations over HTTP (`fetch`), subscriptions
 * over graphql-ws, which reconnects with backoff and resubscribes; `eventLogged` resumes from the
 * last entry it delivered, so a reconnect loses nothing that was stored. No Node-only imports:
 * it runs in browsers and in Node ≥ 20.
 */
export function createStreamGateClient(options: StreamGateClientOptions): StreamGateClient {
  const base = options.url.replace(/\/+$/, '');
  const endpoint = `${base}/graphql`;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const authorization = `Bearer ${options.token}`;
  let ws: WsClient | undefined;

  const webSocketImpl = () => {
    const impl = options.webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket;
    if (!impl) {
      throw new StreamGateError(
        'no WebSocket implementation: pass `webSocketImpl` (on Node 20: `import WebSocket from "ws"`)',
        { code: 'NETWORK' },
      );
    }
    return impl;
  };

  const subscriptions = (): WsClient => {
    ws ??= createClient({
      url: endpoint.replace(/^http/, 'ws'),
      webSocketImpl: webSocketImpl(),
      connectionParams: { authorization },
      lazy: true,
      retryAttempts: options.reconnect?.attempts ?? Number.POSITIVE_INFINITY,
      retryWait: (retries) => sleep(backoff(retries, options.reconnect)),
      // A refused token stays refused: retrying with it would only hammer the server.
      shouldRetry: (closeOrError) => closeCodeOf(closeOrError) !== 4403,
    });
    return ws;
  };

  async function request<Data>(
    document: DocumentNode | string,
    variables?: unknown,
    requestOptions: RequestOptions = {},
  ): Promise<Data> {
    let res: Response;
    try {
      res = await fetchImpl(endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          authorization,
          ...requestOptions.headers,
        },
        body: JSON.stringify({ query: queryText(document), variables }),
        signal: requestOptions.signal,
      });
    } catch (cause) {
      throw new StreamGateError(`cannot reach ${endpoint}: ${messageOf(cause)}`, { code: 'NETWORK', cause });
    }
    let body: { data?: Data | null; errors?: GraphQLErrorShape[] };
    try {
      body = (await res.json()) as typeof body;
    } catch (cause) {
      throw new StreamGateError(`${endpoint} answered HTTP ${res.status} without a GraphQL body`, {
        code: 'BAD_RESPONSE',
        status: res.status,
        cause,
      });
    }
    if (body.errors?.length) throw StreamGateError.fromErrors(body.errors, body.data, res.status);
    if (body.data == null) {
      throw new StreamGateError(`${endpoint} answered HTTP ${res.status} with no data`, {
        code: 'BAD_RESPONSE',
        status: res.status,
      });
    }
    return body.data;
  }

  function subscribe<Data>(document: DocumentNode | string, variables?: unknown): AsyncIterableIterator<Data> {
    const payload = { query: queryText(document), variables: (variables ?? {}) as Record<string, unknown> };
    return mapResults<Data>(subscriptions().iterate<Data>(payload));
  }

  /**
   * `eventLogged`, resumable: graphql-ws sends the same payload again when it resubscribes after a
   * reconnect, so the payload carries the cursor of the last entry delivered (`after`), and the
   * server replays what was stored since before it goes live again.
   */
  function eventLogged(
    variables: EventLoggedSubscriptionVariables = {},
  ): AsyncIterableIterator<EventLoggedSubscription> {
    const payload = { query: queryText(EventLoggedDocument), variables: { ...variables } as Record<string, unknown> };
    const results = mapResults<EventLoggedSubscription>(subscriptions().iterate<EventLoggedSubscription>(payload));
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        const result = await results.next();
        if (!result.done) payload.variables.after = result.value.eventLogged.cursor;
        return result;
      },
      return: () => results.return?.() ?? Promise.resolve({ value: undefined, done: true }),
    };
  }

  const requester: Requester<RequestOptions> = <R, V>(
    document: DocumentNode,
    variables?: V,
    requestOptions?: RequestOptions,
  ) => (isSubscription(document) ? subscribe<R>(document, variables) : request<R>(document, variables, requestOptions));

  const sdk = getSdk(requester) as StreamGateSdk;
  return {
    ...sdk,
    eventLogged,
    request,
    subscribe,
    sessions: Object.assign(sdk.sessions, createRelay({ baseUrl: base, token: options.token, webSocketImpl })),
    async close() {
      await ws?.dispose();
      ws = undefined;
    },
  };
}

/**
 * Subscription results as their `data`; an answer with errors ends the iteration with a
 * StreamGateError, and so does a connection the server refused (4403: the token).
 */
function mapResults<Data>(
  results: AsyncIterableIterator<{ data?: Data | null; errors?: readonly GraphQLErrorShape[] }>,
): AsyncIterableIterator<Data> {
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      let result: IteratorResult<{ data?: Data | null; errors?: readonly GraphQLErrorShape[] }>;
      try {
        result = await results.next();
      } catch (error) {
        throw subscriptionError(error);
      }
      if (result.done) return { value: undefined, done: true };
      const { data, errors } = result.value;
      if (errors?.length) {
        await results.return?.();
        throw StreamGateError.fromErrors([...errors], data);
      }
      return { value: data as Data, done: false };
    },
    async return() {
      await results.return?.();
      return { value: undefined, done: true };
    },
  };
}

/** What graphql-ws ends a subscription with, as a StreamGateError. */
function subscriptionError(error: unknown): StreamGateError {
  if (Array.isArray(error)) return StreamGateError.fromErrors(error as GraphQLErrorShape[]);
  const code = closeCodeOf(error);
  if (code === 4403) {
    return new StreamGateError('the server refused the token (graphql-ws closed with 4403)', {
      code: 'UNAUTHENTICATED',
      cause: error,
    });
  }
  if (code !== undefined) {
    const reason = (error as { reason?: string }).reason;
    return new StreamGateError(`the subscription connection closed (${code}${reason ? ` ${reason}` : ''})`, {
      code: code === 1013 ? 'UNAVAILABLE' : 'NETWORK',
      cause: error,
    });
  }
  return new StreamGateError(`subscription failed: ${messageOf(error)}`, { code: 'NETWORK', cause: error });
}

function closeCodeOf(value: unknown): number | undefined {
  const code = (value as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

const printed = new WeakMap<DocumentNode, string>();

/** A document's text, printed once per document. */
function queryText(document: DocumentNode | string): string {
  if (typeof document === 'string') return document;
  let text = printed.get(document);
  if (text === undefined) {
    text = print(document);
    printed.set(document, text);
  }
  return text;
}

function isSubscription(document: DocumentNode): boolean {
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
  return operation?.operation === 'subscription';
}

/** Exponential backoff with jitter: min·2ⁿ, at most max, each wait between half and all of it. */
function backoff(retries: number, bounds: StreamGateClientOptions['reconnect'] = {}): number {
  const min = bounds.minDelayMs ?? 500;
  const max = bounds.maxDelayMs ?? 30_000;
  const ceiling = Math.min(max, min * 2 ** Math.min(retries, 16));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
