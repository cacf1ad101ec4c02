import { isIP, type LookupFunction } from 'node:net';
import { Client, type Dispatcher, request } from 'undici';
import { describeError } from '../../../lib/errors.js';
import { deadline, elapsedMs } from './deadline.js';
import { classifyError } from './failures.js';
import { type FailureKind, HINTS, hintFor } from './hints.js';
import type { Destination } from './types.js';

export interface HttpProbeResult {
  ok: boolean;
  /** HTTP status when one arrived. */
  status: number | null;
  latencyMs: number;
  detail: string;
  hint: string | null;
}

export interface HttpProbeOptions {
  /** Ends the probe early (its result then says "aborted", or timed out when the reason is a TimeoutError). */
  signal?: AbortSignal;
  /** Bound from the start until the response headers. */
  timeoutMs: number;
  /** Connection pool for the unpinned probe (the proxies' health checks share one); undici's global one otherwise. */
  dispatcher?: Dispatcher;
  /**
   * Connect to these addresses instead of resolving the host again (the validation pipeline passes
   * the one its TCP step reached). The URL, and so the Host header and TLS SNI, keep the name.
   */
  addresses?: string[];
}

/**
 * A body still arriving this long after the headers is not waited for (a destination's `/` may be
 * an endless stream); nor is more than this much of it read.
 */
const DRAIN_MS = 1_000;
const DRAIN_LIMIT_BYTES = 64 * 1024;
/** A Location header is quoted in the detail; a longer one is cut. */
const MAX_LOCATION_CHARS = 300;

/** Prefix of a failure's detail, per kind (the error's own message and code follow). */
const FAILURE_DETAIL: Record<FailureKind, string> = {
  dns: 'cannot resolve the host',
  refused: 'connection refused',
  timeout: 'timed out',
  unreachable: 'host not reachable',
  'tls-certificate': 'TLS certificate rejected',
  'tls-handshake': 'TLS handshake failed',
  'not-http': 'no HTTP answer',
  forbidden: 'not allowed',
};

/**
 * One `GET` of the destination: no redirects followed (reported in detail), 2xx–3xx is ok, body
 * discarded. Used by the HTTP step (pinned to the addresses DNS found) and by the proxies' health
 * checks (with the shared agent). Never throws for a network failure: that is a result.
 *
 * TLS certificates are verified (undici's default): a destination with a self-signed certificate
 * fails with its own hint rather than passing silently. undici 7's `request` follows no redirects
 * unless a redirect interceptor is composed in, and none is.
 */
export async function httpProbe(destination: Destination, options: HttpProbeOptions): Promise<HttpProbeResult> {
  const { timeoutMs, signal } = options;
  const started = performance.now();
  const bound = deadline(timeoutMs, signal);
  // A client of our own for the pinned probe: a shared pool would reuse a connection to wherever the name pointed before.
  const pinned = options.addresses?.length ? pinnedClient(destination, options.addresses, timeoutMs) : null;
  try {
    const response = await request(destination.url, {
      method: 'GET',
      dispatcher: pinned ?? options.dispatcher,
      signal: bound.signal,
      headersTimeout: timeoutMs,
    });
    const latencyMs = elapsedMs(started);
    bound.clear();
    await discard(response.body, signal);
    return answered(response.statusCode, response.headers.location, latencyMs);
  } catch (error) {
    return failed(error, { bound, signal, timeoutMs, port: destination.port, latencyMs: elapsedMs(started) });
  } finally {
    bound.clear();
    await pinned?.destroy().catch(() => {});
  }
}

/** A single-origin client whose every connection goes to `addresses` (whatever DNS says now). */
function pinnedClient(destination: Destination, addresses: string[], timeoutMs: number): Client {
  const entries = addresses.map((address) => ({ address, family: isIP(address) }));
  // net.connect asks for every address when it races address families (autoSelectFamily), one otherwise.
  const lookup: LookupFunction = (_hostname, lookupOptions, callback) => {
    if (lookupOptions.all) callback(null, entries);
    else callback(null, entries[0]!.address, entries[0]!.family);
  };
  return new Client(new URL(destination.url).origin, { connect: { lookup, timeout: timeoutMs } });
}

/** Reads and drops the body so a shared pool can reuse the connection; bounded in time and size. */
async function discard(body: Dispatcher.ResponseData['body'], signal?: AbortSignal): Promise<void> {
  const bound = deadline(DRAIN_MS, signal);
  try {
    await body.dump({ limit: DRAIN_LIMIT_BYTES, signal: bound.signal });
  } catch {
    // The status is known; a body that errors or is cut short changes nothing.
  } finally {
    bound.clear();
  }
}

function answered(status: number, location: string | string[] | undefined, latencyMs: number): HttpProbeResult {
  const ok = status >= 200 && status < 400;
  let detail = `HTTP ${status}`;
  const target = Array.isArray(location) ? location[0] : location;
  if (status >= 300 && status < 400 && target) {
    const shown = target.length > MAX_LOCATION_CHARS ? `${target.slice(0, MAX_LOCATION_CHARS)}…` : target;
    detail += `, redirects to ${shown} (not followed)`;
  }
  return { ok, status, latencyMs, detail, hint: ok ? null : HINTS.httpStatus(status) };
}

function failed(
  error: unknown,
  context: {
    bound: { timedOut: boolean };
    signal?: AbortSignal;
    timeoutMs: number;
    port: number;
    latencyMs: number;
  },
): HttpProbeResult {
  const { latencyMs } = context;
  if (context.bound.timedOut) {
    const detail = `no response headers within ${context.timeoutMs} ms`;
    return { ok: false, status: null, latencyMs, detail, hint: HINTS.timeout };
  }
  if (context.signal?.aborted) {
    const reason: unknown = context.signal.reason;
    // The health monitor bounds a check with its own timer: its TimeoutError is a timeout like ours.
    if (reason instanceof DOMException && reason.name === 'TimeoutError') {
      return { ok: false, status: null, latencyMs, detail: reason.message, hint: HINTS.timeout };
    }
    return { ok: false, status: null, latencyMs, detail: `aborted: ${describeError(reason)}`, hint: null };
  }
  const kind = classifyError(error);
  const detail = `${FAILURE_DETAIL[kind]}: ${describeError(error)}`;
  return { ok: false, status: null, latencyMs, detail, hint: hintFor(kind, context.port) };
}
