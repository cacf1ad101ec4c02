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

/** The loaders of one operation (`operation`: its GraphQL context, or any object that lives as long). */
export function originLoaders(db: Db, operation: object): OriginLoaders {
  let loaders = perOperation.get(operation);
  if (!loaders) {
    loaders = {
      proxy: new DataLoader(async (ids) => inOrder(ids, await db.proxy.findMany({ where: { id: { in: [...ids] } } }))),
      node: new DataLoader(async (ids) => inOrder(ids, await db.node.findMany({ where: { id: { in: [...ids] } } }))),
    };
    perOperation.set(operation, loaders);
  }
  return loaders;
}

function inOrder<T extends { id: string }>(ids: readonly string[], rows: T[]): (T | null)[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id) ?? null);
}
