import { afterAll } from 'vitest';

/**
 * Everything a test file starts (servers, apps, databases) registers its disposer here and is
 * closed after the file, even when a test fails half-way (graphql-ws' tservers "leftovers").
 */
const leftovers: (() => Promise<unknown> | unknown)[] = [];

export function dispose<T>(resource: T, close: (resource: T) => Promise<unknown> | unknown): T {
  leftovers.push(() => close(resource));
  return resource;
}

afterAll(async () => {
  const closing = leftovers.splice(0).reverse();
  for (const close of closing) await close();
});
