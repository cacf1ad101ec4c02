import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { type Dispatcher, errors } from 'undici';

/**
 * The one forwarding core of StreamGate: the `/proxy/*` passthrough and the data plane both send
 * a caller's request upstream and its answer back through `forward()`, with the header rules below.
 */

export interface ForwardRequest {
  /** `http(s)://host:port` of the upstream. */
  origin: string;
  method: string;
  /** Path and query exactly as they go on the wire (`/a%2Fb?x=1&x=2`). */
  path: string;
  /** Flat `[name, value, name, value, …]` like node:http's `rawHeaders`: order, case and repeats kept. */
  headers: string[];
  body: Readable | null;
  /** Longest wait for the response headers, and for each chunk of the body. */
  timeoutMs: number;
}

/** Counts what went back to the caller (for access logs); optional. */
export interface ForwardMeter {
  bytes: number;
}

/**
 * Streams a request upstream and the answer into `res`: `responseHeaders` gets the upstream's raw
 * headers (flat pairs, original case) and returns those to write. Body chunks go through as they
 * arrive, with backpressure in both directions; nothing is buffered. Resolves once the answer is
 * complete; rejects with undici's error when the call fails, before or after the head was written
 * (the caller decides what is left to do). `res` closing early, i.e. the caller going away,
 * aborts the call at any stage, including while the upstream has not answered yet.
 *
 * A bare undici dispatch handler rather than `dispatcher.stream()`: this is the hot path of both
 * surfaces, and stream() needs an AbortController per request (plus its listeners), an
 * AsyncResource and finished() on top; it also hides the raw headers and reason phrase
 * (bench/passthrough.ts).
 */
export function forward(
  dispatcher: Dispatcher,
  request: ForwardRequest,
  res: ServerResponse,
  responseHeaders: (rawHeaders: string[]) => string[],
  meter?: ForwardMeter,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    const callerLeft = () => {
      if (!settled) controller?.abort(new errors.RequestAbortedError());
    };
    const resume = () => controller?.resume();
    const settle = (error?: Error) => {
      settled = true;
      res.off('close', callerLeft);
      res.off('drain', resume);
      if (error) reject(error);
      else resolve();
    };
    res.once('close', callerLeft);
    dispatcher.dispatch(
      {
        origin: request.origin,
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
      },
      {
        onRequestStart(started) {
          controller = started;
          if (res.destroyed) started.abort(new errors.RequestAbortedError());
        },
        onResponseStart(started, statusCode, headers, statusMessage) {
          if (statusCode < 200) return; // informational (103 Early Hints…): only the final answer goes back
          const head = responseHeaders(flatHeaders(started.rawHeaders, headers));
          if (statusMessage) res.writeHead(statusCode, statusMessage, head);
          else res.writeHead(statusCode, head);
          res.on('drain', resume);
        },
        onResponseData(started, chunk) {
          if (meter) meter.bytes += chunk.length;
          // Stop reading from the upstream until the caller has taken what is queued.
          if (!res.write(chunk)) started.pause();
        },
        onResponseEnd() {
          res.end();
          settle();
        },
        onResponseError: (_, error) => settle(error),
      },
    );
  });
}

/** Whether a request carries a body to forward (an empty `Content-Length: 0` one does not). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection; `expect` is answered by us.
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** How a surface treats headers in both directions. */
export interface ForwardingProfile {
  request: RequestHeaderRules;
  /** The upstream's raw headers (flat pairs) → those written to the caller. */
  responseHeaders(raw: string[]): string[];
}

/**
 * Towards a node's own API (the passthrough, and the data plane's routes made from nodes): our
 * credentials never reach the node (`Authorization` and cookies are StreamGate's), and the node's
 * answer, served on our origin, is not trusted: no cookies for our origin, no content sniffing,
 * and a sandbox CSP, so a page a node returns cannot script against StreamGate in an operator's
 * browser.
 */
