import type { CreateNodeInput, CreateStreamerInput, StreamGateClient, UpdateNodeInput } from '@streamgate/client';
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { rejection, sdkClient } from '../helpers/sdk.js';

let app: TestApp;
let sg: StreamGateClient;
beforeAll(async () => {
  app = await startTestApp();
  sg = sdkClient(app);
});

const createStreamer = async (input: CreateStreamerInput) => (await sg.createStreamer({ input })).createStreamer;
const createCache = async (input: CreateNodeInput) => (await sg.createCacheNode({ input })).createCacheNode;
const createSlb = async (input: CreateNodeInput) => (await sg.createSlbNode({ input })).createSlbNode;
const updateCache = async (id: string, input: UpdateNodeInput) =>
  (await sg.updateCacheNode({ id, input })).updateCacheNode;
/** An id looked up as every kind, and as any node. */
async function lookups(id: string) {
  const [{ streamer }, { cacheNode }, { slbNode }, { infraNode }] = await Promise.all([
    sg.streamer({ id }),
    sg.cacheNode({ id }),
    sg.slbNode({ id }),
    sg.infraNode({ id }),
  ]);
  return { streamer, cacheNode, slbNode, infraNode };
}
const code = async (call: Promise<unknown>) => (await rejection(call)).code;

const streamer = (name: string, extra: Partial<{ host: string; httpPort: number; apiPort: number }> = {}) => ({
  name,
  host: '10.0.0.1',
  httpPort: 8080,
  apiPort: 8081,
  ...extra,
});

describe('node registry CRUD', () => {
  it('creates, reads, updates and deletes a streamer', async () => {
    const s = await createStreamer(streamer('crud-s1'));
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
    const { id } = s;

    expect(await lookups(id)).toMatchObject({
      streamer: { id, name: 'crud-s1' },
      cacheNode: null, // ids are unique across kinds, but a streamer is not a cache node
      slbNode: null,
      infraNode: { __typename: 'Streamer', id, kind: 'STREAMER' },
    });

    const { updateStreamer: updated } = await sg.updateStreamer({
      id,
      input: { host: 'edge-1.example.com', apiPort: 9000 },
    });
    expect(updated).toMatchObject({
      name: 'crud-s1',
      host: 'edge-1.example.com',
      httpPort: 8080,
      apiPort: 9000,
    });
    expect(new Date(updated.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(s.updatedAt).getTime());

    expect((await sg.deleteStreamer({ id })).deleteStreamer).toBe(id);
    expect((await lookups(id)).infraNode).toBeNull();
  });

  it('keeps cache and SLB nodes apart from streamers, each with its own kind', async () => {
    const cache = await createCache({ name: 'crud-c1', host: '192.168.1.5', apiPort: 7000 });
    const slb = await createSlb({ name: 'crud-c1', host: '::1', apiPort: 7001 });
    expect(cache.kind).toBe('CACHE');
    expect(slb).toMatchObject({ kind: 'SLB', name: 'crud-c1' }); // same name, other kind: fine
    expect((await lookups(slb.id)).infraNode?.__typename).toBe('SlbNode');
    const { cacheNodes } = await sg.cacheNodes({ first: 100 });
    expect(cacheNodes.edges.map((e) => e.node.name)).toContain('crud-c1');
    expect(cacheNodes.edges.map((e) => e.node.id)).not.toContain(slb.id);
  });

  it('pages through streamers with cursors, in creation order, without gaps or repeats', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `page-${i}`);
    for (const name of names) await createStreamer(streamer(name));
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const { streamers: conn } = await sg.streamers({ first: 3, after });
      seen.push(...conn.edges.map((e) => e.node.name));
      expect(conn.pageInfo.hasPreviousPage).toBe(after !== null);
      expect(conn.pageInfo.endCursor).toBe(conn.edges.at(-1)?.cursor ?? null);
      pages++;
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor ?? null;
    }
    const paged = seen.filter((n) => n.startsWith('page-'));
    expect(paged).toEqual(names);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('renames a cache node and deletes an SLB node', async () => {
    const { id } = await createCache({ name: 'rename-me', host: 'cache.local', apiPort: 80 });
    expect(await updateCache(id, { name: 'renamed' })).toMatchObject({
      id,
      name: 'renamed',
      host: 'cache.local',
      apiPort: 80,
    });
    const slb = await createSlb({ name: 'gone-soon', host: 'lb.local', apiPort: 81 });
    expect((await sg.deleteSlbNode({ id: slb.id })).deleteSlbNode).toBe(slb.id);
    expect(await code(sg.deleteSlbNode({ id: slb.id }))).toBe('NOT_FOUND');
  });

  it('forgets the health of a node given a new address (UNKNOWN until checked), not of a renamed or re-sent one', async () => {
    const { id } = await createCache({ name: 'moving', host: 'old.local', apiPort: 80 });
    const checked = {
      status: 'HEALTHY',
      lastPingedAt: new Date(),
      healthLatencyMs: 3,
      healthySince: new Date(),
    } as const;
    const health = async () => {
      const { cacheNode } = await sg.cacheNode({ id });
      return { cacheNode: cacheNode && { status: cacheNode.status, health: cacheNode.health } };
    };
    await app.db.prisma.node.update({ where: { id }, data: checked });

    await updateCache(id, { name: 'moving-renamed' });
    expect(await health()).toMatchObject({ cacheNode: { status: 'HEALTHY', health: { latencyMs: 3 } } });
    // The full input again, same address: not a move.
    await updateCache(id, { name: 'moving-renamed', host: 'old.local', apiPort: 80 });
    expect(await health()).toMatchObject({ cacheNode: { status: 'HEALTHY', health: { latencyMs: 3 } } });

    await updateCache(id, { apiPort: 8080 });
    expect(await health()).toEqual({
      cacheNode: {
        status: 'UNKNOWN',
        health: { status: 'UNKNOWN', checkedAt: null, latencyMs: null, uptimeSeconds: null, detail: null },
      },
    });
  });
});

