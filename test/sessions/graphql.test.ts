import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../generated/gql.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { countQueries, createTestDatabase } from '../helpers/db.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import { CreateSession, EndSession, newSession, SessionState, subscribeOverSse, subscribeOverWs } from './helpers.js';

const Sessions = graphql(`
  query Sessions($first: Int, $after: String, $status: SessionStatus) {
    sessions(first: $first, after: $after, status: $status) {
      edges { cursor node { id status operators { userId joinedAt connected } } }
      pageInfo { hasNextPage hasPreviousPage endCursor }
    }
  }
`);

let app: TestApp;
let queries: { readonly total: number };
beforeAll(async () => {
  const db = await createTestDatabase({ logQueries: true });
  queries = countQueries(db);
  app = await startTestApp({ db, env: { PUBLIC_URL: 'https://gate.example.com/base/' } });
});

describe('createSession', () => {
  it('creates a WAITING session with a stream key shown once and a wss URL from PUBLIC_URL', async () => {
    const clientId = randomUUID();
    const res = await app.gql(CreateSession, { clientId });
    expect(res.errors).toBeUndefined();
    const payload = res.data?.createSession;
    const id = payload?.sessionId ?? '';
    const wsUrl = `wss://gate.example.com/base/ws/stream/${id}/${clientId}`;
    expect(payload).toMatchObject({
      status: 'WAITING',
      wsUrl,
      session: { id, clientId, status: 'WAITING', wsUrl, startedAt: null, finishedAt: null, operators: [] },
    });
    expect(payload?.streamKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Stored hashed only; a second session gets another key.
    const row = await app.db.prisma.session.findUniqueOrThrow({ where: { id } });
    expect(row.streamKeyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.values(row).map(String)).not.toContain(payload?.streamKey);
    expect((await newSession(app)).streamKey).not.toBe(payload?.streamKey);
  });

  it.each([
    ['a variable', { query: CreateSession, variables: { clientId: 'not-a-uuid' } }],
    ['a literal', { query: 'mutation { createSession(clientId: "12345") { sessionId } }', variables: undefined }],
  ])('rejects a non-UUID clientId given as %s with BAD_USER_INPUT', async (_label, { query, variables }) => {
    const before = await app.db.prisma.session.count();
    const res = await app.gql(query, variables as never);
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    expect(await app.db.prisma.session.count()).toBe(before);
  });
});

describe('session and sessions', () => {
  it('returns null for an unknown or malformed id', async () => {
    for (const id of [randomUUID(), 'nope']) {
      const res = await app.gql(SessionState, { id });
      expect(res.errors).toBeUndefined();
      expect(res.data?.session).toBeNull();
    }
  });

  it('pages newest first and filters by status', async () => {
    const created = [await newSession(app), await newSession(app), await newSession(app)];
    await app.gql(EndSession, { id: created[1]?.sessionId ?? '' });
    const first = await app.gql(Sessions, { first: 2 });
    expect(first.errors).toBeUndefined();
    const ids = first.data?.sessions.edges.map((e) => e.node.id);
    expect(ids).toEqual([created[2]?.sessionId, created[1]?.sessionId]);
    expect(first.data?.sessions.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const next = await app.gql(Sessions, { first: 1, after: first.data?.sessions.pageInfo.endCursor });
    expect(next.data?.sessions.edges.map((e) => e.node.id)).toEqual([created[0]?.sessionId]);

    const finished = await app.gql(Sessions, { status: 'FINISHED', first: 100 });
    const finishedIds = finished.data?.sessions.edges.map((e) => e.node.id) ?? [];
    expect(finishedIds).toContain(created[1]?.sessionId);
    expect(finishedIds).not.toContain(created[0]?.sessionId);
    expect(finished.data?.sessions.edges.every((e) => e.node.status === 'FINISHED')).toBe(true);
  });

  it('rejects a cursor of another list with BAD_USER_INPUT', async () => {
    const res = await app.gql(Sessions, { after: Buffer.from('node:x').toString('base64url') });
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
  });

  it('loads the operators of a whole page without one query per session', async () => {
    const sessions = [await newSession(app), await newSession(app), await newSession(app), await newSession(app)];
    for (const [i, s] of sessions.entries()) {
      await app.db.prisma.sessionOperator.createMany({
        data: Array.from({ length: i + 1 }, (_, j) => ({ sessionId: s.sessionId, userId: `op-${j}` })),
      });
    }
    const count = async (first: number) => {
      const before = queries.total;
      const res = await app.gql(Sessions, { first });
      expect(res.errors).toBeUndefined();
      return { statements: queries.total - before, res };
    };
    const one = await count(1);
    const four = await count(4);
    expect(four.res.data?.sessions.edges.map((e) => e.node.operators.length)).toEqual([4, 3, 2, 1]);
    expect(four.statements).toBe(one.statements);
  });
});

describe('endSession', () => {
  it('finishes a session once; ending it again returns it unchanged', async () => {
    const s = await newSession(app);
    const first = await app.gql(EndSession, { id: s.sessionId });
    expect(first.errors).toBeUndefined();
    expect(first.data?.endSession).toMatchObject({ id: s.sessionId, status: 'FINISHED', framesRelayed: 0 });
    expect(first.data?.endSession.finishedAt).toEqual(expect.any(String));
    const again = await app.gql(EndSession, { id: s.sessionId });
    expect(again.data?.endSession).toEqual(first.data?.endSession);
  });

  it('is NOT_FOUND for an unknown or malformed id', async () => {
    for (const id of [randomUUID(), 'nope']) expect(codes(await app.gql(EndSession, { id }))).toEqual(['NOT_FOUND']);
  });

  it('cannot be undone by any write: the database refuses to move a session out of FINISHED', async () => {
    const s = await newSession(app);
    await app.gql(EndSession, { id: s.sessionId });
    await expect(
      app.db.prisma.session.update({ where: { id: s.sessionId }, data: { status: 'ACTIVE' } }),
    ).rejects.toThrow();
  });
});

describe('streamFrames', () => {
  it('is NOT_FOUND for an unknown or finished session, over graphql-ws and SSE', async () => {
    const finished = await newSession(app);
    await app.gql(EndSession, { id: finished.sessionId });
    const client = graphqlWsClient(app);
    for (const id of [randomUUID(), finished.sessionId, 'nope']) {
      const overWs = subscribeOverWs(client, id);
      await overWs.done;
      expect(JSON.stringify(overWs.errors)).toContain('NOT_FOUND');
      const overSse = subscribeOverSse(app, id);
      await overSse.done;
      expect(JSON.stringify(overSse.errors)).toContain('NOT_FOUND');
      expect([overWs.frames, overSse.frames]).toEqual([[], []]);
    }
  });
});