export const NODE_API: ForwardingProfile = {
  request: { dropped: new Set(['authorization', 'cookie', 'host', 'expect']), forwardedFor: 'append' },
  responseHeaders(raw) {
    const headers = withoutHopByHop(raw, UNTRUSTED);
    headers.push('x-content-type-options', 'nosniff', 'content-security-policy', 'sandbox');
    return headers;
  },
};
const UNTRUSTED = new Set(['set-cookie', 'x-content-type-options', 'content-security-policy']);

/**
 * Applications' traffic through the data plane: its own headers (cookies, `Authorization`) are
 * the application's and go through both ways; `Host` becomes the upstream's (the client's is in
 * `X-Forwarded-Host`), and an anonymous client cannot forge the `X-Forwarded-For` chain an
 * upstream may trust.
 */
export const APPLICATION_TRAFFIC: ForwardingProfile = {
  request: { dropped: new Set(['host', 'expect']), forwardedFor: 'replace' },
  responseHeaders: (raw) => withoutHopByHop(raw),
};

export interface RequestHeaderRules {
  /** Lower-case names never forwarded (hop-by-hop ones always are dropped). */
  dropped: ReadonlySet<string>;
  /**
   * `append`: the caller is added to any `X-Forwarded-For` chain it sent (an authenticated admin's
   * tooling); `replace`: the chain is only the caller (anonymous traffic cannot forge one).
   */
  forwardedFor: 'append' | 'replace';
}

/**
 * The caller's headers as they came (order, case, repeats), minus hop-by-hop ones (including those
 * its `Connection` header names), the rule's `dropped` ones and every `X-Forwarded-*` it sent, plus
 * our own `X-Forwarded-For`, `-Proto` and `-Host`.
 */
export function forwardedRequestHeaders(req: IncomingMessage, rules: RequestHeaderRules): string[] {
  const raw = req.rawHeaders;
  const listedInConnection = connectionTokens(req.headers.connection);
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || rules.dropped.has(lower) || lower.startsWith('x-forwarded-')) continue;
    if (listedInConnection?.has(lower)) continue;
    headers.push(name, raw[i + 1] as string);
  }
  const client = req.socket.remoteAddress ?? '';
  const prior = rules.forwardedFor === 'append' ? req.headers['x-forwarded-for'] : undefined;
  headers.push('x-forwarded-for', prior ? `${prior}, ${client}` : client, 'x-forwarded-proto', 'http');
  if (req.headers.host) headers.push('x-forwarded-host', req.headers.host);
  return headers;
}

/**
 * The upstream's raw headers minus hop-by-hop ones, including those its `Connection` header names:
 * they describe the upstream→StreamGate connection, not ours to the caller (RFC 9110 §7.6.1).
 */
export function withoutHopByHop(raw: string[], alsoDropped?: ReadonlySet<string>): string[] {
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === 'connection') {
      connection = connection === undefined ? (raw[i + 1] as string) : `${connection},${raw[i + 1]}`;
    }
  }
  const listedInConnection = connectionTokens(connection);
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(lower) || alsoDropped?.has(lower) || listedInConnection?.has(lower)) continue;
    headers.push(raw[i] as string, raw[i + 1] as string);
  }
  return headers;
}

/**
 * Header names listed in a `Connection` header, lower-cased; undefined when it lists none beyond
 * the usual `keep-alive`/`close` (the common case, kept cheap).
 */
function connectionTokens(connection: string | undefined): Set<string> | undefined {
  if (!connection || connection === 'keep-alive' || connection === 'close') return undefined;
  return new Set(connection.split(',').map((h) => h.trim().toLowerCase()));
}

/** Headers as flat `[name, value, …]` strings, from undici's raw ones when it kept them. */
export function flatHeaders(
  raw: Dispatcher.DispatchController['rawHeaders'],
  parsed: Record<string, unknown>,
): string[] {
  if (Array.isArray(raw)) return raw.map((v: Buffer | string) => (typeof v === 'string' ? v : v.toString('latin1')));
  return Object.entries(parsed).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).flatMap((v) => (v === undefined ? [] : [name, String(v)])),
  );
}
