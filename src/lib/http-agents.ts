import { Agent } from 'undici';
import type { OutboundPolicy } from './outbound.js';

/**
 * The app's outbound HTTP pools, every connection through the outbound address policy. Built once
 * by the wiring and destroyed by it after every module has stopped, so that no check or call still
 * under way during shutdown finds its pool gone.
 */
export interface HttpAgents {
  /** Where StreamGate may connect (OUTBOUND_DENY / OUTBOUND_ALLOW): for checks outside these pools. */
  readonly policy: OutboundPolicy;
  /**
   * Node APIs (typed clients, health checks, the passthrough): one keep-alive pool per node
   * origin, shared by all of them.
   */
  readonly nodes: Agent;
  /**
   * Proxy destinations and route upstreams (validation, health checks, the data plane). Its own
   * pool: these are not node APIs, and each is one host among many. Nginx Proxy Manager has its own.
   */
  readonly upstreams: Agent;
  destroy(): Promise<void>;
}

export function createHttpAgents(policy: OutboundPolicy): HttpAgents {
  const connect = policy.connector({ timeout: 5_000 });
  const nodes = new Agent({ keepAliveTimeout: 10_000, connect, connections: 256 });
  const upstreams = new Agent({ keepAliveTimeout: 10_000, connect });
  return {
    policy,
    nodes,
    upstreams,
    destroy: async () => {
      await Promise.all([nodes.destroy(), upstreams.destroy()]);
    },
  };
}
