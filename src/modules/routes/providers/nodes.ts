import { isIPv6 } from 'node:net';
import type { Db } from '../../../db/client.js';
import { readInPages } from '../../../db/pages.js';
import type { NodeKind } from '../../nodes/index.js';
import type { RouteSpec } from '../types.js';
import type { RouteProvider } from './provider.js';
import { type RowsProviderDeps, rowsRouteProvider } from './rows.js';

/** The `{kind}` of a node route's alias `{kind}-{name}`. */
export const NODE_ALIAS_PREFIX = { STREAMER: 'streamer', CACHE: 'cache', SLB: 'slb' } as const satisfies Record<
  NodeKind,
  string
>;

const columns = { id: true, kind: true, name: true, host: true, apiPort: true } as const;

function toSpec(n: { id: string; kind: NodeKind; name: string; host: string; apiPort: number }): RouteSpec {
  return {
    kind: 'HTTP',
    alias: `${NODE_ALIAS_PREFIX[n.kind]}-${n.name}`,
    provider: 'nodes',
    origin: `node ${n.id}`,
    ref: { kind: 'node', id: n.id },
    upstream: `http://${isIPv6(n.host) ? `[${n.host}]` : n.host}:${n.apiPort}`,
  };
}

/** Every node is an HTTP route to its own API, alias `{kind}-{name}` (`streamer-eu-1`). */
export function nodesRouteProvider(db: Db, deps: RowsProviderDeps): RouteProvider {
  return rowsRouteProvider(
    {
      name: 'nodes',
      changes: ['node.created', 'node.updated', 'node.deleted'],
      async loadAll() {
        const page = (after: string | undefined, take: number) =>
          db.node.findMany({
            select: columns,
            where: after ? { id: { gt: after } } : {},
            orderBy: { id: 'asc' },
            take,
          });
        return (await readInPages(page)).map(toSpec);
      },
      async loadOne(id) {
        const row = await db.node.findUnique({ where: { id }, select: columns });
        return row && toSpec(row);
      },
    },
    deps,
  );
}
