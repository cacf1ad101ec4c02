/**
 * The `Host` header as the data plane routes by it: lower case, without port or trailing dot,
 * and its first label as the alias (`App.Example.com.:8080` → alias `app`, host `app.example.com`).
 */
export interface RoutingHost {
  alias: string;
  host: string;
}

// A DNS name (letters, digits, `-`, `_`, dots; an optional trailing dot) or an IPv4 address, an
// optional port. Anything else (spaces, a path, `@`, an empty label) is not a host.
const NAME = /^([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\.?(?::\d{1,5})?$/;
const IPV6 = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/;

/** The routing key of a `Host` header; a string saying what is wrong with it otherwise. */
export function parseHost(header: string | undefined): RoutingHost | string {
  if (header === undefined || header === '') return 'the request has no Host header';
  const name = NAME.exec(header);
  if (name) {
    const host = (name[1] as string).toLowerCase();
    const dot = host.indexOf('.');
    return { alias: dot === -1 ? host : host.slice(0, dot), host };
  }
  const ipv6 = IPV6.exec(header);
  if (ipv6) {
    const host = (ipv6[1] as string).toLowerCase();
    return { alias: host, host };
  }
  return `the Host header is not a host name: ${JSON.stringify(header.slice(0, 100))}`;
}
