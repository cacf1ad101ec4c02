import type { Db } from '../../../db/client.js';
import { readInPages } from '../../../db/pages.js';
import type { RouteSpec } from '../types.js';
import type { RouteProvider } from './provider.js';
import { type RowsProviderDeps, rowsRouteProvider } from './rows.js';

const columns = { id: true, domain: true, destination: true } as const;

function toSpec(p: { id: string; domain: string; destination: string }): RouteSpec {
  return {
    kind: 'HTTP',
    alias: p.domain,
    provider: 'proxies',
    origin: `proxy ${p.id}`,
    ref: { kind: 'proxy', id: p.id },
    upstream: p.destination,
  };
}

/** Every StreamGate proxy is an HTTP route keyed by its domain, to its destination. */
export function proxiesRouteProvider(db: Db, deps: RowsProviderDeps): RouteProvider {
  return rowsRouteProvider(
    {
      name: 'proxies',
      changes: ['proxy.created', 'proxy.updated', 'proxy.deleted'],
      async loadAll() {
        // Oldest first (ids are UUIDv7): the order routes are listed in.
        const page = (after: string | undefined, take: number) =>
          db.proxy.findMany({
            select: columns,
            where: after ? { id: { gt: after } } : {},
            orderBy: { id: 'asc' },
            take,
          });
        return (await readInPages(page)).map(toSpec);
      },
      async loadOne(id) {
        const row = await db.proxy.findUnique({ where: { id }, select: columns });
        return row && toSpec(row);
      },
    },
    deps,
  );
}
