import { beforeAll, describe, expect, it } from 'vitest';
import { WriteClock } from '../../src/db/write-clock.js';
import { GenerationCache } from '../../src/server/graphql/read-cache.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';

/**
 * The response cache (src/server/graphql/read-cache.ts): a repeated read is answered without SQL,
 * and every way the database changes (a mutation, a write outside GraphQL, a transaction) shows in
 * the very next read.
 */

let t: TestApp;
const statements: string[] = [];

async function data<T>(query: string, opts: { token?: string } = {}): Promise<T> {
  const res = await t.gql<T, Record<string, unknown>>(query, {}, opts);
  expect(res.errors).toBeUndefined();
  return res.data as T;
}

/** Runs `read` and says how many SQL statements it took. */
async function sqlOf<T>(read: () => Promise<T>): Promise<{ result: T; sql: number }> {
  const before = statements.length;
  const result = await read();
  return { result, sql: statements.length - before };
}

const LIST = '{ streamers(first: 50) { edges { node { id name status } } } }';
type List = { streamers: { edges: { node: { id: string; name: string } }[] } };
const names = (list: List) => list.streamers.edges.map((e) => e.node.name).sort();

async function createStreamer(name: string): Promise<string> {
  const created = await data<{ createStreamer: { id: string } }>(
    `mutation { createStreamer(input: { name: "${name}", host: "127.0.0.1", httpPort: 8080, apiPort: 9 }) { id } }`,
  );
  return created.createStreamer.id;
}

beforeAll(async () => {
  const db = await createTestDatabase({ logQueries: true });
  const prisma = db.prisma as unknown as { $on(event: 'query', listener: (e: { query: string }) => void): void };
  prisma.$on('query', (e) => statements.push(e.query));
  t = await startTestApp({ db, env: { RESPONSE_CACHE_TTL_MS: '60000' } });
  await createStreamer('cache-a');
});

describe('response cache', () => {
  it('answers a repeated read from the cache, with no SQL', async () => {
    const first = await sqlOf(() => data<List>(LIST));
    const second = await sqlOf(() => data<List>(LIST));
    expect(first.sql).toBeGreaterThan(0);
    expect(second.sql).toBe(0);
    expect(second.result).toEqual(first.result);
  });

  it('counts hits and misses on /metrics', async () => {
    const scrape = async () => {
      const text = await (await t.fetch('/metrics')).text();
      const count = (result: string) =>
        Number(text.match(new RegExp(`streamgate_response_cache_lookups_total\\{result="${result}"\\} (\\d+)`))?.[1]);
      return { hit: count('hit'), miss: count('miss') };
    };
    const before = await scrape();
    await data<List>(LIST);
    await data<List>(LIST);
    const after = await scrape();
    expect(after.hit - before.hit).toBe(2);
    expect(after.miss).toBe(before.miss);
  });

  it('shows a created, renamed and deleted node in the very next read', async () => {
    await data<List>(LIST);
    const id = await createStreamer('cache-b');
    expect(names(await data<List>(LIST))).toContain('cache-b');

    await data(`mutation { updateStreamer(id: "${id}", input: { name: "cache-c" }) { id } }`);
    expect(names(await data<List>(LIST))).toEqual(expect.arrayContaining(['cache-a', 'cache-c']));
    expect(names(await data<List>(LIST))).not.toContain('cache-b');

    await data(`mutation { deleteStreamer(id: "${id}") }`);
    expect(names(await data<List>(LIST))).not.toContain('cache-c');
  });

  it('shows a write made outside GraphQL (a background job, another module) in the next read', async () => {
    const before = await data<List>(LIST);
    const id = before.streamers.edges[0]?.node.id;
    await t.db.prisma.node.update({ where: { id }, data: { name: 'renamed-directly' } });
    expect(names(await data<List>(LIST))).toContain('renamed-directly');
    await t.db.prisma.node.update({ where: { id }, data: { name: 'cache-a' } });
  });

  it('shows what a transaction wrote once it commits (the event log appends in one)', async () => {
    const query = '{ events(first: 5) { edges { node { type message } } } }';
    await data(query);
    await data('mutation { updateSettings(input: { staleThresholdDays: 45 }) { staleThresholdDays } }');
    const settings = await data<{ settings: { staleThresholdDays: number } }>('{ settings { staleThresholdDays } }');
    expect(settings.settings.staleThresholdDays).toBe(45);
    // The settings event is written after the mutation returns, in its own transaction.
    await expect
      .poll(async () => (await data<{ events: { edges: { node: { type: string } }[] } }>(query)).events.edges)
      .toContainEqual({ node: expect.objectContaining({ type: 'settings.updated' }) });
  });

  it('keeps answers per principal: another token reads for itself', async () => {
    const created = await data<{ createApiToken: { token: string } }>(
      'mutation { createApiToken(name: "cache-viewer", role: VIEWER) { token } }',
    );
    const viewer = created.createApiToken.token;
    await data<List>(LIST);
    const asViewer = await sqlOf(() => data<List>(LIST, { token: viewer }));
    expect(asViewer.sql).toBeGreaterThan(0);
    // An answer with an error is not kept: the viewer is refused each time, by the resolver.
    const refused = () => t.gql('{ apiTokens { id } }', {}, { token: viewer });
    expect((await refused()).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await refused()).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('does not cache fields that live in memory (session counters)', async () => {
    await data('mutation { createSession(clientId: "6f1c1b8e-8d4a-4c55-9a51-0d2b1f3f6a11") { session { id } } }');
    const query = '{ sessions(first: 5) { edges { node { id framesRelayed } } } }';
    await data(query);
    const again = await sqlOf(() => data(query));
    expect(again.sql).toBeGreaterThan(0);
  });

  it('is off with RESPONSE_CACHE_TTL_MS=0', async () => {
    const uncached = await startTestApp({ db: t.db, env: { RESPONSE_CACHE_TTL_MS: '0' } });
    await uncached.gql(LIST, {});
    const again = await sqlOf(() => uncached.gql(LIST, {}));
    expect(again.sql).toBeGreaterThan(0);
  });
});

describe('GenerationCache', () => {
  it('drops an answer computed while a write landed (its key names the generation it started at)', () => {
    const clock = new WriteClock();
    const cache = new GenerationCache(clock);
    const started = cache.keyFor(['principal', '', '{ streamers { id } }', '{}']);
    clock.advance(); // a write commits while the read runs
    cache.set(started, { data: { old: true } }, [], 60_000);
    expect(cache.get(started)).toBeUndefined();
    const fresh = cache.keyFor(['principal', '', '{ streamers { id } }', '{}']);
    expect(fresh).not.toBe(started);
    cache.set(fresh, { data: { new: true } }, [], 60_000);
    expect(cache.get(fresh)).toEqual({ data: { new: true } });
    clock.advance();
    expect(cache.get(fresh)).toBeUndefined();
  });
});
