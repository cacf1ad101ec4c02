import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../generated/gql.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { countQueries, createTestDatabase } from '../helpers/db.js';
import { closedPort, type FakeNode, startFakeNode } from '../helpers/fake-node.js';

const CreateCache = graphql(`
  mutation PingCreateCache($input: CreateNodeInput!) { createCacheNode(input: $input) { id } }
`);
const Ping = graphql(`
  mutation Ping($id: ID!) {
    ping(id: $id) {
      status pingedAt latencyMs error
      node { id status lastPingedAt health { status checkedAt latencyMs uptimeSeconds detail } }
    }
  }
`);
const NodeHealth = graphql(`
  query NodeHealth($id: ID!) { infraNode(id: $id) { status lastPingedAt health { status latencyMs detail uptimeSeconds } } }
`);
const ListWithHealth = graphql(`
  query ListWithHealth($first: Int) {
    cacheNodes(first: $first) { edges { node { id name status health { status latencyMs uptimeSeconds } } } }
  }
`);

let app: TestApp;
let node: FakeNode;
let queries: { readonly total: number };
beforeAll(async () => {
  const db = await createTestDatabase({ logQueries: true });
  queries = countQueries(db);
  // Only the pings a test sends: scheduled checks would add statements to the N+1 count.
  app = await startTestApp({ db });
  node = await startFakeNode();
});

async function cacheNode(name: string, port: number): Promise<string> {
  const res = await app.gql(CreateCache, { input: { name, host: '127.0.0.1', apiPort: port } });
  return res.data?.createCacheNode.id ?? '';
}

describe('ping', () => {
  it('marks a node that answers 2xx HEALTHY and records when and how fast', async () => {
    node.ping = 'up';
    const id = await cacheNode('ping-up', node.port);
    const before = Date.now();
    const res = await app.gql(Ping, { id });
    const result = res.data?.ping;
    expect(res.errors).toBeUndefined();
    expect(result).toMatchObject({ status: 'HEALTHY', error: null, node: { id, status: 'HEALTHY' } });
    expect(result?.latencyMs).toBeGreaterThan(0);
    expect(new Date(result?.pingedAt ?? 0).getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(result?.node.health).toMatchObject({ status: 'HEALTHY', detail: 'HTTP 200', latencyMs: result?.latencyMs });
    expect(result?.node.health.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(node.requests.at(-1)).toMatchObject({ method: 'GET', url: '/api/ping' });
    // Stored, not just returned.
    const stored = await app.gql(NodeHealth, { id });
    expect(stored.data?.infraNode).toMatchObject({ status: 'HEALTHY', lastPingedAt: result?.pingedAt });
  });

  it('marks a node answering 503 UNHEALTHY with the reason, as a result and not an error', async () => {
    node.ping = 'down';
    const id = await cacheNode('ping-down', node.port);
    const res = await app.gql(Ping, { id });
    expect(res.errors).toBeUndefined();
    expect(res.data?.ping).toMatchObject({ status: 'UNHEALTHY', error: 'HTTP 503' });
    expect(res.data?.ping.node.health).toMatchObject({ status: 'UNHEALTHY', uptimeSeconds: null, detail: 'HTTP 503' });
  });

  it('marks a node with nothing listening UNHEALTHY with the connection error', async () => {
    const id = await cacheNode('ping-closed', await closedPort());
    const res = await app.gql(Ping, { id });
    expect(res.data?.ping.status).toBe('UNHEALTHY');
    expect(res.data?.ping.error).toMatch(/ECONNREFUSED/);
  });

  it('gives up on a node that never answers after 5 s: UNHEALTHY, with the reason', async () => {
    node.ping = 'hang';
    const id = await cacheNode('ping-hang', node.port);
    const started = Date.now();
    const res = await app.gql(Ping, { id });
    const elapsed = Date.now() - started;
    expect(res.data?.ping).toMatchObject({ status: 'UNHEALTHY', error: 'no answer within 5000 ms' });
    expect(elapsed).toBeGreaterThanOrEqual(4_900);
    expect(elapsed).toBeLessThan(9_000);
  }, 15_000);

  it('keeps uptime across healthy pings and clears it once the node is UNHEALTHY (3 failures)', async () => {
    node.ping = 'up';
    const id = await cacheNode('ping-uptime', node.port);
    await app.gql(Ping, { id });
    const since = (await app.db.prisma.node.findUniqueOrThrow({ where: { id } })).healthySince;
    expect(since).not.toBeNull();
    await new Promise((r) => setTimeout(r, 30));
    await app.gql(Ping, { id });
    const again = await app.db.prisma.node.findUniqueOrThrow({ where: { id } });
    expect(again.healthySince?.getTime()).toBe(since?.getTime());
    // Manual pings go through the monitor's thresholds: a healthy node needs 3 failures in a row.
    node.ping = 'down';
    for (const attempt of [1, 2]) {
      const down = await app.gql(Ping, { id });
      expect(down.data?.ping, `failure ${attempt}`).toMatchObject({ status: 'UNHEALTHY', error: 'HTTP 503' });
      expect(down.data?.ping.node.status).toBe('HEALTHY');
      expect(down.data?.ping.node.health.uptimeSeconds).toBeGreaterThan(0);
    }
    const down = await app.gql(Ping, { id });
    expect(down.data?.ping.node.status).toBe('UNHEALTHY');
    expect(down.data?.ping.node.health).toMatchObject({ status: 'UNHEALTHY', uptimeSeconds: null, detail: 'HTTP 503' });
    expect((await app.db.prisma.node.findUniqueOrThrow({ where: { id } })).healthySince).toBeNull();
  });

  it('answers NOT_FOUND for an unknown or malformed id', async () => {
    expect(codes(await app.gql(Ping, { id: '01a20000-0000-7000-8000-000000000000' }))).toEqual(['NOT_FOUND']);
    expect(codes(await app.gql(Ping, { id: 'nope' }))).toEqual(['NOT_FOUND']);
  });
});

describe('N+1 guard', () => {
  it('lists nodes with their health in the same number of SQL statements for 2 or 40 nodes', async () => {
    const count = async (first: number) => {
      const start = queries.total;
      const res = await app.gql(ListWithHealth, { first });
      expect(res.data?.cacheNodes.edges.length).toBe(first);
      return queries.total - start;
    };
    for (let i = 0; i < 40; i++) await cacheNode(`n1-${i}`, 1000 + i);
    const few = await count(2);
    const many = await count(40);
    expect(few).toBeGreaterThan(0); // the counter counts
    expect(many).toBe(few);
  });
});
