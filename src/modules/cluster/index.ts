import type { EventBus } from '../events/index.js';
import type { HealthMonitor } from '../health/index.js';
import { type CoreDeps, defineModule } from '../module.js';
import { ClusterService } from './service.js';
import './schema.js'; // registers the module's GraphQL types

/**
 * Several instances of one deployment (REDIS_URL with DATABASE_URL): writes announced, the event
 * log and health transitions shared, one leader. Listed right after health, which it sets up
 * (follow until leading) before anything starts.
 */
export const clusterModule = defineModule({
  name: 'cluster',
  create: ({ env, database, log, events, health }: CoreDeps & { events: EventBus; health: HealthMonitor }) =>
    new ClusterService({ env, database, log, events, health }),
  start: (cluster) => cluster.start(),
  stop: (cluster) => cluster.stop(),
});

export type { ClaimResult, RelayedFrame, RelayLink, RelayRole } from './relay-link.js';
export { type ClusterInstance, ClusterService, type ClusterStatus } from './service.js';
