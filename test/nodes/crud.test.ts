import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../generated/gql.js';
import type { StreamersQuery, StreamersQueryVariables } from '../generated/graphql.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';

const CreateStreamer = graphql(`
  mutation CreateStreamer($input: CreateStreamerInput!) {
    createStreamer(input: $input) { id kind name host httpPort apiPort status lastPingedAt health { status uptimeSeconds } createdAt updatedAt }
  }
`);
const CreateCache = graphql(`
  mutation CreateCache($input: CreateNodeInput!) { createCacheNode(input: $input) { id kind name host apiPort } }
`);
const CreateSlb = graphql(`
  mutation CreateSlb($input: CreateNodeInput!) { createSlbNode(input: $input) { id kind name } }
`);
const UpdateStreamer = graphql(`
  mutation UpdateStreamer($id: ID!, $input: UpdateStreamerInput!) {
    updateStreamer(id: $id, input: $input) { id name host httpPort apiPort updatedAt }
  }
`);
const UpdateCache = graphql(`
  mutation UpdateCache($id: ID!, $input: UpdateNodeInput!) { updateCacheNode(id: $id, input: $input) { id name host apiPort } }
`);
const DeleteSlb = graphql(`mutation DeleteSlb($id: ID!) { deleteSlbNode(id: $id) }`);
const DeleteStreamer = graphql(`mutation DeleteStreamer($id: ID!) { deleteStreamer(id: $id) }`);
const Streamers = graphql(`
  query Streamers($first: Int, $after: String) {
    streamers(first: $first, after: $after) {
      edges { cursor node { id name } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
`);
const CacheNodes = graphql(`query CacheNodes { cacheNodes { edges { node { id name } } } }`);
const Lookups = graphql(`
  query Lookups($id: ID!) {
    streamer(id: $id) { id name }
    cacheNode(id: $id) { id }
    slbNode(id: $id) { id }
    infraNode(id: $id) { __typename id kind name ... on Streamer { httpPort } }
  }
`);

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

const streamer = (name: string, extra: Partial<{ host: string; httpPort: number; apiPort: number }> = {}) => ({
  name,
  host: '10.0.0.1',
  httpPort: 8080,
  apiPort: 8081,
  ...extra,
});

