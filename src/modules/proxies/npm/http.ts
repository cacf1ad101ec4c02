import type { Dispatcher } from 'undici';
import { errors } from 'undici';
import { describeError, errorCode } from '../../../lib/errors.js';
import { readBodyText } from '../../../lib/read-body.js';
import { invalidResponse, NpmError, unreachable } from './errors.js';

/** One NPM answer, read whole: the API's bodies are small JSON documents. */
export interface NpmAnswer {
  status: number;
  body: string;
  /** `Location`, for the message about a redirect. */
  location?: string;
}

export interface NpmRequest {
  /** For messages: "creating a proxy host". */
  operation: string;
  method: Dispatcher.HttpMethod;
  url: URL;
  token: string | null;
  body?: unknown;
  timeoutMs: number;
}

/** Larger than any proxy-host list NPM would send; a body past it is not NPM's. */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/**
 * Sends one request and reads the whole answer, within `timeoutMs` from start to last byte.
 * Any failure to get an answer is NpmError `unreachable` (`mayHaveApplied` false only when the
 * request certainly never left); the status is for the caller to judge.
 */
export async function exchange(dispatcher: Dispatcher, request: NpmRequest): Promise<NpmAnswer> {
  const { operation, method, url, token, body, timeoutMs } = request;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  // One deadline for connect, headers and body: `headersTimeout`/`bodyTimeout` would each restart.
  // A timer of our own, cleared below, rather than AbortSignal.timeout's, which outlives the call.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const { signal } = deadline;
  let status = 0;
  try {
    const response = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      signal,
    });
    status = response.statusCode;
    const text = await readBodyText(response.body, MAX_ANSWER_BYTES);
    if (text === null) {
      throw invalidResponse(operation, status, `the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    const location = response.headers.location;
    return { status, body: text, ...(typeof location === 'string' ? { location } : {}) };
  } catch (error) {
    if (error instanceof NpmError) throw error;
    const reason = signal.aborted ? `no answer within ${timeoutMs} ms` : describeNetworkFailure(error);
    const stage = status ? ` (the answer, HTTP ${status}, broke off)` : '';
    // A 4xx status line already said NPM refused, even if the rest of the answer broke off.
    const refused = status >= 400 && status < 500;
    const neverSent = !signal.aborted && status === 0 && neverLeft(error);
    throw unreachable(operation, url.origin, `${reason}${stage}`, !refused && !neverSent);
  } finally {
    clearTimeout(timer);
  }
}

/** Failures to open a connection (checked with the syscall below): the request cannot have reached NPM. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * True when the request certainly never left. A closed client (UND_ERR_CLOSED) takes no request;
 * not so a destroyed one (UND_ERR_DESTROYED): destroying also cuts requests already sent.
 */
function neverLeft(error: unknown): boolean {
  const code = errorCode(error);
  if (code === null || !NOT_SENT_CODES.has(code)) return false;
  // The same codes can come from a socket that was already open ("read EHOSTUNREACH"): mid-exchange.
  const syscall = syscallOf(error);
  return syscall === undefined || syscall === 'connect' || syscall === 'getaddrinfo';
}

function syscallOf(error: unknown): unknown {
  const own = (error as { syscall?: unknown } | null)?.syscall;
  return own ?? (error as { cause?: { syscall?: unknown } } | null)?.cause?.syscall;
}

/** "connection refused (ECONNREFUSED)": the words for people, the code for searching. */
function describeNetworkFailure(error: unknown): string {
  if (error instanceof errors.ClientClosedError || error instanceof errors.ClientDestroyedError) {
    return 'the client is closed';
  }
  return describeError(error);
}
