import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { sendError } from './respond.js';

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