describe('node registry CRUD', () => {
  it('creates, reads, updates and deletes a streamer', async () => {
    const created = await app.gql(CreateStreamer, { input: streamer('crud-s1') });
    const s = created.data?.createStreamer;
    expect(created.errors).toBeUndefined();
    expect(s).toMatchObject({
      kind: 'STREAMER',
      name: 'crud-s1',
      host: '10.0.0.1',
      httpPort: 8080,
      apiPort: 8081,
      status: 'UNKNOWN',
      lastPingedAt: null,
      health: { status: 'UNKNOWN', uptimeSeconds: null },
    });
    const id = s?.id ?? '';

    const read = await app.gql(Lookups, { id });
    expect(read.data).toMatchObject({
      streamer: { id, name: 'crud-s1' },
      cacheNode: null, // ids are unique across kinds, but a streamer is not a cache node
      slbNode: null,
      infraNode: { __typename: 'Streamer', id, kind: 'STREAMER', httpPort: 8080 },
    });

    const updated = await app.gql(UpdateStreamer, { id, input: { host: 'edge-1.example.com', apiPort: 9000 } });
    expect(updated.data?.updateStreamer).toMatchObject({
      name: 'crud-s1',
      host: 'edge-1.example.com',
      httpPort: 8080,
      apiPort: 9000,
    });
    expect(new Date(updated.data?.updateStreamer.updatedAt ?? 0).getTime()).toBeGreaterThanOrEqual(
      new Date(s?.updatedAt ?? 0).getTime(),
    );

    const deleted = await app.gql(DeleteStreamer, { id });
    expect(deleted.data?.deleteStreamer).toBe(id);
    expect((await app.gql(Lookups, { id })).data?.infraNode).toBeNull();
  });

  it('keeps cache and SLB nodes apart from streamers, each with its own kind', async () => {
    const cache = await app.gql(CreateCache, { input: { name: 'crud-c1', host: '192.168.1.5', apiPort: 7000 } });
    const slb = await app.gql(CreateSlb, { input: { name: 'crud-c1', host: '::1', apiPort: 7001 } });
    expect(cache.data?.createCacheNode.kind).toBe('CACHE');
    expect(slb.data?.createSlbNode).toMatchObject({ kind: 'SLB', name: 'crud-c1' }); // same name, other kind: fine
    const lookup = await app.gql(Lookups, { id: slb.data?.createSlbNode.id ?? '' });
    expect(lookup.data?.infraNode?.__typename).toBe('SlbNode');
    const caches = await app.gql(CacheNodes, {});
    const names = caches.data?.cacheNodes.edges.map((e) => e.node.name);
    expect(names).toContain('crud-c1');
    expect(caches.data?.cacheNodes.edges.map((e) => e.node.id)).not.toContain(slb.data?.createSlbNode.id);
  });

  it('pages through streamers with cursors, in creation order, without gaps or repeats', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `page-${i}`);
    for (const name of names) await app.gql(CreateStreamer, { input: streamer(name) });
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const page: Awaited<ReturnType<typeof app.gql<StreamersQuery, StreamersQueryVariables>>> = await app.gql(
        Streamers,
        { first: 3, after },
      );
      const conn = page.data?.streamers;
      expect(page.errors).toBeUndefined();
      seen.push(...(conn?.edges.map((e) => e.node.name) ?? []));
      expect(conn?.pageInfo.hasPreviousPage).toBe(after !== null);
      expect(conn?.pageInfo.endCursor).toBe(conn?.edges.at(-1)?.cursor ?? null);
      pages++;
      if (!conn?.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor ?? null;
    }
    const paged = seen.filter((n) => n.startsWith('page-'));
    expect(paged).toEqual(names);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('renames a cache node and deletes an SLB node', async () => {
    const cache = await app.gql(CreateCache, { input: { name: 'rename-me', host: 'cache.local', apiPort: 80 } });
    const id = cache.data?.createCacheNode.id ?? '';
    const renamed = await app.gql(UpdateCache, { id, input: { name: 'renamed' } });
    expect(renamed.data?.updateCacheNode).toMatchObject({ id, name: 'renamed', host: 'cache.local', apiPort: 80 });
    const slb = await app.gql(CreateSlb, { input: { name: 'gone-soon', host: 'lb.local', apiPort: 81 } });
    const slbId = slb.data?.createSlbNode.id ?? '';
    expect((await app.gql(DeleteSlb, { id: slbId })).data?.deleteSlbNode).toBe(slbId);
    expect(codes(await app.gql(DeleteSlb, { id: slbId }))).toEqual(['NOT_FOUND']);
  });

  it('forgets the health of a node given a new address (UNKNOWN until checked), not of a renamed or re-sent one', async () => {
    const cache = await app.gql(CreateCache, { input: { name: 'moving', host: 'old.local', apiPort: 80 } });
    const id = cache.data?.createCacheNode.id ?? '';
    const checked = {
      status: 'HEALTHY',
      lastPingedAt: new Date(),
      healthLatencyMs: 3,
      healthySince: new Date(),
    } as const;
    const health = async () =>
      (await app.gql(`{ cacheNode(id: "${id}") { status health { status checkedAt latencyMs uptimeSeconds } } }`)).data;
    await app.db.prisma.node.update({ where: { id }, data: checked });

    await app.gql(UpdateCache, { id, input: { name: 'moving-renamed' } });
    expect(await health()).toMatchObject({ cacheNode: { status: 'HEALTHY', health: { latencyMs: 3 } } });
    // The full input again, same address: not a move.
    await app.gql(UpdateCache, { id, input: { name: 'moving-renamed', host: 'old.local', apiPort: 80 } });
    expect(await health()).toMatchObject({ cacheNode: { status: 'HEALTHY', health: { latencyMs: 3 } } });

    await app.gql(UpdateCache, { id, input: { apiPort: 8080 } });
    expect(await health()).toEqual({
      cacheNode: {
        status: 'UNKNOWN',
        health: { status: 'UNKNOWN', checkedAt: null, latencyMs: null, uptimeSeconds: null },
      },
    });
  });
});

