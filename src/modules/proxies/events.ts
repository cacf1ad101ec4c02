import type { EventOf } from '../events/index.js';

type ProxyRef = { id: string; domain: string };

declare module '../events/index.js' {
  interface EventCatalog {
    'proxy.created': EventOf<'proxy.created', 'proxies', ProxyRef & { destination: string; npmHostId: number | null }>;
    'proxy.updated': EventOf<'proxy.updated', 'proxies', ProxyRef & { changes: Record<string, unknown> }>;
    'proxy.deleted': EventOf<'proxy.deleted', 'proxies', ProxyRef & { destination: string; npmHostId: number | null }>;
    /** Nginx Proxy Manager and StreamGate disagree and could not be put back in step by themselves. */
    'proxy.npm_out_of_step': EventOf<
      'proxy.npm_out_of_step',
      'proxies',
      { proxyId: string | null; domain: string; npmHostId: number | null; operation: string; error: string }
    >;
    /** A proxy host StreamGate created earlier but never recorded (its database write failed) was removed. */
    'proxy.npm_orphan_removed': EventOf<'proxy.npm_orphan_removed', 'proxies', { domain: string; npmHostId: number }>;
  }
}
