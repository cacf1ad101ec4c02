import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(payload);
}

/** An answer of our own instead of what was asked: status, error code, reason, extra headers. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
  headers?: Readonly<Record<string, string>>;
}

/** Whether a result (a route, a principal…) is a refusal instead. */
export function isRefusal(value: object): value is Refusal {
  return 'status' in value && 'code' in value;
}

/** The JSON error shape of every non-GraphQL route: `{"error":{"code","message"}}`. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendRefusal(res, { status, code, message });
}

/**
 * Answers with the refusal's error body and headers; returns the body's size (for access logs).
 * A response already under way cannot change its status: it is cut instead.
 */
export function sendRefusal(res: ServerResponse, refusal: Refusal): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const body = errorBody(refusal.code, refusal.message);
  const bytes = Buffer.byteLength(body);
  res.writeHead(refusal.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': bytes,
    'cache-control': 'no-store',
    ...refusal.headers,
  });
  res.end(body);
  return bytes;
}

/** How long a refused raw connection may stay half-open after our answer. */
const CLOSE_GRACE_MS = 1_000;

/**
 * The refusal written as a whole HTTP response on a raw socket (a parse error, a refused
 * upgrade), then the connection goes (endAndClose). Returns the body's size.
 */
export function refuseOnSocket(socket: Duplex, refusal: Refusal): number {
  const body = errorBody(refusal.code, refusal.message);
  const bytes = Buffer.byteLength(body);
  let head = `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n`;
  head += `content-type: application/json; charset=utf-8\r\ncontent-length: ${bytes}\r\n`;
  for (const [name, value] of Object.entries(refusal.headers ?? {})) head += `${name}: ${value}\r\n`;
  endAndClose(socket, `${head}connection: close\r\n\r\n${body}`);
  return bytes;
}

/**
 * Ends a raw connection after `last` and makes sure it goes: `end()` only half-closes (Node's
 * HTTP sockets allow half-open), and a peer that never closes its side would keep it, so it is
 * destroyed a second later at the latest.
 */
export function endAndClose(socket: Duplex, last?: string): void {
  socket.end(last);
  const cut = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
  cut.unref();
  socket.once('close', () => clearTimeout(cut));
}