describe('node registry bad input', () => {
  it('rejects a duplicate name of the same kind with CONFLICT and writes nothing', async () => {
    await createStreamer(streamer('dup'));
    const again = await rejection(createStreamer(streamer('dup', { host: '10.9.9.9' })));
    expect(again).toMatchObject({ code: 'CONFLICT', field: 'input.name' });
    expect(await app.db.prisma.node.count({ where: { name: 'dup' } })).toBe(1);
    expect(await app.db.prisma.node.count({ where: { host: '10.9.9.9' } })).toBe(0);
  });

  it('rejects renaming onto an existing name with CONFLICT and leaves both nodes unchanged', async () => {
    const a = await createCache({ name: 'taken-a', host: 'a.local', apiPort: 1 });
    await createCache({ name: 'taken-b', host: 'b.local', apiPort: 2 });
    expect(await code(updateCache(a.id, { name: 'taken-b', host: 'changed.local' }))).toBe('CONFLICT');
    const row = await app.db.prisma.node.findUnique({ where: { id: a.id } });
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
    const error = await rejection(createStreamer({ ...streamer(`bad-${before}`), ...bad }));
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(error.message).toContain(field);
    expect(await app.db.prisma.node.count()).toBe(before);
  });

  it('rejects an update with a bad value and leaves the node as it was', async () => {
    const { id } = await createCache({ name: 'stable', host: 'stable.local', apiPort: 3000 });
    const error = await rejection(updateCache(id, { host: 'ok.local', apiPort: 99999 }));
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.apiPort' });
    expect(await app.db.prisma.node.findUnique({ where: { id } })).toMatchObject({
      host: 'stable.local',
      apiPort: 3000,
    });
    expect(await code(updateCache(id, { name: null }))).toBe('BAD_USER_INPUT');
  });

  it('answers unknown and malformed ids with null for queries and NOT_FOUND for mutations', async () => {
    for (const id of ['01a20000-0000-7000-8000-000000000000', 'not-a-uuid', '\'; DROP TABLE "Node"; --']) {
      expect(await lookups(id)).toEqual({ streamer: null, cacheNode: null, slbNode: null, infraNode: null });
      expect(await code(sg.updateStreamer({ id, input: { name: 'x' } }))).toBe('NOT_FOUND');
      expect(await code(sg.deleteStreamer({ id }))).toBe('NOT_FOUND');
    }
  });

  it('rejects bad page arguments and foreign cursors with BAD_USER_INPUT', async () => {
    expect(await code(sg.streamers({ first: -1 }))).toBe('BAD_USER_INPUT');
    expect(await code(sg.streamers({ first: 101 }))).toBe('BAD_USER_INPUT');
    expect(await code(sg.streamers({ after: 'garbage' }))).toBe('BAD_USER_INPUT');
    const foreign = Buffer.from('event:01a20000-0000-7000-8000-000000000000').toString('base64url');
    expect(await code(sg.streamers({ after: foreign }))).toBe('BAD_USER_INPUT');
  });
});
