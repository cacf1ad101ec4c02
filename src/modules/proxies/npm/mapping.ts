import type { Destination } from '../validation/types.js';
import type { NpmProxyHost, NpmProxyHostInput } from './types.js';

/**
 * Key in a proxy host's `meta` that marks it as created by StreamGate. A marked host that no proxy
 * row points at is an orphan of a create whose database write failed; the next create of that
 * domain removes it instead of reporting a conflict.
 */
export const MANAGED_MARKER = 'streamgate_managed';

/**
 * The NPM proxy host a StreamGate proxy stands for. NPM forwards to scheme://host:port; a path in
 * the destination travels in `forward_host` (NPM appends it to proxy_pass), and an IPv6 literal
 * keeps its brackets, as nginx needs. With a certificate, HTTPS is forced.
 */
export function proxyHostInput(domain: string, destination: Destination, certificateId: number | null) {
  const url = new URL(destination.url);
  const host = destination.host.includes(':') ? `[${destination.host}]` : destination.host;
  const path = url.pathname === '/' && !url.search ? '' : `${url.pathname}${url.search}`;
  return {
    domain_names: [domain],
    forward_scheme: destination.scheme,
    forward_host: `${host}${path}`,
    forward_port: destination.port,
    certificate_id: certificateId ?? 0,
    ssl_forced: certificateId !== null,
    allow_websocket_upgrade: true,
    meta: { [MANAGED_MARKER]: true },
  } satisfies NpmProxyHostInput;
}

/** True when the host serves `domain` (NPM compares domains case-insensitively). */
export function servesDomain(host: NpmProxyHost, domain: string): boolean {
  return host.domain_names.some((name) => name.toLowerCase().replace(/\.$/, '') === domain);
}

export function isManagedByUs(host: NpmProxyHost): boolean {
  return host.meta?.[MANAGED_MARKER] === true;
}

/** Where an NPM host forwards to, as a URL (for the merged listing). */
export function forwardUrl(host: NpmProxyHost): string {
  const slash = host.forward_host.indexOf('/');
  const name = slash === -1 ? host.forward_host : host.forward_host.slice(0, slash);
  const path = slash === -1 ? '/' : host.forward_host.slice(slash);
  return `${host.forward_scheme}://${name}:${host.forward_port}${path}`;
}
