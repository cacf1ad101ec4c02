import { isIPv6 } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { Agent, type Dispatcher, errors } from 'undici';

/**
 * Typed HTTP clients for the nodes' own APIs. A client is built from a small `{ host, apiPort }`
 * value, never from a database row, so a changed host takes effect on the very next call.
 */
export interface NodeEndpoint {
  host: string;
  apiPort: number;
}

export interface PingOutcome {
  ok: boolean;
  latencyMs: number;
  statusCode?: number;
  /** Why the ping failed; absent when it succeeded. */
  error?: string;
}

export interface ProxyRequest {
  method: string;
  /** Path and query exactly as they go on the wire (`/a%2Fb?x=1&x=2`). */
  path: string;
  headers: Record<string, string | string[]>;
  body: Readable | null;
  signal?: AbortSignal;
  /** Longest wait for the response headers, and for each chunk of the body. */
  timeoutMs: number;
}

/** What the node answered, before its body is streamed into the returned writable. */
export type ProxyResponseHead = { statusCode: number; headers: Record<string, string | string[] | undefined> };

export const PING_TIMEOUT_MS = 5_000;

/** One keep-alive pool per node origin, shared by every client and the passthrough. */
export const nodeAgent = new Agent({
  keepAliveTimeout: 10_000,
  connect: { timeout: 5_000 },
  connections: 256,
});

/** A failed call to a node's API (unreachable, timed out, or a non-2xx answer). */
export class NodeApiError extends Error {
  override name = 'NodeApiError';
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

export class NodeApiClient {
  readonly origin: string;

  constructor(
    endpoint: NodeEndpoint,
    protected readonly dispatcher: Dispatcher = nodeAgent,
  ) {
    const host = isIPv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host;
    this.origin = `http://${host}:${endpoint.apiPort}`;
  }

  /** `GET /api/ping`: a failure is a result with the reason, never an exception. */
  async ping(timeoutMs = PING_TIMEOUT_MS): Promise<PingOutcome> {
    const started = performance.now();
    const latency = () => Math.round((performance.now() - started) * 100) / 100;
    try {
      const { statusCode, body } = await this.dispatcher.request({
        origin: this.origin,
        path: '/api/ping',
        method: 'GET',
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await body.dump();
      const ok = statusCode >= 200 && statusCode < 300;
      return { ok, latencyMs: latency(), statusCode, ...(ok ? {} : { error: `HTTP ${statusCode}` }) };
    } catch (error) {
      return { ok: false, latencyMs: latency(), error: describeNetworkError(error, timeoutMs) };
    }
  }

  /**
   * Streams a request to the node and its answer back: `onResponse` gets the status and headers
   * and returns where the body should go. Nothing is buffered in either direction.
   */
  async proxyRequest(request: ProxyRequest, onResponse: (head: ProxyResponseHead) => Writable): Promise<void> {
    await this.dispatcher.stream(
      {
        origin: this.origin,
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body,
        signal: request.signal,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
      },
      ({ statusCode, headers }) => onResponse({ statusCode, headers }),
    );
  }

  /** A JSON call for the typed clients; throws NodeApiError with a readable reason. */
  protected async json<T = unknown>(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<T> {
    let response: Dispatcher.ResponseData;
    try {
      response = await this.dispatcher.request({
        origin: this.origin,
        path,
        method,
        headers:
          body === undefined
            ? { accept: 'application/json' }
            : { accept: 'application/json', 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: PING_TIMEOUT_MS,
        bodyTimeout: PING_TIMEOUT_MS,
      });
    } catch (error) {
      throw new NodeApiError(`${method} ${path}: ${describeNetworkError(error, PING_TIMEOUT_MS)}`);
    }
    const text = await response.body.text();
    if (response.statusCode < 200 || response.statusCode >= 300) {
      throw new NodeApiError(`${method} ${path}: node answered HTTP ${response.statusCode}`, response.statusCode);
    }
    if (text === '') return null as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new NodeApiError(`${method} ${path}: node answered with invalid JSON`, response.statusCode);
    }
  }
}

export type NetworkFailure = 'timeout' | 'unreachable';

/** Timeouts become 504s in the passthrough, everything else 502. */
export function classifyNetworkError(error: unknown): NetworkFailure {
  if (
    error instanceof errors.ConnectTimeoutError ||
    error instanceof errors.HeadersTimeoutError ||
    error instanceof errors.BodyTimeoutError ||
    (error instanceof DOMException && error.name === 'TimeoutError')
  ) {
    return 'timeout';
  }
  return 'unreachable';
}

export function describeNetworkError(error: unknown, timeoutMs: number): string {
  if (classifyNetworkError(error) === 'timeout') return `no answer within ${timeoutMs} ms`;
  const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
