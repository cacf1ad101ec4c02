/**
 * Close codes of the raw stream relay (`/ws/stream/{sessionId}/{userId}`), pinned by PROTOCOLS.md.
 * The 44xx codes mirror the HTTP status a request would have got, as graphql-ws' `CloseCode` does.
 */
export const CloseCode = {
  /** The session ended normally (not used for a relay socket today; kept for clients' switch). */
  Normal: 1000,
  /** The server is shutting down (or restarting): reconnect later. */
  GoingAway: 1001,
  /** A frame larger than WS_MAX_MESSAGE_SIZE (ws closes with this itself). */
  MessageTooBig: 1009,
  /** Unexpected server error. */
  InternalError: 1011,
  /**
   * Not a verdict, try again: the token cannot be checked (database down), the address is
   * rate-limited, or (several instances) Redis is away, so the session's connections cannot be
   * counted.
   */
  TryAgainLater: 1013,
  /** The path is not `/ws/stream/{sessionId}/{userId}` with a UUID session id and a valid user id. */
  MalformedRequest: 4400,
  /** No stream key (publisher) or no bearer token (operator). */
  MissingCredentials: 4401,
  /** Wrong stream key, or a token that is not valid. */
  Forbidden: 4403,
  /** No such session, or the session is finished. */
  SessionNotFound: 4404,
  /** The operator could not keep up: its send buffer passed SESSION_OPERATOR_MAX_BUFFER. */
  TooSlow: 4408,
  /** Another publisher is already connected to this session. */
  PublisherConflict: 4409,
  /** The session was ended (endSession) while this socket was connected. */
  SessionEnded: 4410,
  /** SESSION_MAX_OPERATORS operators are connected already. */
  TooManyOperators: 4429,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Human-readable close reasons (≤ 123 bytes, the WebSocket limit). */
export const CloseReason: Record<CloseCode, string> = {
  [CloseCode.Normal]: 'normal closure',
  [CloseCode.GoingAway]: 'server shutting down',
  [CloseCode.MessageTooBig]: 'frame too large',
  [CloseCode.InternalError]: 'internal error',
  [CloseCode.TryAgainLater]: 'try again later',
  [CloseCode.MalformedRequest]: 'malformed request: expected /ws/stream/{sessionId}/{userId}',
  [CloseCode.MissingCredentials]: 'missing credentials: ?key= for the publisher, a bearer token for operators',
  [CloseCode.Forbidden]: 'forbidden: bad stream key or token',
  [CloseCode.SessionNotFound]: 'no such session, or the session is finished',
  [CloseCode.TooSlow]: 'too slow: send buffer limit reached',
  [CloseCode.PublisherConflict]: 'a publisher is already connected',
  [CloseCode.SessionEnded]: 'session ended',
  [CloseCode.TooManyOperators]: 'operator limit reached',
};
