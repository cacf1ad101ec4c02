import { STATUS_CODES } from 'node:http';
import { errorBodySchema } from './schemas.js';

/**
 * How a call to Nginx Proxy Manager failed, in the terms a caller acts on:
 * - `unreachable`: no answer (refused, reset, timed out); `status` is null.
 * - `auth`: credentials refused, also after one fresh login; or a 2FA account.
 * - `not_found`: 404 (the host, or the URL is not NPM's API).
 * - `rejected`: another 4xx; NPM's own reason is in the message and in `npmMessage`.
 * - `server`: 5xx.
 * - `invalid_response`: an answer that is not what NPM's schema says (a wrong URL, a proxy's page).
 *
 * `mayHaveApplied` says whether NPM may have carried the call out anyway, for a caller deciding
 * whether to undo it or check NPM:
 * - false when it certainly changed nothing: the request never left (connect refused or timed out,
 *   name not found, no route, client closed), NPM refused it (every 4xx), the call is a read (GET),
 *   or the failure was in logging in, before the call itself was sent.
 * - true otherwise, since a request that may have arrived may have been acted on: our deadline
 *   passed, the connection broke mid-exchange, a 5xx (NPM may fail after storing the host), a
 *   redirect, or a 2xx whose body is not what the schema says. When unsure, true.
 */
export type NpmErrorKind = 'unreachable' | 'auth' | 'not_found' | 'rejected' | 'server' | 'invalid_response';

/** A failed NPM call. `message` is for people: it names NPM, the operation and the HTTP status. */
export class NpmError extends Error {
  override name = 'NpmError';
  constructor(
    readonly kind: NpmErrorKind,
    message: string,
    readonly status: number | null = null,
    /** NPM's own `error.message`, when it sent one. */
    readonly npmMessage: string | null = null,
    /** See the type's comment: false only when NPM certainly did not act on the call. */
    readonly mayHaveApplied = true,
  ) {
    super(message);
  }
}

/**
 * True when NPM refused a create/update because one of the domains already belongs to another of
 * its hosts: NPM answers 400 with `"<domain> is already in use"` (internal/proxy-host.js).
 */
export function isDomainTaken(error: unknown): boolean {
  return (
    error instanceof NpmError &&
    error.kind === 'rejected' &&
    error.status === 400 &&
    /\bis already in use\b/.test(error.npmMessage ?? '')
  );
}

const NPM = 'Nginx Proxy Manager';

/** The error for a non-2xx answer to `operation` (e.g. "creating a proxy host"). */
export function statusError(operation: string, status: number, body: string, location?: string): NpmError {
  const { npmMessage, reason } = reasonOf(status, body);
  const detail = `: ${reason}`;
  const http = `(HTTP ${status})`;
  // NPM checks access, existence and the body before it changes anything: a 4xx changed nothing.
  const refused = (kind: NpmErrorKind, text: string) => new NpmError(kind, text, status, npmMessage, false);
  if (status === 401 || status === 403) return refused('auth', `${NPM} denied access to ${operation} ${http}${detail}`);
  if (status === 404) return refused('not_found', `${NPM} answered "not found" to ${operation} ${http}${detail}`);
  if (status >= 400 && status < 500) return refused('rejected', `${NPM} rejected ${operation} ${http}${detail}`);
  if (status >= 500) {
    return new NpmError('server', `${NPM} failed ${operation} ${http}${detail}`, status, npmMessage);
  }
  // 1xx/3xx: undici follows no redirects, and NPM's API never sends one; its web port, or a proxy
  // in front of it, does (http → https). The URL is then not that of the API.
  const where = location ? ` to ${location}` : '';
  return new NpmError(
    'invalid_response',
    `${NPM} answered ${operation} with a redirect${where} ${http}; check that the configured URL is that of NPM itself`,
    status,
  );
}

/** A 2xx answer whose body is not what the schema says. */
export function invalidResponse(operation: string, status: number, problem: string): NpmError {
  return new NpmError(
    'invalid_response',
    `${NPM} sent an unexpected answer to ${operation} (HTTP ${status}): ${problem}`,
    status,
  );
}

/**
 * No answer at all: `reason` says why ("connection refused (ECONNREFUSED)", "no answer within 10000 ms");
 * `mayHaveApplied` false only when the request certainly never left.
 */
export function unreachable(operation: string, origin: string, reason: string, mayHaveApplied: boolean): NpmError {
  const message = `${NPM} at ${origin} is unreachable while ${operation}: ${reason}`;
  return new NpmError('unreachable', message, null, null, mayHaveApplied);
}

/** The same error, known not to have changed anything in NPM (a read, or a failed login before the call). */
export function notApplied(error: NpmError): NpmError {
  if (!error.mayHaveApplied) return error;
  return new NpmError(error.kind, error.message, error.status, error.npmMessage, false);
}

/** The same error with every secret in its texts replaced by `***`. */
export function redacted(error: NpmError, secrets: Iterable<string>): NpmError {
  let message = error.message;
  let npmMessage = error.npmMessage;
  for (const secret of secrets) {
    if (!secret) continue;
    message = message.replaceAll(secret, '***');
    npmMessage = npmMessage?.replaceAll(secret, '***') ?? null;
  }
  if (message === error.message && npmMessage === error.npmMessage) return error;
  return new NpmError(error.kind, message, error.status, npmMessage, error.mayHaveApplied);
}

/** Why NPM refused: its own `error.message` when the body has NPM's error shape, else what there is. */
export function reasonOf(status: number, body: string): { npmMessage: string | null; reason: string } {
  const npmMessage = npmMessageOf(body);
  return { npmMessage, reason: npmMessage ?? fallbackDetail(status, body) };
}

function npmMessageOf(body: string): string | null {
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.error.message : null;
  } catch {
    return null;
  }
}

/** Not NPM's error shape (a proxy in front of it, say): a short plain body, or the status text. */
function fallbackDetail(status: number, body: string): string {
  const text = body.trim();
  if (text && text.length <= 200 && !text.startsWith('<')) return text;
  return STATUS_CODES[status] ?? 'no reason given';
}
