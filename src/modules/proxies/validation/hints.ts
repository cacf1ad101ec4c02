/**
 * What a failed validation step tells the user to do. The DNS, TCP and HTTP-status texts are the
 * issue's, word for word (the UI and the docs quote them); the SYNTAX, TLS and protocol ones are ours.
 */
export const HINTS = {
  syntax: 'Use an absolute http:// or https:// URL such as http://10.0.0.5:8080.',
  dns: 'Domain cannot be resolved. Check DNS settings or use an IP address.',
  refused: (port: number) =>
    `Port ${port} is not accepting connections. Check if the service is running and the port is correct.`,
  timeout: 'Connection timed out. Possible firewall blocking. Check network/firewall rules.',
  unreachable: 'Host is not reachable. Verify the IP address and network connectivity.',
  httpStatus: (status: number) => `Service responded with HTTP ${status}. The service may not be healthy.`,
  tlsCertificate:
    "The service's TLS certificate is not trusted or does not match the host name. Install a certificate from a trusted CA for this name.",
  tlsHandshake:
    'The TLS handshake failed. Check that the service serves HTTPS on this port, or use http:// if it does not.',
  notHttp: 'The service did not answer with HTTP. Check that this port serves HTTP (or HTTPS for an https:// URL).',
  forbidden:
    'StreamGate may not connect to this address (OUTBOUND_DENY, or a link-local or cloud metadata range, denied by default). Use another destination, or ask an administrator to allow it in OUTBOUND_ALLOW.',
} as const;

/** How a connection or request failed, as far as the user can act on it. */
export type FailureKind =
  | 'dns'
  | 'refused'
  | 'timeout'
  | 'unreachable'
  | 'tls-certificate'
  | 'tls-handshake'
  | 'not-http'
  /** The outbound address policy refused the address: nothing was sent. */
  | 'forbidden';

/** The hint for a failure kind; `port` fills the refused text. */
export function hintFor(kind: FailureKind, port: number): string {
  switch (kind) {
    case 'dns':
      return HINTS.dns;
    case 'refused':
      return HINTS.refused(port);
    case 'timeout':
      return HINTS.timeout;
    case 'unreachable':
      return HINTS.unreachable;
    case 'tls-certificate':
      return HINTS.tlsCertificate;
    case 'tls-handshake':
      return HINTS.tlsHandshake;
    case 'not-http':
      return HINTS.notHttp;
    case 'forbidden':
      return HINTS.forbidden;
  }
}
