import { onRemoteWrite } from '../../db/write-clock.js';
import type { EventBus } from '../events/index.js';
import type { HealthMonitor } from '../health/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { NodeService } from './service.js';
import './schema.js'; // registers the module's GraphQL types

/** Streamer, cache and SLB nodes: the registry, ping, typed clients for each node's own API. */
export const nodesModule = defineModule({
  name: 'nodes',
  create: ({ db, database, env, http, events, health }: CoreDeps & { events: EventBus; health: HealthMonitor }) => {
    const nodes = new NodeService({
      db,
      events,
      health,
      agent: http.nodes,
      policy: http.policy,
      checkTimeoutMs: env.HEALTH_CHECK_TIMEOUT_MS,
    });
    // A node changed through another instance: the passthrough reads the registry again.
    onRemoteWrite(database.writes, ['Node'], () => nodes.directory.clear());
    return nodes;
  },
  healthSources: (nodes) => [nodes.healthSource],
});

export { NodeCallBudget } from './budget.js';
export {
  classifyNetworkError,
  describeNetworkError,
  NodeApiClient,
  type NodeEndpoint,
  nodeOrigin,
} from './clients/index.js';
export type { NodeDirectory } from './directory.js';
export { kindFromPathSegment, NODE_KINDS, type NodeKind } from './kinds.js';
export { InfraNode } from './schema.js';
export { healthOf, type Node, NodeService } from './service.js';
