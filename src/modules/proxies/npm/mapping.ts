import type { Destination } from '../validation/types.js';
import type { NpmProxyHost, NpmProxyHostInput } from './types.js';

/**
 * Keys in a proxy host's `meta` that mark it as created by StreamGate: which installation, which
 * create (a random id, so a create whose answer was lost can find its host), and when. Only a host
 * of our own installation is ever removed as an orphan; another installation's is someone else's.
 */
const MARKER = {
  installation: 'streamgate_installation',
  create: 'streamgate_create_id',
  createdAt: 'streamgate_created_at',
} as const;

export interface Mark {
  installationId: string;
  createId: string;
  createdAt: Date;
}

/** The part of a proxy host that says where it forwards. */
export type Forwarding = Pick<NpmProxyHostInput, 'forward_scheme' | 'forward_host' | 'forward_port' | 'locations'>;

/**
 * Where NPM forwards for a destination. Its default location proxies to scheme://host:port with the
 * client's path, and ignores any path in `forward_host`; a destination with a path therefore becomes
 * a custom location `/`, which NPM renders as `proxy_pass scheme://host:port/path` and which replaces
 * the default location (NPM backend/internal/nginx.js, templates/_location.conf). An IPv6 literal
 * keeps its brackets, as nginx needs.
 */
export function forwarding(destination: Destination): Forwarding {
  const host = destination.host.includes(':') ? `[${destination.host}]` : destination.host;
  const path = new URL(destination.url).pathname;
  const base = { forward_scheme: destination.scheme, forward_host: host, forward_port: destination.port };
  return { ...base, locations: path === '/' ? [] : [{ path: '/', ...base, forward_host: `${host}${path}` }] };
}

/** A new proxy host for a proxy; with a certificate, HTTPS is forced. */
export function newProxyHost(
  domain: string,
  destination: Destination,
  certificateId: number | null,
  mark: Mark,
): NpmProxyHostInput {
  return {
    domain_names: [domain],
    ...forwarding(destination),
    certificate_id: certificateId ?? 0,
    ssl_forced: certificateId !== null,
    allow_websocket_upgrade: true,
    meta: {
      [MARKER.installation]: mark.installationId,
      [MARKER.create]: mark.createId,
      [MARKER.createdAt]: mark.createdAt.toISOString(),
    },
  };
}

/** The mark of a host StreamGate created, or null for any other host. */
export function markOf(host: NpmProxyHost): Mark | null {
  const installationId = host.meta?.[MARKER.installation];
  const createId = host.meta?.[MARKER.create];
  const createdAt = new Date(String(host.meta?.[MARKER.createdAt]));
  if (typeof installationId !== 'string' || typeof createId !== 'string' || Number.isNaN(createdAt.getTime())) {
    return null;
  }
  return { installationId, createId, createdAt };
}

/** True when the host serves `domain` (NPM compares domains case-insensitively). */
export function servesDomain(host: Pick<NpmProxyHost, 'domain_names'>, domain: string): boolean {
  return host.domain_names.some((name) => sameDomain(name, domain));
}

/** The host's domain names with `from` replaced by `to`: other names an admin added stay. */
export function renamedDomains(host: Pick<NpmProxyHost, 'domain_names'>, from: string, to: string): string[] {
  const names = host.domain_names.map((name) => (sameDomain(name, from) ? to : name));
  return names.some((name) => sameDomain(name, to)) ? names : [to, ...names];
}

/** Where an NPM host forwards to, as a URL: a custom location `/` wins over the default one. */
export function forwardUrl(host: Pick<NpmProxyHost, 'forward_scheme' | 'forward_host' | 'forward_port' | 'locations'>) {
  const root = host.locations?.find((location) => location.path === '/') ?? host;
  const slash = root.forward_host.indexOf('/');
  const name = slash === -1 ? root.forward_host : root.forward_host.slice(0, slash);
  const path = slash === -1 ? '/' : root.forward_host.slice(slash);
  return `${root.forward_scheme}://${name}:${root.forward_port}${path}`;
}

/** NPM answers a create/update even when nginx refused the config it wrote: the reason, or null. */
export function nginxRefusal(host: NpmProxyHost): string | null {
  if (host.meta?.nginx_online !== false) return null;
  return typeof host.meta.nginx_err === 'string' && host.meta.nginx_err ? host.meta.nginx_err : 'no reason given';
}

function sameDomain(name: string, domain: string): boolean {
  return name.toLowerCase().replace(/\.$/, '') === domain;
}
