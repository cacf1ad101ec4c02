/** One problem of a BAD_USER_INPUT answer: which input field, and what is wrong with it. */
export interface InputProblem {
  field: string;
  message: string;
}

/** A GraphQL error as the server formats it. */
export interface GraphQLErrorShape {
  message: string;
  path?: readonly (string | number)[];
  extensions?: { code?: string; field?: string; problems?: InputProblem[]; [key: string]: unknown };
}

/**
 * The codes StreamGate answers with (`extensions.code`, PROTOCOLS.md), plus the client's own:
 * `NETWORK` (no answer: unreachable, refused, reset) and `BAD_RESPONSE` (an answer that is not
 * GraphQL, e.g. an HTML error page of a proxy in between).
 */
export type StreamGateErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UNAVAILABLE'
  | 'SUBSCRIBER_TOO_SLOW'
  | 'BUDGET_EXCEEDED'
  | 'TOO_MANY_REQUESTS'
  | 'INTERNAL_SERVER_ERROR'
  | 'NETWORK'
  | 'BAD_RESPONSE'
  | (string & {});

/**
 * Every failure of a StreamGate call: `code` says what kind, `field` and `problems` say which
 * input was wrong (BAD_USER_INPUT), `errors` holds every GraphQL error of the answer and `data`
 * what the answer had besides them (a partial result), `status` the HTTP status when there was one.
 */
export class StreamGateError extends Error {
  override name = 'StreamGateError';
  readonly code: StreamGateErrorCode;
  readonly field: string | undefined;
  readonly problems: InputProblem[];
  readonly errors: GraphQLErrorShape[];
  readonly data: unknown;
  readonly status: number | undefined;

  constructor(
    message: string,
    init: { code: StreamGateErrorCode; errors?: GraphQLErrorShape[]; data?: unknown; status?: number; cause?: unknown },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    const first = init.errors?.[0];
    this.code = init.code;
    this.field = first?.extensions?.field;
    this.problems = first?.extensions?.problems ?? [];
    this.errors = init.errors ?? [];
    this.data = init.data ?? null;
    this.status = init.status;
  }

  /** The error of a GraphQL answer with errors: the first one's code and message. */
  static fromErrors(errors: GraphQLErrorShape[], data?: unknown, status?: number): StreamGateError {
    const first = errors[0];
    const code = first?.extensions?.code ?? 'INTERNAL_SERVER_ERROR';
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    return new StreamGateError(`${first?.message ?? 'request failed'}${more}`, { code, errors, data, status });
  }
}
