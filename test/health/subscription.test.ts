import type { Client } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/graphql/context.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { type FakeNode, startFakeNode } from '../helpers/fake-node.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import { readSse } from '../helpers/sse.js';
import { startUpstream, type Upstream } from '../proxies/helpers.js';
import { eventually } from './helpers.js';

/**
 * healthChanged through the real server, over graphql-ws and SSE. Transitions are driven by
 * manual checks (HEALTH_MONITOR=off), which go through the same thresholds as scheduled ones.
 */

const SUBSCRIPTION = `
  subscription Health($kinds: [HealthSubjectKind!]) {
    healthChanged(subjectKinds: $kinds) { subjectKind subjectId name from to at latencyMs detail }
  }
`;

interface Change {
  subjectKind: string;
  subjectId: string;
  name: string;
  from: string;
  to: string;
  at: string;
  latencyMs: number | null;
  detail: string | null;
}

/** What a stream has delivered so far, and a way to wait for the n-th item. */
class Received {
  readonly items: Change[] = [];
  errors: unknown[] = [];
  add(payload: { data?: { healthChanged: Change } | null; errors?: unknown[] }) {
    if (payload.errors) this.errors.push(...payload.errors);
    if (payload.data) this.items.push(payload.data.healthChanged);
  }
  async nth(n: number): Promise<Change> {
    await eventually(() => expect(this.items.length).toBeGreaterThanOrEqual(n));
    return this.items[n - 1]!;
  }
}

let app: TestApp;
let ctx: Context;
let node: FakeNode;
let ws: Client;
let upstream: Upstream;

beforeAll(async () => {
  app = await startTestApp({ env: { HEALTH_MONITOR: 'off' } });
  const enveloped = app.app.yoga.getEnveloped({ principal: { id: 'test', name: 'test', role: 'admin' } } as never);
  ctx = (await enveloped.contextFactory()) as unknown as Context;
  node = await startFakeNode();
  upstream = await startUpstream(200);
  ws = graphqlWsClient(app);
});

function overWs(kinds: string[] | null): { received: Received; stop: () => void } {
  const received = new Received();
  const stop = ws.subscribe(
    { query: SUBSCRIPTION, variables: { kinds } },
    { next: (v) => received.add(v as never), error: (e) => received.errors.push(e), complete: () => {} },
  );
  return { received, stop };
}

function overSse(kinds: string[] | null): { received: Received; stop: () => void } {
  const received = new Received();
  const controller = new AbortController();
  void (async () => {
    try {
      const res = await app.fetch('/graphql', {
        method: 'POST',
        headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
        body: JSON.stringify({ query: SUBSCRIPTION, variables: { kinds } }),
        signal: controller.signal,
      });
      if (!res.body) throw new Error(`no body (${res.status})`);
      for await (const { event, data } of readSse(res.body)) {
        if (event === 'next' && data) received.add(JSON.parse(data));
      }
    } catch (error) {
      if (!controller.signal.aborted) received.errors.push(error);
    }
  })();
  return { received, stop: () => controller.abort() };
}

const Ping = `mutation Ping($id: ID!) { ping(id: $id) { status node { status health { status uptimeSeconds } } } }`;
const pingAs = async (mode: FakeNode['ping'], id: string) => {
  node.ping = mode;
  const res = await app.gql<{ ping: { status: string; node: { status: string } } }, { id: string }>(Ping, { id });
  expect(res.errors).toBeUndefined();
  return res.data?.ping;
};

