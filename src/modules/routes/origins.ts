import DataLoader from 'dataloader';
import type { Db } from '../../db/client.js';
import type { Node, Proxy as ProxyRow } from '../../generated/prisma/client.js';

/**
 * The proxy and node rows routes were made from, read in one query per kind however many routes a
 * response lists (DataLoader batches the loads of one tick). One set per operation: rows are never
 * cached across operations, so a change shows in the very next read.
 */
export interface OriginLoaders {
  proxy: DataLoader<string, ProxyRow | null>;
  node: DataLoader<string, Node | null>;
}

const perOperation = new WeakMap<object, OriginLoaders>();

export function originLoaders(ctx: { db: Db }): OriginLoaders {
  let loaders = perOperation.get(ctx);
  if (!loaders) {
    const { db } = ctx;
    loaders = {
      proxy: new DataLoader(async (ids) => inOrder(ids, await db.proxy.findMany({ where: { id: { in: [...ids] } } }))),
      node: new DataLoader(async (ids) => inOrder(ids, await db.node.findMany({ where: { id: { in: [...ids] } } }))),
    };
    perOperation.set(ctx, loaders);
  }
  return loaders;
}

function inOrder<T extends { id: string }>(ids: readonly string[], rows: T[]): (T | null)[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id) ?? null);
}
