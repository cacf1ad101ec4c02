import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { type FakeNode, startFakeNode } from '../helpers/fake-node.js';

/**
 * One operation cannot make unbounded node calls: past NODE_CALLS_PER_OPERATION calls or
 * NODE_BYTES_PER_OPERATION bytes of answers, the fields that did not fit are BUDGET_EXCEEDED
 * errors and the rest of the answer stands.
 */

const STREAMERS = 6;
const LIST = `{ streamers(first: 10) { edges { node { name streams } } } }`;
let node: FakeNode;

beforeAll(async () => {
  node = await startFakeNode();
  // Every streamer answers about 1,000 bytes for its streams.
  node.streams.set('big', { id: 'big', padding: 'x'.repeat(1_000) });
});

afterAll(async () => {
  await node.close();
});

async function appWithStreamers(env: Record<string, string>, count = STREAMERS): Promise<TestApp> {
  const t = await startTestApp({ env });
  for (let i = 0; i < count; i++) {
    const res = await t.gql('mutation($input: CreateStreamerInput!) { createStreamer(input: $input) { id } }', {
      input: { name: `s-${i}`, host: node.host, apiPort: node.port, httpPort: 8080 },
    });
    expect(res.errors).toBeUndefined();
  }
  return t;
}

type ListResult = { streamers: { edges: { node: { name: string; streams: unknown } }[] } };

describe('node call budget per operation', () => {
  it('refuses before it runs an operation whose worst case passes the budget, fragments included', async () => {
    const t = await appWithStreamers({});
    const before = node.requests.length;
    const wide = await t.gql('{ streamers(first: 100) { edges { node { name streams traffic } } } }');
    expect(wide.data ?? null).toBeNull();
    expect(wide.errors?.[0]?.extensions).toMatchObject({ code: 'BUDGET_EXCEEDED', limit: 50, cost: 200 });
    const viaFragment = await t.gql(
      '{ streamers(first: 30) { edges { node { ...Live } } } } fragment Live on Streamer { streams traffic }',
    );
    expect(viaFragment.errors?.[0]?.extensions).toMatchObject({ code: 'BUDGET_EXCEEDED', cost: 60 });
    // No `first`: the default page of 20, three fields per node.
    const defaultPage = await t.gql('{ streamers { edges { node { streams traffic t2: traffic } } } }');
    expect(defaultPage.errors?.[0]?.extensions).toMatchObject({ code: 'BUDGET_EXCEEDED', cost: 60 });
    expect(node.requests.length).toBe(before);
    // Within the worst case: answered.
    expect((await t.gql('{ streamers(first: 25) { edges { node { streams traffic } } } }')).errors).toBeUndefined();
  });

  it('past NODE_CALLS_PER_OPERATION at run time (a variable page size), the fields left are BUDGET_EXCEEDED; the rest stands', async () => {
    // A variable page size is costed as the default page (20): 20 calls pass the check; 25 streamers make 25.
    const count = 25;
    const t = await appWithStreamers({ NODE_CALLS_PER_OPERATION: '20' }, count);
    const before = node.requests.length;
    const res = await t.gql<ListResult, { n: number }>(
      'query($n: Int) { streamers(first: $n) { edges { node { name streams } } } }',
      { n: count },
    );
    expect(node.requests.length - before).toBe(20);
    const edges = res.data?.streamers.edges ?? [];
    expect(edges.map((e) => e.node.name)).toHaveLength(count);
    expect(edges.filter((e) => e.node.streams !== null)).toHaveLength(20);
    expect(res.errors).toHaveLength(count - 20);
    for (const error of res.errors ?? []) {
      expect(error.extensions).toMatchObject({ code: 'BUDGET_EXCEEDED', limit: 20 });
      expect(error.path?.at(-1)).toBe('streams');
    }
    // The next operation has a budget of its own.
    expect(
      (await t.gql<ListResult, unknown>('{ streamers(first: 2) { edges { node { streams } } } }')).errors,
    ).toBeUndefined();
  });

  it('past NODE_BYTES_PER_OPERATION of answers, the fields left are BUDGET_EXCEEDED', async () => {
    const t = await appWithStreamers({ NODE_BYTES_PER_OPERATION: '3500' });
    const res = await t.gql<ListResult, unknown>(LIST);
    const answered = (res.data?.streamers.edges ?? []).filter((e) => e.node.streams !== null);
    // About 1,000 bytes each: three fit in 3,500, and never more than that in all.
    expect(answered).toHaveLength(3);
    expect(JSON.stringify(answered.map((e) => e.node.streams)).length).toBeLessThanOrEqual(3_500);
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(Array(STREAMERS - 3).fill('BUDGET_EXCEEDED'));
  });

  it('within the defaults, a whole page of streamers answers', async () => {
    const t = await appWithStreamers({});
    const res = await t.gql<ListResult, unknown>(LIST);
    expect(res.errors).toBeUndefined();
    expect(res.data?.streamers.edges.every((e) => Array.isArray(e.node.streams))).toBe(true);
  });
});
