import { isIPv6 } from 'node:net';
import { errors } from 'undici';
import { errorCode } from '../../../lib/errors.js';
import type { FailureKind } from './hints.js';

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT']);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME', 'ENODATA']);
/** A peer that accepted the connection and then said something that is not an HTTP answer, or nothing. */
const NOT_HTTP_CODES = new Set([
  'UND_ERR_SOCKET',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_INFO',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
// Certificate problems (OpenSSL verify codes and Node's host-name check) are the user's to fix in
// the certificate; every other TLS error is a handshake that did not happen (often plain HTTP).
const TLS_CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|HOSTNAME_MISMATCH/;
const TLS_HANDSHAKE = /^(ERR_SSL_|ERR_TLS_|EPROTO$)/;

/**
 * Which hint an error earns. Anything not recognised is treated as a routing problem: the
 * "unreachable" hint (check the address and the network) is the least wrong advice for it.
 */
export function classifyError(error: unknown): FailureKind {
  if (error instanceof DOMException && error.name === 'TimeoutError') return 'timeout';
  const code = errorCode(error) ?? '';
  if (code === 'EOUTBOUNDDENIED') return 'forbidden';
  if (code === 'ECONNREFUSED') return 'refused';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (DNS_CODES.has(code)) return 'dns';
  if (TLS_CERTIFICATE.test(code)) return 'tls-certificate';
  if (TLS_HANDSHAKE.test(code)) return 'tls-handshake';
  if (NOT_HTTP_CODES.has(code) || code.startsWith('HPE_') || error instanceof errors.HTTPParserError) return 'not-http';
  return 'unreachable';
}

/** `address:port`, with brackets around an IPv6 address (`[::1]:8080`). */
export function endpoint(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
