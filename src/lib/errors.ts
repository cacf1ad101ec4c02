import { createGraphQLError } from 'graphql-yoga';

/**
 * Client-caused errors, each with the `extensions.code` PROTOCOLS.md pins. Anything thrown that
 * is not one of these is unexpected and Yoga masks it.
 */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'UPSTREAM_UNAVAILABLE'
  /** The database cannot be reached right now: HTTP 503 with Retry-After (PROTOCOLS.md). */
  | 'UNAVAILABLE'
  /** A subscription that fell too far behind its stream; it is ended, never buffered without bound. */
  | 'SUBSCRIBER_TOO_SLOW'
  /** One operation asked more of node APIs than NODE_CALLS_PER_OPERATION / NODE_BYTES_PER_OPERATION allow. */
  | 'BUDGET_EXCEEDED';

export function appError(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  // Only authentication failures and an unreachable database change the HTTP status of a GraphQL
  // response (PROTOCOLS.md); the others are field errors inside a 200, as GraphQL-over-HTTP expects.
  const http = STATUS_OF[code] ?? {};
  return createGraphQLError(message, { extensions: { code, ...extra, ...http } });
}

const STATUS_OF: Partial<Record<ErrorCode, { http: { status: number; headers: Record<string, string> } }>> = {
  UNAUTHENTICATED: { http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } },
  UNAVAILABLE: { http: { status: 503, headers: { 'Retry-After': '5' } } },
};

export const notFound = (what: string, id: string) => appError('NOT_FOUND', `${what} ${id} not found`);
export const conflict = (message: string, field?: string) => appError('CONFLICT', message, field ? { field } : {});
export const badInput = (message: string, field?: string) =>
  appError('BAD_USER_INPUT', message, field ? { field } : {});
export const upstreamUnavailable = (message: string) => appError('UPSTREAM_UNAVAILABLE', message);
export const subscriberTooSlow = (message: string, extra: Record<string, unknown> = {}) =>
  appError('SUBSCRIBER_TOO_SLOW', message, extra);

/**
 * The system or library code of an error (`ECONNREFUSED`, `UND_ERR_SOCKET`, …): its own, else that
 * of the first of its aggregated errors that has one, else its cause's (a few levels deep).
 */
export function errorCode(error: unknown): string | null {
  return codeWithin(error, 0);
}

function codeWithin(error: unknown, depth: number): string | null {
  if (!error || typeof error !== 'object' || depth > 3) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  // A host name with several addresses (localhost → ::1 and 127.0.0.1) fails as one AggregateError.
  if (error instanceof AggregateError) {
    for (const inner of error.errors) {
      const found = codeWithin(inner, depth + 1);
      if (found) return found;
    }
  }
  return codeWithin((error as { cause?: unknown }).cause, depth + 1);
}

/** What people read for the system and library codes seen most; the code itself follows for searching. */
const NETWORK_REASONS: Record<string, string> = {
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

/**
 * One line about a failed network call (or any error), for details, hints and events: words for
 * a known code ("connection refused (ECONNREFUSED)"), else the error's message with its code when
 * the message does not say it. OpenSSL's long messages keep only their reason.
 */
export function describeError(error: unknown): string {
  const code = errorCode(error);
  if (code === 'EOUTBOUNDDENIED') return `refused by the outbound address policy: ${(error as Error).message}`;
  const words = code ? NETWORK_REASONS[code] : undefined;
  if (words) return `${words} (${code})`;
  const raw =
    error instanceof Error || error instanceof DOMException ? error.message.trim() || error.name : String(error);
  // OpenSSL's messages are "<id>:error:<hex>:SSL routines:<function>:<reason>:<file>:<line>:": keep the reason.
  const message = /SSL routines:[^:]*:([^:]+):/.exec(raw)?.[1] ?? raw;
  if (!code) return message;
  return message.includes(code) ? message : `${message} (${code})`;
}
