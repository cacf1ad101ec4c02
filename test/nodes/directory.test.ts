import { beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import { NodeDirectory } from '../../src/modules/nodes/directory.js';
import { countQueries, createTestDatabase } from '../helpers/db.js';

let db: Database;
let queries: { readonly total: number };
beforeAll(async () => {
  db = await createTestDatabase({ logQueries: true });
  queries = countQueries(db);
});

const create = (name: string) =>
  db.prisma.node.create({ data: { kind: 'CACHE', name, host: '127.0.0.1', apiPort: 8000 } });

describe('NodeDirectory', () => {
  it('reads a node once, then answers from memory, for its own kind only', async () => {
    const node = await create('dir-1');
    const directory = new NodeDirectory(db.prisma);
    const before = queries.total;
    const results = await Promise.all([1, 2, 3].map(() => directory.find(node.id, 'CACHE')));
    expect(results).toEqual([1, 2, 3].map(() => ({ host: '127.0.0.1', apiPort: 8000 })));
    expect(await directory.find(node.id, 'CACHE')).toEqual({ host: '127.0.0.1', apiPort: 8000 });
    expect(await directory.find(node.id, 'STREAMER')).toBeNull();
    expect(queries.total - before).toBe(1); // concurrent misses shared one lookup
  });

  it('reads the registry again after forget()', async () => {
    const node = await create('dir-2');
    const directory = new NodeDirectory(db.prisma);
    await directory.find(node.id, 'CACHE');
    await db.prisma.node.update({ where: { id: node.id }, data: { host: '127.0.0.2', apiPort: 8001 } });
    expect(await directory.find(node.id, 'CACHE')).toEqual({ host: '127.0.0.1', apiPort: 8000 }); // not told yet
    directory.forget(node.id);
    expect(await directory.find(node.id, 'CACHE')).toEqual({ host: '127.0.0.2', apiPort: 8001 });
  });

  it('remembers unknown ids without a query per request, and never queries malformed ones', async () => {
    const directory = new NodeDirectory(db.prisma);
    const before = queries.total;
    expect(await directory.find('01a20000-0000-7000-8000-00000000abcd', 'SLB')).toBeNull();
    expect(await directory.find('01a20000-0000-7000-8000-00000000abcd', 'SLB')).toBeNull();
    expect(await directory.find('not-a-uuid', 'SLB')).toBeNull();
    expect(queries.total - before).toBe(1);
  });

  it('does not remember a failed read', async () => {
    const node = await create('dir-3');
    // The registry fails once (a dropped connection, say), then answers again.
    let failures = 1;
    const flaky = {
      node: {
        findUnique: (args: Parameters<typeof db.prisma.node.findUnique>[0]) =>
          failures-- > 0 ? Promise.reject(new Error('connection lost')) : db.prisma.node.findUnique(args),
      },
    } as unknown as typeof db.prisma;
    const directory = new NodeDirectory(flaky);
    await expect(directory.find(node.id, 'CACHE')).rejects.toThrow('connection lost');
    expect(await directory.find(node.id, 'CACHE')).toEqual({ host: '127.0.0.1', apiPort: 8000 });
  });
});
