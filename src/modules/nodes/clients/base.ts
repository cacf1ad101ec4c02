import { isIPv6 } from 'node:net';
import { type Dispatcher, errors } from 'undici';
import { describeError, errorCode } from '../../../lib/errors.js';

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

export const PING_TIMEOUT_MS = 5_000;
/** A ping's answer is its status; a longer body than this is not read to the end. */
const PING_MAX_BODY_BYTES = 64 * 1024;
/** Typed API calls (streams, traffic): whole call, and largest answer read. */
export const NODE_API_TIMEOUT_MS = 10_000;
export const NODE_API_MAX_BYTES = 4 * 1024 * 1024;

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

/** `http://host:apiPort` of a node's API (IPv6 hosts bracketed). */
export function nodeOrigin(endpoint: NodeEndpoint): string {
  const host = isIPv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host;
  return `http://${host}:${endpoint.apiPort}`;
}

export class NodeApiClient {
  readonly origin: string;

  constructor(
    endpoint: NodeEndpoint,
    protected readonly dispatcher: Dispatcher,
    /** Bounds answers by what is left of an operation's budget (NodeCallBudget), when there is one. */
    protected readonly meter?: AnswerMeter,
  ) {
    this.origin = nodeOrigin(endpoint);
  }

  /**
   * `GET /api/ping`: a failure is a result with the reason, never an exception. A caller that
   * passes `signal` (the health monitor: its own timeout, and shutdown) bounds the whole call with it.
   */
  async ping(timeoutMs = PING_TIMEOUT_MS, signal?: AbortSignal): Promise<PingOutcome> {
    const started = performance.now();
    const latency = () => Math.round((performance.now() - started) * 100) / 100;
    try {
      const statusCode = await this.statusOf('/api/ping', timeoutMs, signal ?? AbortSignal.timeout(timeoutMs));
      const ok = statusCode >= 200 && statusCode < 300;
      return { ok, latencyMs: latency(), statusCode, ...(ok ? {} : { error: `HTTP ${statusCode}` }) };
    } catch (error) {
      return { ok: false, latencyMs: latency(), error: describeNetworkError(error, timeoutMs) };
    }
  }

  /**
   * `GET path` for the status code alone; the body is read and dropped (up to 64 KiB, then the
   * connection is cut). A bare dispatch handler: the health monitor pings thousands of nodes, and
   * `request()` with its body stream costs about a third more CPU per call (bench/health.ts).
   */
  private statusOf(path: string, timeoutMs: number, signal: AbortSignal): Promise<number> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let controller: Dispatcher.DispatchController | undefined;
      let statusCode = 0;
      let bodyBytes = 0;
      const onAbort = () => controller?.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (error?: Error) => {
        signal.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(statusCode);
      };
      this.dispatcher.dispatch(
        { origin: this.origin, path, method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
        {
          onRequestStart(started) {
            controller = started;
            if (signal.aborted) started.abort(signal.reason);
          },
          onResponseStart(_, status) {
            if (status >= 200) statusCode = status; // informational answers (1xx) are not the answer
          },
          onResponseData(started, chunk) {
            bodyBytes += chunk.length;
            if (bodyBytes <= PING_MAX_BODY_BYTES) return;
            settle(); // the status is known; what follows is not worth reading
            started.abort(new errors.RequestAbortedError());
          },
          onResponseEnd: () => settle(),
          onResponseError: (_, error) => settle(error),
        },
      );
    });
  }

  /**
   * A JSON call for the typed clients; throws NodeApiError with a readable reason (and the node's
   * status and message when it answered). Bounded in time and size: a node is not ours to trust.
   */
  protected async json<T = unknown>(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<T> {
    let read: Awaited<ReturnType<typeof readLimited>>;
    let statusCode: number;
    try {
      const response = await this.dispatcher.request({
        origin: this.origin,
        path,
        method,
        headers:
          body === undefined
            ? { accept: 'application/json' }
            : { accept: 'application/json', 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(NODE_API_TIMEOUT_MS),
      });
      statusCode = response.statusCode;
      read = await readLimited(response.body, NODE_API_MAX_BYTES, this.meter);
    } catch (error) {
      throw new NodeApiError(`${method} ${path}: ${describeNetworkError(error, NODE_API_TIMEOUT_MS)}`);
    }
    // Past what the operation had left: its budget's error; past a node's own bound: the node's.
    if ('overBudget' in read) throw read.overBudget.overflow();
    if ('tooLarge' in read) throw new NodeApiError(`${method} ${path}: answer larger than ${NODE_API_MAX_BYTES} bytes`);
    const { text } = read;
    if (statusCode < 200 || statusCode >= 300) {
      const said = text.trim().slice(0, 500);
      throw new NodeApiError(
        `${method} ${path}: node answered HTTP ${statusCode}${said ? `: ${said}` : ''}`,
        statusCode,
      );
    }
    if (text === '') return null as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new NodeApiError(`${method} ${path}: node answered with invalid JSON`, statusCode);
    }
  }
}

/**
 * The whole body as text; the body is dropped as soon as it passes `limit` bytes, or as soon as
 * the meter (the operation's budget, shared by its concurrent calls) has no more bytes for it.
 */
async function readLimited(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  limit: number,
  meter: AnswerMeter | undefined,
): Promise<{ text: string } | { tooLarge: true } | { overBudget: AnswerMeter }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return { tooLarge: true };
    }
    if (meter && !meter.consume(chunk.length)) {
      body.destroy();
      return { overBudget: meter };
    }
    chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8') };
}

/** What bounds the bytes of all answers of one operation together (its NodeCallBudget). */
export interface AnswerMeter {
  /** Counts bytes as they arrive; false when they do not fit in what is left. */
  consume(bytes: number): boolean;
  overflow(): Error;
}

export type NetworkFailure = 'timeout' | 'unreachable' | 'forbidden';

/** Timeouts become 504s in the passthrough, the outbound policy's refusals 403, everything else 502. */
export function classifyNetworkError(error: unknown): NetworkFailure {
  if (errorCode(error) === 'EOUTBOUNDDENIED') return 'forbidden';
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
  return describeError(error);
}
