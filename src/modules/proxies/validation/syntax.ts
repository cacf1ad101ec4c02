import { isIP } from 'node:net';
import type { Destination } from './types.js';

/** Longer input is not a destination anyone typed; it is refused before any parsing. */
export const MAX_DESTINATION_LENGTH = 2048;

const DEFAULT_PORTS = { http: 80, https: 443 } as const;
const SCHEME = /^([a-z][a-z0-9+.-]*):/i;
/** `localhost:8080` or `localhost:8080/x` parses as scheme "localhost": it is a missing scheme. */
const HOST_PORT_WITHOUT_SCHEME = /^[a-z][a-z0-9+.-]*:\d+(?:[/?#]|$)/i;

export type ParsedDestination = { ok: true; destination: Destination } | { ok: false; detail: string };

const fail = (detail: string): ParsedDestination => ({ ok: false, detail });

/**
 * SYNTAX: an absolute http/https URL with a host, a port in 1–65535 (the scheme's default when
 * absent) and no credentials; normalised to a Destination. The WHATWG parser does the
 * normalising, but it is both too lenient (`http:///host`, `http:host`) and too terse (it throws a
 * bare "Invalid URL" for port 70000), so the scheme and the authority are checked here first, each
 * failure naming what is wrong.
 */
export function parseDestination(raw: string): ParsedDestination {
  const input = raw.trim();
  if (input === '') return fail('destination is empty');
  if (input.length > MAX_DESTINATION_LENGTH) {
    return fail(`destination is ${input.length} characters long (at most ${MAX_DESTINATION_LENGTH})`);
  }

  const scheme = SCHEME.exec(input)?.[1]?.toLowerCase();
  if (!scheme || HOST_PORT_WITHOUT_SCHEME.test(input)) return fail('not an absolute URL (missing http:// or https://)');
  if (scheme !== 'http' && scheme !== 'https') return fail(`scheme "${scheme}" is not supported; use http or https`);

  // The WHATWG parser treats "\" as "/" in http(s) URLs; so do we, to find the same authority.
  const rest = input.slice(scheme.length + 1).replaceAll('\\', '/');
  if (!rest.startsWith('//')) return fail(`not an absolute URL (expected ${scheme}:// followed by a host)`);
  const authority = rest.slice(2).split(/[/?#]/, 1)[0] ?? '';
  if (authority.includes('@')) return fail('credentials in the URL are not allowed');

  const hostPort = splitHostPort(authority);
  if (!hostPort.ok) return fail(hostPort.detail);
  if (hostPort.host === '') return fail('host is missing');
  const { portText } = hostPort;
  if (portText !== '' && !/^\d+$/.test(portText)) return fail(`port "${portText}" is not a number`);
  if (portText !== '') {
    const port = Number(portText);
    if (port < 1 || port > 65535) return fail(`port ${portText.replace(/^0+(?=\d)/, '')} is out of range (1-65535)`);
  }

  let url: URL;
  try {
    url = new URL(input);
  } catch {
    // Scheme, credentials and port are known good by now: what is left to be wrong is the host.
    return fail(`host "${hostPort.host}" is not a valid host name or IP address`);
  }
  if (url.username !== '' || url.password !== '') return fail('credentials in the URL are not allowed');
  if (url.hostname === '') return fail('host is missing');

  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const port = url.port === '' ? DEFAULT_PORTS[scheme] : Number(url.port);
  return {
    ok: true,
    destination: { url: url.href, scheme, host, port, isIp: isIP(host) !== 0 },
  };
}

/** Host and port text of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`), before any validation. */
function splitHostPort(
  authority: string,
): { ok: true; host: string; portText: string } | { ok: false; detail: string } {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    const after = close === -1 ? '' : authority.slice(close + 1);
    if (close === -1 || (after !== '' && !after.startsWith(':'))) {
      return { ok: false, detail: `host "${authority}" is not a valid IPv6 address in brackets` };
    }
    return { ok: true, host: authority.slice(0, close + 1), portText: after.slice(1) };
  }
  const colon = authority.indexOf(':');
  if (colon === -1) return { ok: true, host: authority, portText: '' };
  return { ok: true, host: authority.slice(0, colon), portText: authority.slice(colon + 1) };
}

/** The success detail: what the later steps will use. */
export function describeDestination(destination: Destination): string {
  return `${destination.url} (host ${destination.host}, port ${destination.port})`;
}
