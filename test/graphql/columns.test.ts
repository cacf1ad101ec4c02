import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { startFakeNode } from '../helpers/fake-node.js';

/**
 * Lists and by-id reads select only the columns the asked-for fields need (src/graphql/selection.ts
 * and each type's column map). Every field must still answer what a whole row gives: a column
 * missing from a map shows here as a different value, not as a slower query.
 */

let t: TestApp;
const statements: string[] = [];
let streamerId: string;
let sessionId: string;

// One at a time below: a field asked alone gets only its own columns, so a column missing from
// its map cannot hide behind another field's.
const NODE_FIELDS = [
  'id',
  'kind',
  'name',
  'host',
  'apiPort',
  'httpPort',
  'status',
  'lastPingedAt',
  'createdAt',
  'updatedAt',
  'health { status checkedAt latencyMs detail }',
  'health { uptimeSeconds }',
];
const SESSION_FIELDS = [
  'id',
  'clientId',
  'status',
  'wsUrl',
  'createdAt',
  'startedAt',
  'finishedAt',
  'framesRelayed',
  'bytesRelayed',
  'operatorConnects',
  'operatorDisconnects',
];

async function data<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await t.gql<T, Record<string, unknown>>(query, variables);
  expect(res.errors).toBeUndefined();
  return res.data as T;
}

beforeAll(async () => {
  const db = await createTestDatabase({ logQueries: true });
  const prisma = db.prisma as unknown as { $on(event: 'query', listener: (e: { query: string }) => void): void };
  prisma.$on('query', (e) => statements.push(e.query));
  t = await startTestApp({ db });
  const node = await startFakeNode();
  const created = await data<{ createStreamer: { id: string } }>(
    `mutation { createStreamer(input: { name: "cols", host: "127.0.0.1", httpPort: 8080, apiPort: ${node.port} }) { id } }`,
  );
  streamerId = created.createStreamer.id;
  // A ping fills the health columns (status, latency, detail, healthy since).
  await data(`mutation { ping(id: "${streamerId}") { status } }`);
  const session = await data<{ createSession: { sessionId: string } }>(
    'mutation { createSession(clientId: "6a1f0c55-0e1b-4a52-8d1e-1c3f9a7b2d40") { sessionId } }',
  );
  sessionId = session.createSession.sessionId;
});

describe('narrowed reads answer as whole rows do', () => {
  it.each(NODE_FIELDS)('a streamer’s %s: in the list and by id as through infraNode (the whole row)', async (field) => {
    const whole = await data<{ infraNode: unknown }>(
      `{ infraNode(id: "${streamerId}") { ... on Streamer { ${field} } } }`,
    );
    const list = await data<{ streamers: { edges: { node: unknown }[] } }>(
      `{ streamers(first: 5) { edges { node { ${field} } } } }`,
    );
    const one = await data<{ streamer: unknown }>(`{ streamer(id: "${streamerId}") { ${field} } }`);
    // uptimeSeconds counts from healthySince to now: it grows between reads (and is null without it).
    const steady = (node: unknown) => JSON.stringify(node).replace(/("uptimeSeconds":)[\d.]+/, '$1"some"');
    expect(whole.infraNode).not.toBeNull();
    expect(list.streamers.edges.map((e) => steady(e.node))).toEqual([steady(whole.infraNode)]);
    expect(steady(one.streamer)).toEqual(steady(whole.infraNode));
  });

  it.each(SESSION_FIELDS)('a session’s %s: in the list as by id (the whole row)', async (field) => {
    const whole = await data<{ session: unknown }>(`{ session(id: "${sessionId}") { ${field} } }`);
    const list = await data<{ sessions: { edges: { node: unknown }[] } }>(
      `{ sessions(first: 5) { edges { node { ${field} } } } }`,
    );
    expect(list.sessions.edges.map((e) => e.node)).toEqual([whole.session]);
  });

  it('the health the ping stored is what is compared', async () => {
    const { streamer } = await data<{ streamer: { health: Record<string, unknown> } }>(
      `{ streamer(id: "${streamerId}") { health { status detail uptimeSeconds } } }`,
    );
    expect(streamer.health).toMatchObject({ status: 'HEALTHY', detail: 'HTTP 200', uptimeSeconds: expect.any(Number) });
  });

  it('an event: its actor and details are read with it', async () => {
    const { events } = await data<{ events: { edges: { node: Record<string, unknown> }[] } }>(
      '{ events(first: 50) { edges { node { id cursor severity source type message details createdAt actor { id name } } } } }',
    );
    const created = events.edges.map((e) => e.node).find((e) => e.type === 'node.created');
    expect(created).toMatchObject({ actor: { name: expect.any(String) }, details: expect.anything() });
  });

  it('and do select fewer columns than a whole row', async () => {
    statements.length = 0;
    await data('{ streamers(first: 5) { edges { node { id name } } } }');
    const list = statements.find((s) => s.includes('"Node"'));
    expect(list).toBeDefined();
    expect(list).not.toContain('"healthDetail"');
  });
});
