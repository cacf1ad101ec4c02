import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { refuseOnSocket, sendError } from './respond.js';

export interface ConnectionLimits {
  /** Open connections on this listener; past it new ones are dropped at once. */
  max: number;
  /** Open connections from one client address. */
  perAddress: number;
  /** A connection must start a request within this (Node's header timer starts at the first byte). */
  firstRequestMs: number;
}

/**
 * What an unauthenticated peer can hold open, before any token is looked at: a cap on
 * connections (in total and per address), and a deadline for a connection that sends nothing at
 * all. Dribbled headers are Node's `headersTimeout`; idle keep-alive connections are its
 * `keepAliveTimeout`; slow bodies are `bodyDeadline` below.
 */
export function limitConnections(server: Server, limits: ConnectionLimits): void {
  server.maxConnections = limits.max;
  const perAddress = new Map<string, number>();
  server.on('connection', (socket) => {
    const address = socket.remoteAddress ?? '';
    const open = (perAddress.get(address) ?? 0) + 1;
    if (open > limits.perAddress) {
      socket.destroy();
      return;
    }
    perAddress.set(address, open);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
    socket.setTimeout(limits.firstRequestMs, () => socket.destroy());
  });
  // From the first request on, the request's own timers govern the socket (`timeout` is the
  // socket's current idle timeout: only the first request of a connection has one to clear).
  const started = (req: IncomingMessage) => {
    if (req.socket.timeout) req.socket.setTimeout(0);
  };
  server.on('request', started);
  server.on('upgrade', started);
}

/**
 * Answers 408 and closes the connection when a request's body has not fully arrived within
 * `ms` (Node's own `requestTimeout` would apply to streamed passthrough uploads too, which keep
 * their own idle timeout instead).
 */
export function bodyDeadline(req: IncomingMessage, res: ServerResponse, ms: number): void {
  if (req.complete) return;
  const timer = setTimeout(() => {
    if (req.complete) return;
    res.setHeader('connection', 'close');
    sendError(res, 408, 'REQUEST_TIMEOUT', `the request body did not arrive within ${ms} ms`);
    req.socket.destroySoon();
  }, ms);
  timer.unref();
  const clear = () => clearTimeout(timer);
  req.once('end', clear);
  res.once('close', clear);
}

/**
 * A request Node's parser refuses (malformed, both `Content-Length` and `Transfer-Encoding`,
 * headers too large, too slow) gets a small JSON answer naming the reason, then the connection
 * closes; nothing of it reaches a handler, let alone an upstream.
 */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    // A response already under way on this connection, or a peer already gone: nothing to say.
    const inProgress = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (!socket.writable || inProgress || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, code, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'HEADERS_TOO_LARGE', 'the request headers are too large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'REQUEST_TIMEOUT', 'the request headers did not arrive in time']
          : [400, 'BAD_REQUEST', `malformed request: ${parseReason(error)}`];
    refuseOnSocket(socket, { status, code, message });
  });
}

/** llhttp's reason (`Transfer-Encoding can't be present with Content-Length`), without its prefix. */
function parseReason(error: Error & { reason?: string }): string {
  return (error.reason ?? error.message).replace(/^Parse Error: /, '');
}
