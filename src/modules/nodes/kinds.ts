import type { NodeKind } from '../../generated/prisma/enums.js';

/** The three spellings of a node kind: database enum, GraphQL type, passthrough path segment. */
export const NODE_KINDS = {
  STREAMER: { typeName: 'Streamer', pathSegment: 'streamers', label: 'streamer' },
  CACHE: { typeName: 'CacheNode', pathSegment: 'caches', label: 'cache node' },
  SLB: { typeName: 'SlbNode', pathSegment: 'slbs', label: 'SLB node' },
} as const satisfies Record<NodeKind, { typeName: string; pathSegment: string; label: string }>;

export type { NodeKind };

const byPathSegment = new Map<string, NodeKind>(
  (Object.entries(NODE_KINDS) as [NodeKind, (typeof NODE_KINDS)[NodeKind]][]).map(([kind, v]) => [v.pathSegment, kind]),
);

export function kindFromPathSegment(segment: string): NodeKind | undefined {
  return byPathSegment.get(segment);
}
