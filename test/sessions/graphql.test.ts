import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { countQueries, createTestDatabase } from '../helpers/db.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import { rejection } from '../helpers/sdk.js';
import { endSession, newSession, sdkOf, subscribeOverSse, subscribeOverWs } from './helpers.js';

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
    const payload = (await sdkOf(app).createSession({ clientId })).createSession;
    const id = payload.sessionId;
    const wsUrl = `wss://gate.example.com/base/ws/stream/${id}/${clientId}`;
    expect(payload).toMatchObject({
      status: 'WAITING',
      wsUrl,
      session: { id, clientId, status: 'WAITING', wsUrl, startedAt: null, finishedAt: null, operators: [] },
    });
    expect(payload.streamKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Stored hashed only; a second session gets another key.
    const row = await app.db.prisma.session.findUniqueOrThrow({ where: { id } });
    expect(row.streamKeyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.values(row).map(String)).not.toContain(payload.streamKey);
    expect((await newSession(app)).streamKey).not.toBe(payload.streamKey);
  });

  it('rejects a non-UUID clientId given as a variable with BAD_USER_INPUT', async () => {
    const before = await app.db.prisma.session.count();
    expect((await rejection(sdkOf(app).createSession({ clientId: 'not-a-uuid' }))).code).toBe('BAD_USER_INPUT');
    expect(await app.db.prisma.session.count()).toBe(before);
  });

  // A literal in the document is checked by the scalar's literal parser: a raw document, not the SDK.
  it('rejects a non-UUID clientId given as a literal with BAD_USER_INPUT', async () => {
    const before = await app.db.prisma.session.count();
    const res = await app.gql('mutation { createSession(clientId: "12345") { sessionId } }');
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    expect(await app.db.prisma.session.count()).toBe(before);
  });
});

describe('session and sessions', () => {
  it('returns null for an unknown or malformed id', async () => {
    for (const id of [randomUUID(), 'nope']) expect((await sdkOf(app).session({ id })).session).toBeNull();
  });

  it('pages newest first and filters by status', async () => {
    const created = [await newSession(app), await newSession(app), await newSession(app)];
    await endSession(app, created[1]?.sessionId ?? '');
    const sg = sdkOf(app);
    const first = (await sg.sessions({ first: 2 })).sessions;
    expect(first.edges.map((e) => e.node.id)).toEqual([created[2]?.sessionId, created[1]?.sessionId]);
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const next = (await sg.sessions({ first: 1, after: first.pageInfo.endCursor })).sessions;
    expect(next.edges.map((e) => e.node.id)).toEqual([created[0]?.sessionId]);

    const finished = (await sg.sessions({ status: 'FINISHED', first: 100 })).sessions;
    const finishedIds = finished.edges.map((e) => e.node.id);
    expect(finishedIds).toContain(created[1]?.sessionId);
    expect(finishedIds).not.toContain(created[0]?.sessionId);
    expect(finished.edges.every((e) => e.node.status === 'FINISHED')).toBe(true);
  });

  it('rejects a cursor of another list with BAD_USER_INPUT', async () => {
    const after = Buffer.from('node:x').toString('base64url');
    expect((await rejection(sdkOf(app).sessions({ after }))).code).toBe('BAD_USER_INPUT');
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
      const { sessions } = await sdkOf(app).sessions({ first });
      return { statements: queries.total - before, sessions };
    };
    const one = await count(1);
    const four = await count(4);
    expect(four.sessions.edges.map((e) => e.node.operators.length)).toEqual([4, 3, 2, 1]);
    expect(four.statements).toBe(one.statements);
  });
});

describe('endSession', () => {
  it('finishes a session once; ending it again returns it unchanged', async () => {
    const s = await newSession(app);
    const first = await endSession(app, s.sessionId);
    expect(first).toMatchObject({ id: s.sessionId, status: 'FINISHED', framesRelayed: 0 });
    expect(first.finishedAt).toEqual(expect.any(String));
    expect(await endSession(app, s.sessionId)).toEqual(first);
  });

  it('is NOT_FOUND for an unknown or malformed id', async () => {
    for (const id of [randomUUID(), 'nope']) expect((await rejection(endSession(app, id))).code).toBe('NOT_FOUND');
  });

  it('cannot be undone by any write: the database refuses to move a session out of FINISHED', async () => {
    const s = await newSession(app);
    await endSession(app, s.sessionId);
    await expect(
      app.db.prisma.session.update({ where: { id: s.sessionId }, data: { status: 'ACTIVE' } }),
    ).rejects.toThrow();
  });
});

describe('streamFrames', () => {
  it('is NOT_FOUND for an unknown or finished session, over graphql-ws and SSE', async () => {
    const finished = await newSession(app);
    await endSession(app, finished.sessionId);
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
