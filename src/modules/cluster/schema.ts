import { builder } from '../../graphql/builder.js';
import type { ClusterInstance, ClusterStatus } from './service.js';

const ClusterInstanceRef = builder.objectRef<ClusterInstance>('ClusterInstance').implement({
  description: 'One StreamGate process serving this deployment.',
  fields: (t) => ({
    id: t.exposeString('id', { description: 'INSTANCE_ID (or host:port), plus a per-process suffix when clustered.' }),
    leader: t.exposeBoolean('leader', { description: 'Runs the scheduled health checks and the retention purge.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    heartbeatAt: t.expose('heartbeatAt', {
      type: 'DateTime',
      description: 'When it last said it was alive (every second).',
    }),
  }),
});

const ClusterRef = builder.objectRef<ClusterStatus>('Cluster').implement({
  description:
    'The instances serving this deployment (several with REDIS_URL; README "Scaling out"), and which one leads.',
  fields: (t) => ({
    self: t.exposeString('self', { description: 'The instance that answered.' }),
    leader: t.exposeString('leader', { nullable: true, description: 'The leading instance; null while none leads.' }),
    instances: t.field({ type: [ClusterInstanceRef], resolve: (s) => s.instances }),
    redis: t.exposeBoolean('redis', {
      description: 'False when Redis could not be read: only this instance is listed.',
    }),
  }),
});

builder.queryField('cluster', (t) =>
  t.field({
    type: ClusterRef,
    description: 'Who serves this deployment: the instances, their last heartbeat, and the leader.',
    authScopes: { viewer: true },
    resolve: (_root, _args, ctx) => ctx.cluster.status(),
  }),
);
