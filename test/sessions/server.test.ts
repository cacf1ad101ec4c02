import { describe, expect, it } from 'vitest';
import { startTestApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import {
  eventually,
  newSession,
  operator,
  primed,
  publisher,
  RawPeer,
  relayBase,
  sdkOf,
  sessionState,
  subscribeOverSse,
} from './helpers.js';

describe('keepalive', () => {
  it('cuts a peer that stops answering pings and keeps one that answers', async () => {
    const app = await startTestApp({ env: { WS_PING_INTERVAL_MS: '200' } });
    const s = await newSession(app);
    const pub = publisher(app, s);
    const alive = operator(app, s, 'alive');
    // ws answers pings by itself unless told not to: this one behaves like a dead peer.
    const dead = operator(app, s, 'dead', {}, { autoPong: false });
    await primed(pub, [alive]);

    expect((await dead.closed).code).toBe(1006); // terminated, no close handshake
    await eventually(async () => {
      const state = await sessionState(app, s.sessionId);
      expect(state.operators.map((o) => [o.userId, o.connected]).sort()).toEqual([
        ['alive', true],
        ['dead', false],
      ]);
    });
    // By now the live peers have been pinged several times and answered each.
    await new Promise((r) => setTimeout(r, 500));
    expect([pub.isOpen, alive.isOpen]).toEqual([true, true]);
    await pub.send('still relayed');
    await alive.receivedCount(1);
  });
});

describe('keepalive (publisher)', () => {
  it('cuts a publisher that stops answering pings: the session goes back to WAITING and takes a new one', async () => {
    const app = await startTestApp({ env: { WS_PING_INTERVAL_MS: '200' } });
    const s = await newSession(app);
    const url = `${relayBase(app)}/${s.sessionId}/${s.clientId}?key=${encodeURIComponent(s.streamKey)}`;
    const dead = new RawPeer(url, { autoPong: false });
    await dead.opened;
    await eventually(async () => expect((await sessionState(app, s.sessionId)).status).toBe('ACTIVE'));
    expect((await dead.closed).code).toBe(1006); // terminated, no close handshake
    await eventually(async () => expect((await sessionState(app, s.sessionId)).status).toBe('WAITING'));
    // The slot is free again: a live publisher is accepted and relayed.
    const op = operator(app, s, 'op');
    const pub = publisher(app, s);
    await primed(pub, [op]);
    expect((await sessionState(app, s.sessionId)).status).toBe('ACTIVE');
  });
});

describe('shutdown', () => {
  it('closes relay sockets with 1001, completes subscriptions, saves counters and puts the session back to WAITING', async () => {
    const db = await createTestDatabase();
    // The app closes its database on stop; keep this one open to look at what was saved.
    const app = await startTestApp({ db: { ...db, close: async () => {} } });
    const s = await newSession(app);
    const op = operator(app, s, 'op');
    const sse = subscribeOverSse(app, s.sessionId);
    const pub = publisher(app, s);
    const prime = await primed(pub, [op, sse]);
    await pub.send('last');
    await Promise.all([op.receivedCount(1), sse.receivedCount(1)]);
    expect((await sessionState(app, s.sessionId)).status).toBe('ACTIVE');

    await app.app.stop();
    expect([(await pub.closed).code, (await op.closed).code]).toEqual([1001, 1001]);
    await sse.done;
    expect(sse.errors).toEqual([]);
    const row = await db.prisma.session.findUniqueOrThrow({ where: { id: s.sessionId } });
    expect(row).toMatchObject({ status: 'WAITING', operatorConnects: 1, operatorDisconnects: 1, finishedAt: null });
    expect(Number(row.framesRelayed)).toBe(prime.frames + 1);
  });
});

describe('who connected', () => {
  it("records the operator's token as the actor of operator_connected (userId is only a label)", async () => {
    const app = await startTestApp({ env: { EVENT_LOG_MIN_SEVERITY: 'INFO' } });
    const s = await newSession(app);
    const op = operator(app, s, 'someone-else');
    await op.opened;
    await eventually(async () => {
      const { events } = await sdkOf(app).events({ source: 'sessions', severity: ['INFO'] });
      const connected = events.edges.filter((e) => e.node.type === 'session.operator_connected');
      expect(connected.map(({ node: { type, details, actor } }) => ({ type, details, actor }))).toEqual([
        {
          type: 'session.operator_connected',
          details: { sessionId: s.sessionId, userId: 'someone-else' },
          actor: { id: 'env', name: 'ADMIN_TOKEN' },
        },
      ]);
    });
  });
});
