import type { Dispatcher } from 'undici';
import { errors } from 'undici';
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
 * Any failure to get an answer is NpmError `unreachable`; the status is for the caller to judge.
 */
export async function exchange(dispatcher: Dispatcher, request: NpmRequest): Promise<NpmAnswer> {
  const { operation, method, url, token, body, timeoutMs } = request;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  // One signal for connect, headers and body: `headersTimeout`/`bodyTimeout` would each restart.
  const signal = AbortSignal.timeout(timeoutMs);
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
    const text = await readAll(response.body);
    if (text === null) {
      throw invalidResponse(operation, status, `the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    const location = response.headers.location;
    return { status, body: text, ...(typeof location === 'string' ? { location } : {}) };
  } catch (error) {
    if (error instanceof NpmError) throw error;
    const reason = signal.aborted ? `no answer within ${timeoutMs} ms` : describeNetworkFailure(error);
    const stage = status ? ` (the answer, HTTP ${status}, broke off)` : '';
    throw unreachable(operation, url.origin, `${reason}${stage}`);
  }
}

/** The body as text, or null once it passes the limit (the rest is not read). */
async function readAll(body: Dispatcher.ResponseData['body']): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) {
      body.destroy();
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed for now',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed by the other side',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'the answer stalled',
  UND_ERR_CLOSED: 'the client is closed',
  UND_ERR_DESTROYED: 'the client is closed',
};

/** "connection refused (ECONNREFUSED)": the words for people, the code for searching. */
function describeNetworkFailure(error: unknown): string {
  if (error instanceof errors.ClientClosedError || error instanceof errors.ClientDestroyedError) {
    return 'the client is closed';
  }
  const code = codeOf(error);
  const words = code ? REASONS[code] : undefined;
  if (words) return `${words} (${code})`;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

function codeOf(error: unknown): string | undefined {
  const direct = (error as { code?: unknown } | null)?.code;
  if (typeof direct === 'string') return direct;
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  if (typeof cause === 'string') return cause;
  // Several addresses (localhost → ::1 and 127.0.0.1) fail as one AggregateError.
  if (error instanceof AggregateError) return error.errors.map(codeOf).find((c) => c !== undefined);
  return undefined;
}
