import type { ObjectRef } from '@pothos/core';
import type { Page } from '../lib/pagination.js';
import type { HealthInfoShape } from '../modules/health/index.js';
import { type BuilderTypes, builder } from './builder.js';

export const HealthStatusEnum = builder.enumType('HealthStatus', {
  values: ['UNKNOWN', 'HEALTHY', 'UNHEALTHY'] as const,
});

export type { HealthInfoShape };

export const HealthInfo = builder.objectRef<HealthInfoShape>('HealthInfo').implement({
  description: 'Health as last observed: GoDoxy-style status, uptime, latency and detail.',
  fields: (t) => ({
    status: t.field({ type: HealthStatusEnum, resolve: (h) => h.status }),
    checkedAt: t.field({ type: 'DateTime', nullable: true, resolve: (h) => h.checkedAt }),
    latencyMs: t.float({ nullable: true, resolve: (h) => h.latencyMs }),
    uptimeSeconds: t.float({ nullable: true, resolve: (h) => h.uptimeSeconds }),
    detail: t.string({ nullable: true, resolve: (h) => h.detail }),
  }),
});

const PageInfo = builder.objectRef<Page<unknown>['pageInfo']>('PageInfo').implement({
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    hasPreviousPage: t.exposeBoolean('hasPreviousPage'),
    startCursor: t.exposeString('startCursor', { nullable: true }),
    endCursor: t.exposeString('endCursor', { nullable: true }),
  }),
});

/** `{Name}Connection` and `{Name}Edge` for a node type, relay style (forward pagination). */
export function connectionOf<T>(name: string, nodeType: ObjectRef<BuilderTypes, T>) {
  const Edge = builder.objectRef<Page<T>['edges'][number]>(`${name}Edge`).implement({
    fields: (t) => ({
      cursor: t.exposeString('cursor'),
      // Pothos cannot relate a generic T to the ref's shape; the signature already ties them.
      node: t.field({ type: nodeType, resolve: (edge) => edge.node as never }),
    }),
  });
  return builder.objectRef<Page<T>>(`${name}Connection`).implement({
    fields: (t) => ({
      edges: t.field({ type: [Edge], resolve: (page) => page.edges }),
      pageInfo: t.field({ type: PageInfo, resolve: (page) => page.pageInfo }),
    }),
  });
}
