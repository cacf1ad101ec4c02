import type { Proxy as ProxyRow } from '../../generated/prisma/client.js';
import { forwardUrl, markOf, servesDomain } from './npm/mapping.js';
import type { NpmProxyHost } from './npm/types.js';
import type { NpmSync } from './sync.js';

/** One line of the merged view: a StreamGate proxy, or a proxy host only NPM knows. */
export interface ProxyListing {
  source: 'STREAMGATE' | 'NPM';
  /** NPM's own hosts are shown, never changed, by StreamGate. */
  readOnly: boolean;
  domains: string[];
  destination: string;
  proxy: ProxyRow | null;
  npmHostId: number | null;
  /** For a StreamGate proxy with sync on: its NPM host exists and forwards as the proxy says. */
  inSync: boolean | null;
  enabled: boolean;
  sslCertificateId: number | null;
}

export interface NpmStatus {
  enabled: boolean;
  /** Null when sync is off. */
  reachable: boolean | null;
  error: string | null;
}

export interface AllProxies {
  items: ProxyListing[];
  npm: NpmStatus;
}

/**
 * StreamGate's proxies plus every other proxy host NPM has. When NPM cannot be read, StreamGate's
 * proxies are still listed and `npm` says why the rest is missing.
 */
export async function mergeListing(proxies: ProxyRow[], npm: NpmSync | null): Promise<AllProxies> {
  if (!npm) {
    return { items: proxies.map((p) => ours(p, null)), npm: { enabled: false, reachable: null, error: null } };
  }
  let hosts: NpmProxyHost[];
  try {
    hosts = await npm.listHosts();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { items: proxies.map((p) => ours(p, null)), npm: { enabled: true, reachable: false, error: message } };
  }
  const byId = new Map(hosts.map((h) => [h.id, h]));
  const claimed = new Set(proxies.map((p) => p.npmHostId).filter((id) => id !== null));
  const items = proxies.map((p) => ours(p, p.npmHostId === null ? undefined : (byId.get(p.npmHostId) ?? undefined)));
  for (const host of hosts) if (!claimed.has(host.id)) items.push(theirs(host));
  return { items, npm: { enabled: true, reachable: true, error: null } };
}

/** `host`: null when NPM is not consulted, undefined when it has no host for the proxy. */
function ours(proxy: ProxyRow, host: NpmProxyHost | null | undefined): ProxyListing {
  return {
    source: 'STREAMGATE',
    readOnly: false,
    domains: [proxy.domain],
    destination: proxy.destination,
    proxy,
    npmHostId: proxy.npmHostId,
    inSync: host === null ? null : host !== undefined && inStep(proxy, host),
    enabled: host?.enabled ?? true,
    sslCertificateId: proxy.sslCertificateId,
  };
}

function theirs(host: NpmProxyHost): ProxyListing {
  return {
    source: 'NPM',
    // An unclaimed host a StreamGate made is an orphan of a failed create; still not ours to edit here.
    readOnly: true,
    domains: host.domain_names,
    destination: forwardUrl(host),
    proxy: null,
    npmHostId: host.id,
    inSync: markOf(host) ? false : null,
    enabled: host.enabled,
    sslCertificateId: host.certificate_id || null,
  };
}

/** The host serves the proxy's domain (among any others an admin added) and forwards to its destination. */
function inStep(proxy: ProxyRow, host: NpmProxyHost): boolean {
  // URL.canParse: a host edited by hand in NPM may forward to something that is no URL at all.
  const forwarded = forwardUrl(host);
  return (
    servesDomain(host, proxy.domain) &&
    URL.canParse(forwarded) &&
    new URL(forwarded).href === new URL(proxy.destination).href
  );
}
