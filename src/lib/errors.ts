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
  /** A subscription that fell too far behind its stream; it is ended, never buffered without bound. */
  | 'SUBSCRIBER_TOO_SLOW'
  /** One operation asked more of node APIs than NODE_CALLS_PER_OPERATION / NODE_BYTES_PER_OPERATION allow. */
  | 'BUDGET_EXCEEDED';

export function appError(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  // Only authentication failures change the HTTP status of a GraphQL response; the others are
  // field errors inside a 200, as GraphQL-over-HTTP expects.
  const http = code === 'UNAUTHENTICATED' ? { http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } } : {};
  return createGraphQLError(message, { extensions: { code, ...extra, ...http } });
}

export const notFound = (what: string, id: string) => appError('NOT_FOUND', `${what} ${id} not found`);
export const conflict = (message: string, field?: string) => appError('CONFLICT', message, field ? { field } : {});
export const badInput = (message: string, field?: string) =>
  appError('BAD_USER_INPUT', message, field ? { field } : {});
export const upstreamUnavailable = (message: string) => appError('UPSTREAM_UNAVAILABLE', message);
export const subscriberTooSlow = (message: string, extra: Record<string, unknown> = {}) =>
  appError('SUBSCRIBER_TOO_SLOW', message, extra);
