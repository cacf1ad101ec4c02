import type { StreamGateClient } from '@streamgate/client';
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { countQueries, createTestDatabase } from '../helpers/db.js';
import { closedPort, type FakeNode, startFakeNode } from '../helpers/fake-node.js';
import { rejection, sdkClient } from '../helpers/sdk.js';

let app: TestApp;
let sg: StreamGateClient;
let node: FakeNode;
let queries: { readonly total: number };
beforeAll(async () => {
  const db = await createTestDatabase({ logQueries: true });
  queries = countQueries(db);
  // Only the pings a test sends: scheduled checks would add statements to the N+1 count.
  app = await startTestApp({ db });
  sg = sdkClient(app);
  node = await startFakeNode();
});

async function cacheNode(name: string, port: number): Promise<string> {
  return (await sg.createCacheNode({ input: { name, host: '127.0.0.1', apiPort: port } })).createCacheNode.id;
}

const ping = async (id: string) => (await sg.ping({ id })).ping;

describe('ping', () => {
  it('marks a node that answers 2xx HEALTHY and records when and how fast', async () => {
    node.ping = 'up';
    const id = await cacheNode('ping-up', node.port);
    const before = Date.now();
    const result = await ping(id);
    expect(result).toMatchObject({ status: 'HEALTHY', error: null, node: { id, status: 'HEALTHY' } });
    expect(result.latencyMs).toBeGreaterThan(0);
    expect(new Date(result.pingedAt).getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(result.node.health).toMatchObject({ status: 'HEALTHY', detail: 'HTTP 200', latencyMs: result.latencyMs });
    expect(result.node.health.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(node.requests.at(-1)).toMatchObject({ method: 'GET', url: '/api/ping' });
    // Stored, not just returned.
    const stored = await sg.infraNode({ id });
    expect(stored.infraNode).toMatchObject({ status: 'HEALTHY', lastPingedAt: result.pingedAt });
  });

  it('marks a node answering 503 UNHEALTHY with the reason, as a result and not an error', async () => {
    node.ping = 'down';
    const id = await cacheNode('ping-down', node.port);
    const result = await ping(id);
    expect(result).toMatchObject({ status: 'UNHEALTHY', error: 'HTTP 503' });
    expect(result.node.health).toMatchObject({ status: 'UNHEALTHY', uptimeSeconds: null, detail: 'HTTP 503' });
  });

  it('marks a node with nothing listening UNHEALTHY with the connection error', async () => {
    const id = await cacheNode('ping-closed', await closedPort());
    const result = await ping(id);
    expect(result.status).toBe('UNHEALTHY');
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it('gives up on a node that never answers after 5 s: UNHEALTHY, with the reason', async () => {
    node.ping = 'hang';
    const id = await cacheNode('ping-hang', node.port);
    const started = Date.now();
    const result = await ping(id);
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ status: 'UNHEALTHY', error: 'no answer within 5000 ms' });
    expect(elapsed).toBeGreaterThanOrEqual(4_900);
    expect(elapsed).toBeLessThan(9_000);
  }, 15_000);

  it('keeps uptime across healthy pings and clears it once the node is UNHEALTHY (3 failures)', async () => {
    node.ping = 'up';
    const id = await cacheNode('ping-uptime', node.port);
    await ping(id);
    const since = (await app.db.prisma.node.findUniqueOrThrow({ where: { id } })).healthySince;
    expect(since).not.toBeNull();
    await new Promise((r) => setTimeout(r, 30));
    await ping(id);
    const again = await app.db.prisma.node.findUniqueOrThrow({ where: { id } });
    expect(again.healthySince?.getTime()).toBe(since?.getTime());
    // Manual pings go through the monitor's thresholds: a healthy node needs 3 failures in a row.
    node.ping = 'down';
    for (const attempt of [1, 2]) {
      const down = await ping(id);
      expect(down, `failure ${attempt}`).toMatchObject({ status: 'UNHEALTHY', error: 'HTTP 503' });
      expect(down.node.status).toBe('HEALTHY');
      expect(down.node.health.uptimeSeconds).toBeGreaterThan(0);
    }
    const down = await ping(id);
    expect(down.node.status).toBe('UNHEALTHY');
    expect(down.node.health).toMatchObject({ status: 'UNHEALTHY', uptimeSeconds: null, detail: 'HTTP 503' });
    expect((await app.db.prisma.node.findUniqueOrThrow({ where: { id } })).healthySince).toBeNull();
  });

  it('answers NOT_FOUND for an unknown or malformed id', async () => {
    expect((await rejection(ping('01a20000-0000-7000-8000-000000000000'))).code).toBe('NOT_FOUND');
    expect((await rejection(ping('nope'))).code).toBe('NOT_FOUND');
  });
});

describe('N+1 guard', () => {
  it('lists nodes with their health in the same number of SQL statements for 2 or 40 nodes', async () => {
    const count = async (first: number) => {
      const start = queries.total;
      const { cacheNodes } = await sg.cacheNodes({ first });
      expect(cacheNodes.edges.length).toBe(first);
      return queries.total - start;
    };
    for (let i = 0; i < 40; i++) await cacheNode(`n1-${i}`, 1000 + i);
    const few = await count(2);
    const many = await count(40);
    expect(few).toBeGreaterThan(0); // the counter counts
    expect(many).toBe(few);
  });
});