describe('healthChanged', () => {
  it('streams transitions over graphql-ws and SSE, each subscriber only the kinds it asked for', async () => {
    const nodesWs = overWs(['NODE']);
    const proxiesWs = overWs(['PROXY']);
    const allWs = overWs(null);
    const nodesSse = overSse(['NODE']);
    await eventually(() => expect(ctx.health.stats().subscribers).toBe(4));

    const created = await app.gql<{ createCacheNode: { id: string } }, unknown>(
      `mutation { createCacheNode(input: { name: "watched", host: "127.0.0.1", apiPort: ${node.port} }) { id } }`,
    );
    const id = created.data?.createCacheNode.id ?? '';
    const createdProxy = await app.gql<{ createProxy: { proxy: { id: string } } }, unknown>(
      `mutation { createProxy(input: { domain: "edge.example.com", destination: "${upstream.url}" }) { proxy { id } } }`,
    );
    const proxy = { id: createdProxy.data?.createProxy.proxy.id ?? '' };
    const proxies = ctx.health.sourceOf('PROXY');
    if (!proxies) throw new Error('no PROXY health source');
    upstream.status = 503;

    // 1. A node becomes HEALTHY (its first result).
    await pingAs('up', id);
    const first = { subjectKind: 'NODE', subjectId: id, name: 'watched', from: 'UNKNOWN', to: 'HEALTHY' };
    expect(await nodesWs.received.nth(1)).toMatchObject({ ...first, detail: 'HTTP 200' });
    expect(await nodesSse.received.nth(1)).toMatchObject(first);
    expect(await allWs.received.nth(1)).toMatchObject(first);
    expect(Date.parse((await allWs.received.nth(1)).at)).not.toBeNaN();

    // 2. A proxy becomes UNHEALTHY.
    await ctx.health.checkNow(proxies, proxy.id);
    const second = {
      subjectKind: 'PROXY',
      subjectId: proxy.id,
      name: 'edge.example.com',
      from: 'UNKNOWN',
      to: 'UNHEALTHY',
      detail: 'HTTP 503',
    };
    expect(await proxiesWs.received.nth(1)).toMatchObject(second);
    expect(await allWs.received.nth(2)).toMatchObject(second);

    // 3. The node goes down (third failure) and the proxy recovers (second success). Each stream's
    // next item shows it skipped what it did not ask for: streams deliver in order.
    for (let i = 0; i < 3; i++) await pingAs('down', id);
    upstream.status = 200;
    await ctx.health.checkNow(proxies, proxy.id);
    await ctx.health.checkNow(proxies, proxy.id);
    const third = { subjectKind: 'NODE', from: 'HEALTHY', to: 'UNHEALTHY', detail: 'HTTP 503' };
    expect(await nodesWs.received.nth(2)).toMatchObject(third);
    expect(await nodesSse.received.nth(2)).toMatchObject(third);
    expect(await proxiesWs.received.nth(2)).toMatchObject({ subjectKind: 'PROXY', from: 'UNHEALTHY', to: 'HEALTHY' });
    await eventually(() =>
      expect(allWs.received.items.map((c) => `${c.subjectKind}:${c.to}`)).toEqual([
        'NODE:HEALTHY',
        'PROXY:UNHEALTHY',
        'NODE:UNHEALTHY',
        'PROXY:HEALTHY',
      ]),
    );
    for (const s of [nodesWs, proxiesWs, allWs, nodesSse]) expect(s.received.errors).toEqual([]);

    // Failures 1 and 2 of the node were steady state: nothing was streamed for them.
    expect(nodesWs.received.items).toHaveLength(2);

    // Subscribers that leave are forgotten.
    for (const s of [nodesWs, proxiesWs, allWs, nodesSse]) s.stop();
    await eventually(() => expect(ctx.health.stats().subscribers).toBe(0));
  });

  it('rejects an unknown subject kind before subscribing', async () => {
    const res = await app.gql(SUBSCRIPTION, { kinds: ['PLANET'] });
    expect(res.errors?.[0]?.message).toMatch(/PLANET/);
  });
});

describe('health in queries and the event log', () => {
  it('uptimeSeconds counts from the transition to HEALTHY and is null while not healthy', async () => {
    const created = await app.gql<{ createSlbNode: { id: string } }, unknown>(
      `mutation { createSlbNode(input: { name: "uptime", host: "127.0.0.1", apiPort: ${node.port} }) { id } }`,
    );
    const id = created.data?.createSlbNode.id ?? '';
    const Health = `query H($id: ID!) { infraNode(id: $id) { status health { status uptimeSeconds checkedAt } } }`;
    type H = { infraNode: { status: string; health: { uptimeSeconds: number | null; checkedAt: string } } };
    expect((await app.gql<H, { id: string }>(Health, { id })).data?.infraNode.health.uptimeSeconds).toBeNull();
    await pingAs('up', id);
    await new Promise((r) => setTimeout(r, 120));
    await pingAs('up', id);
    const up = (await app.gql<H, { id: string }>(Health, { id })).data?.infraNode;
    // Counted from the first (transition) ping, not the latest one.
    expect(up?.health.uptimeSeconds).toBeGreaterThanOrEqual(0.12);
    for (let i = 0; i < 3; i++) await pingAs('down', id);
    const down = (await app.gql<H, { id: string }>(Health, { id })).data?.infraNode;
    expect(down).toMatchObject({ status: 'UNHEALTHY', health: { uptimeSeconds: null } });
  });

  it('every transition is in the event log (events(source: "health")), steady state is not', async () => {
    const created = await app.gql<{ createCacheNode: { id: string } }, unknown>(
      `mutation { createCacheNode(input: { name: "logged", host: "127.0.0.1", apiPort: ${node.port} }) { id } }`,
    );
    const id = created.data?.createCacheNode.id ?? '';
    for (const mode of ['up', 'up', 'down', 'down', 'down', 'down'] as const) await pingAs(mode, id);
    const Events = `{ events(first: 100, source: "health") { edges { node { type severity message details } } } }`;
    type E = { events: { edges: { node: { type: string; severity: string; message: string; details: Change } }[] } };
    const res = await app.gql<E, never>(Events);
    const changes = res.data?.events.edges.map((e) => e.node).filter((e) => e.type === 'health.changed') ?? [];
    const logged = changes.filter((c) => c.details.subjectId === id);
    // Newest first; six pings, two transitions.
    expect(logged.map((c) => `${c.details.from}->${c.details.to}`)).toEqual(['HEALTHY->UNHEALTHY', 'UNKNOWN->HEALTHY']);
    expect(logged[0]).toMatchObject({
      severity: 'WARN',
      message: 'node "logged" is UNHEALTHY (was HEALTHY): HTTP 503',
    });
    expect(logged[1]).toMatchObject({ severity: 'INFO', details: { subjectKind: 'NODE', name: 'logged' } });
  });
});