describe('node registry bad input', () => {
  it('rejects a duplicate name of the same kind with CONFLICT and writes nothing', async () => {
    await app.gql(CreateStreamer, { input: streamer('dup') });
    const again = await app.gql(CreateStreamer, { input: streamer('dup', { host: '10.9.9.9' }) });
    expect(codes(again)).toEqual(['CONFLICT']);
    expect(again.errors?.[0]?.extensions?.field).toBe('input.name');
    expect(await app.db.prisma.node.count({ where: { name: 'dup' } })).toBe(1);
    expect(await app.db.prisma.node.count({ where: { host: '10.9.9.9' } })).toBe(0);
  });

  it('rejects renaming onto an existing name with CONFLICT and leaves both nodes unchanged', async () => {
    const a = await app.gql(CreateCache, { input: { name: 'taken-a', host: 'a.local', apiPort: 1 } });
    await app.gql(CreateCache, { input: { name: 'taken-b', host: 'b.local', apiPort: 2 } });
    const res = await app.gql(UpdateCache, {
      id: a.data?.createCacheNode.id ?? '',
      input: { name: 'taken-b', host: 'changed.local' },
    });
    expect(codes(res)).toEqual(['CONFLICT']);
    const row = await app.db.prisma.node.findUnique({ where: { id: a.data?.createCacheNode.id ?? '' } });
    expect(row).toMatchObject({ name: 'taken-a', host: 'a.local' });
  });

  it.each([
    ['input.apiPort', { apiPort: 0 }],
    ['input.apiPort', { apiPort: 65536 }],
    ['input.httpPort', { httpPort: -1 }],
    ['input.name', { name: '' }],
    ['input.name', { name: '   ' }],
    ['input.name', { name: 'has space' }],
    ['input.host', { host: 'http://10.0.0.1' }],
    ['input.host', { host: '10.0.0.1/api' }],
    ['input.host', { host: 'edge 1.example.com' }],
    ['input.host', { host: 'edge.example.com:8080' }],
    ['input.host', { host: '' }],
  ])('rejects %s in %j with BAD_USER_INPUT naming the field, writing nothing', async (field, bad) => {
    const before = await app.db.prisma.node.count();
    const res = await app.gql(CreateStreamer, { input: { ...streamer(`bad-${before}`), ...bad } });
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.errors?.[0]?.extensions?.field).toBe(field);
    expect(res.errors?.[0]?.message).toContain(field);
    expect(await app.db.prisma.node.count()).toBe(before);
  });

  it('rejects an update with a bad value and leaves the node as it was', async () => {
    const c = await app.gql(CreateCache, { input: { name: 'stable', host: 'stable.local', apiPort: 3000 } });
    const id = c.data?.createCacheNode.id ?? '';
    const res = await app.gql(UpdateCache, { id, input: { host: 'ok.local', apiPort: 99999 } });
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.errors?.[0]?.extensions?.field).toBe('input.apiPort');
    expect(await app.db.prisma.node.findUnique({ where: { id } })).toMatchObject({
      host: 'stable.local',
      apiPort: 3000,
    });
    const nulled = await app.gql(UpdateCache, { id, input: { name: null } });
    expect(codes(nulled)).toEqual(['BAD_USER_INPUT']);
  });

  it('answers unknown and malformed ids with null for queries and NOT_FOUND for mutations', async () => {
    for (const id of ['01a20000-0000-7000-8000-000000000000', 'not-a-uuid', '\'; DROP TABLE "Node"; --']) {
      const read = await app.gql(Lookups, { id });
      expect(read.errors).toBeUndefined();
      expect(read.data).toEqual({ streamer: null, cacheNode: null, slbNode: null, infraNode: null });
      expect(codes(await app.gql(UpdateStreamer, { id, input: { name: 'x' } }))).toEqual(['NOT_FOUND']);
      expect(codes(await app.gql(DeleteStreamer, { id }))).toEqual(['NOT_FOUND']);
    }
  });

  it('rejects bad page arguments and foreign cursors with BAD_USER_INPUT', async () => {
    expect(codes(await app.gql(Streamers, { first: -1 }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await app.gql(Streamers, { first: 101 }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await app.gql(Streamers, { after: 'garbage' }))).toEqual(['BAD_USER_INPUT']);
    const foreign = Buffer.from('event:01a20000-0000-7000-8000-000000000000').toString('base64url');
    expect(codes(await app.gql(Streamers, { after: foreign }))).toEqual(['BAD_USER_INPUT']);
  });
});
