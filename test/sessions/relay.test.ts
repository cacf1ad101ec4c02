import { randomBytes, randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { TokenCheckUnavailableError } from '../../src/modules/auth/tokens.js';
import { EventBus } from '../../src/modules/events/bus.js';
import type { AppEvent } from '../../src/modules/events/types.js';
import { CloseCode } from '../../src/modules/sessions/close-codes.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import {
  endSession,
  eventually,
  newSession,
  operator,
  primed,
  publisher,
  RawPeer,
  relayBase,
  STREAM_FRAMES,
  sessionState,
  subscribeOverSse,
  subscribeOverWs,
} from './helpers.js';

const MAX_MESSAGE = 64 * 1024;
const MAX_BUFFER = 64 * 1024;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({
    env: {
      SESSION_MAX_OPERATORS: '3',
      WS_MAX_MESSAGE_SIZE: String(MAX_MESSAGE),
      SESSION_OPERATOR_MAX_BUFFER: String(MAX_BUFFER),
    },
  });
});

const code = async (peer: RawPeer) => (await peer.closed).code;

/** Waits until the session has no publisher (the server has seen the old one go). */
const waiting = (id: string) => eventually(async () => expect((await sessionState(app, id)).status).toBe('WAITING'));

/** Events emitted while `run` runs (the bus's `emit`, spied on). */
async function emittedDuring(run: () => Promise<void>): Promise<AppEvent[]> {
  const spy = vi.spyOn(EventBus.prototype, 'emit');
  try {
    await run();
    return spy.mock.calls.map(([event]) => event);
  } finally {
    spy.mockRestore();
  }
}

describe('session lifecycle', () => {
  it('WAITING → ACTIVE on publish → WAITING when the publisher leaves → FINISHED at the end', async () => {
    const s = await newSession(app);
    expect(await sessionState(app, s.sessionId)).toMatchObject({ status: 'WAITING', startedAt: null });

    const op = operator(app, s, 'alice');
    const pub = publisher(app, s);
    const prime = await primed(pub, [op]);
    await pub.send(Buffer.from([1, 2, 3]));
    await pub.send('hello');
    await op.receivedCount(2);
    expect(op.received).toEqual([
      { data: Buffer.from([1, 2, 3]), binary: true },
      { data: Buffer.from('hello'), binary: false },
    ]);
    const active = await sessionState(app, s.sessionId);
    expect(active).toMatchObject({ status: 'ACTIVE', framesRelayed: prime.frames + 2, bytesRelayed: prime.bytes + 8 });
    expect(active.startedAt).toEqual(expect.any(String));

    await pub.close();
    await waiting(s.sessionId);
    expect(op.isOpen).toBe(true);

    const ended = await endSession(app, s.sessionId);
    expect(ended).toMatchObject({
      status: 'FINISHED',
      framesRelayed: prime.frames + 2,
      bytesRelayed: prime.bytes + 8,
    });
    expect((await op.closed).code).toBe(CloseCode.SessionEnded);
    const after = await sessionState(app, s.sessionId);
    expect(after).toMatchObject({ status: 'FINISHED', startedAt: active.startedAt });
    expect(after.finishedAt).toEqual(expect.any(String));
  });

  it('keeps operators through a publisher reconnect: ACTIVE → WAITING → ACTIVE, frames flow again', async () => {
    const s = await newSession(app);
    const op = operator(app, s, 'bob');
    const first = publisher(app, s);
    await primed(first, [op]);
    const startedAt = (await sessionState(app, s.sessionId)).startedAt;
    await first.send('before');
    await op.receivedCount(1);
    await first.close();
    await waiting(s.sessionId);

    const second = publisher(app, s);
    await second.opened;
    await second.send(Buffer.from('after'), true);
    await op.receivedCount(2);
    expect(op.received).toEqual([
      { data: Buffer.from('before'), binary: false },
      { data: Buffer.from('after'), binary: true },
    ]);
    expect(op.isOpen).toBe(true);
    const state = await sessionState(app, s.sessionId);
    expect(state).toMatchObject({ status: 'ACTIVE', startedAt });
    expect(state.operators).toEqual([expect.objectContaining({ userId: 'bob', connected: true })]);
  });

  it('ends while streaming: every socket gets 4410, subscriptions complete, nothing can join after', async () => {
    const s = await newSession(app);
    const ops = [operator(app, s, 'op-1'), operator(app, s, 'op-2')];
    const overWs = subscribeOverWs(graphqlWsClient(app), s.sessionId);
    const overSse = subscribeOverSse(app, s.sessionId);
    const pub = publisher(app, s);
    await primed(pub, [...ops, overWs, overSse]);
    let streaming = true;
    const sending = (async () => {
      // Paced a little: GraphQL subscribers in this process must keep up with a 64 KiB buffer.
      while (streaming && pub.isOpen) {
        await pub.send(randomBytes(512)).catch(() => {});
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    await Promise.all([ops[0]?.receivedCount(20), overWs.receivedCount(5), overSse.receivedCount(5)]);

    const ended = await endSession(app, s.sessionId);
    expect(ended.status).toBe('FINISHED');
    const closes = await Promise.all([pub.closed, ...ops.map((o) => o.closed)]);
    expect(closes.map((c) => c.code)).toEqual([4410, 4410, 4410]);
    await Promise.all([overWs.done, overSse.done]);
    expect([overWs.errors, overSse.errors]).toEqual([[], []]);
    streaming = false;
    await sending;

    // The count at the end is final: what was relayed, and nothing after.
    const finished = await sessionState(app, s.sessionId);
    expect(finished.framesRelayed).toBe(ended.framesRelayed);
    expect(finished.framesRelayed).toBeGreaterThan(ops[0]?.received.length ?? Infinity);
    const row = await app.db.prisma.session.findUniqueOrThrow({ where: { id: s.sessionId } });
    expect(Number(row.framesRelayed)).toBe(finished.framesRelayed);

    expect(await code(publisher(app, s))).toBe(4404);
    expect(await code(operator(app, s, 'late'))).toBe(4404);
  });
});

describe('close codes', () => {
  it('4400 for a malformed path', async () => {
    const base = relayBase(app);
    for (const path of [
      '/',
      '/not-a-uuid/someone',
      `/${randomUUID()}`,
      `/${randomUUID()}/`,
      `/${randomUUID()}/a/b`,
      `/${randomUUID()}/has%20space`,
      `/${randomUUID()}/${'x'.repeat(200)}`,
    ]) {
      expect([path, await code(new RawPeer(`${base}${path}`))]).toEqual([path, 4400]);
    }
  });

  it('4404 for an unknown session only to a caller with a valid token', async () => {
    const unknown = { sessionId: randomUUID(), clientId: randomUUID(), streamKey: 'x' };
    expect(await code(operator(app, unknown, 'alice'))).toBe(4404);
    // A stream key can only be checked against its session: for one that does not exist it is
    // as wrong as a bad key for one that does.
    expect(await code(publisher(app, unknown))).toBe(4403);
  });

  it('without valid credentials, an unknown session and a real one are refused alike', async () => {
    const real = await newSession(app);
    const unknown = { sessionId: randomUUID(), clientId: randomUUID(), streamKey: 'x' };
    for (const s of [real, unknown]) {
      expect(await code(publisher(app, s, null))).toBe(4401);
      expect(await code(operator(app, s, 'alice', { header: null }))).toBe(4401);
      expect(await code(operator(app, s, 'alice', { header: 'Bearer sg_not_a_token' }))).toBe(4403);
      expect(await code(publisher(app, s, 'wrong-key'))).toBe(4403);
    }
  });

  it('4401 without credentials, 4403 with bad ones', async () => {
    const s = await newSession(app);
    expect(await code(publisher(app, s, null))).toBe(4401);
    expect(await code(publisher(app, s, 'wrong-key'))).toBe(4403);
    expect(await code(publisher(app, s, `${s.streamKey}x`))).toBe(4403);
    expect(await code(operator(app, s, 'alice', { header: null }))).toBe(4401);
    expect(await code(operator(app, s, 'alice', { header: 'Bearer sg_not_a_token' }))).toBe(4403);
    expect(await code(operator(app, s, 'alice', { header: null, query: 'sg_not_a_token' }))).toBe(4403);
    // The stream key is no operator credential, and a token is no stream key.
    expect(await code(operator(app, s, 'alice', { header: null, query: s.streamKey }))).toBe(4403);
    expect(await code(publisher(app, s, app.token))).toBe(4403);
    // None of these counted as a connection.
    expect(await sessionState(app, s.sessionId)).toMatchObject({
      status: 'WAITING',
      operators: [],
      operatorConnects: 0,
    });
  });

  it('accepts the operator token as ?access_token= too, and the client id in any case', async () => {
    const s = await newSession(app);
    const op = operator(app, s, 'query-user', { header: null, query: app.token });
    const pub = publisher(app, { ...s, clientId: s.clientId.toUpperCase() });
    await primed(pub, [op]);
    expect([op.isOpen, pub.isOpen]).toEqual([true, true]);
  });

  it('1013 when the token cannot be checked right now (not a verdict on it)', async () => {
    const s = await newSession(app);
    // A token the verifier does not know yet, whose lookup fails (the token store is down).
    const known = vi.spyOn(app.deps.tokens, 'known').mockReturnValueOnce(undefined);
    const verify = vi
      .spyOn(app.deps.tokens, 'verify')
      .mockRejectedValueOnce(new TokenCheckUnavailableError('database down'));
    try {
      expect(await code(operator(app, s, 'alice'))).toBe(1013);
    } finally {
      known.mockRestore();
      verify.mockRestore();
    }
    expect((await sessionState(app, s.sessionId)).operators).toEqual([]);
  });

  it('4409 for a second publisher; the first keeps publishing', async () => {
    const s = await newSession(app);
    const op = operator(app, s, 'alice');
    const first = publisher(app, s);
    await primed(first, [op]);
    expect(await code(publisher(app, s))).toBe(4409);
    await first.send('still here');
    await op.receivedCount(1);
    expect(op.received[0]?.data.toString()).toBe('still here');
  });

  it('4429 for one operator more than SESSION_MAX_OPERATORS; a freed place can be taken', async () => {
    const s = await newSession(app);
    const ops = [operator(app, s, 'o1'), operator(app, s, 'o2'), operator(app, s, 'o3')];
    const pub = publisher(app, s);
    await primed(pub, ops);
    expect(await code(operator(app, s, 'o4'))).toBe(4429);
    await ops[0]?.close();
    await eventually(async () => {
      const state = await sessionState(app, s.sessionId);
      expect(state.operators.find((o) => o.userId === 'o1')?.connected).toBe(false);
    });
    const again = operator(app, s, 'o4');
    await primed(pub, [again]);
    expect(again.isOpen).toBe(true);
    expect(await code(operator(app, s, 'o5'))).toBe(4429);
  });

  it('1009 for a frame over WS_MAX_MESSAGE_SIZE; operators stay, the process stays healthy', async () => {
    const s = await newSession(app);
    const op = operator(app, s, 'alice');
    const pub = publisher(app, s);
    await primed(pub, [op]);
    await pub.send(Buffer.alloc(MAX_MESSAGE, 1)); // exactly the limit: relayed
    await op.receivedCount(1);
    expect(op.received[0]?.data.length).toBe(MAX_MESSAGE);
    const events = await emittedDuring(async () => {
      await pub.send(Buffer.alloc(MAX_MESSAGE + 1)).catch(() => {});
      expect(await code(pub)).toBe(1009);
    });
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'session.frame_too_large',
        severity: 'WARN',
        details: { sessionId: s.sessionId, limitBytes: MAX_MESSAGE },
      }),
    );
    expect(op.isOpen).toBe(true);
    expect((await fetch(`${app.url}/health`)).status).toBe(200);

    await waiting(s.sessionId);
    const next = publisher(app, s);
    await next.opened;
    await next.send('after 1009');
    await op.receivedCount(2);
    // The oversize frame was never relayed.
    expect(op.received.map((m) => m.data.length)).toEqual([MAX_MESSAGE, 'after 1009'.length]);
  });

  it('4408 for an operator that stops reading; the publisher and the other operators are not held up', async () => {
    const s = await newSession(app);
    const slow = operator(app, s, 'slow');
    const fast = operator(app, s, 'fast');
    const pub = publisher(app, s);
    await primed(pub, [slow, fast]);
    slow.ws.pause(); // stops reading its socket: the kernel's buffers fill, then the server's
    const frame = (i: number) => Buffer.alloc(60 * 1024, i % 251);
    let sent = 0;
    const events = await emittedDuring(async () => {
      for (let dropped = false; !dropped; ) {
        if (sent >= 2_000) throw new Error('the stalled operator was never dropped');
        await pub.send(frame(sent++));
        await fast.receivedCount(sent);
        if (sent % 25 === 0) {
          const state = await sessionState(app, s.sessionId);
          dropped = state.operators.find((o) => o.userId === 'slow')?.connected === false;
        }
      }
    });
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'session.operator_dropped',
        severity: 'WARN',
        details: expect.objectContaining({ sessionId: s.sessionId, userId: 'slow', limitBytes: MAX_BUFFER }),
      }),
    );
    // Once it reads again it gets what was queued for it, in order, then the close.
    slow.ws.resume();
    expect((await slow.closed).code).toBe(4408);
    expect(slow.received.length).toBeLessThan(sent);
    expect(slow.received.findIndex((m, i) => !m.data.equals(frame(i)))).toBe(-1);
    expect(fast.isOpen).toBe(true);
    expect(fast.received).toHaveLength(sent);
  });

  it('ignores what operators send: it is never relayed', async () => {
    const s = await newSession(app);
    const talker = operator(app, s, 'talker');
    const listener = operator(app, s, 'listener');
    const pub = publisher(app, s);
    const prime = await primed(pub, [talker, listener]);
    await talker.send('from an operator');
    await talker.send(Buffer.from([9, 9, 9]));
    await pub.send('from the publisher');
    await Promise.all([listener.receivedCount(1), talker.receivedCount(1)]);
    await new Promise((r) => setTimeout(r, 50));
    expect(listener.received.map((m) => m.data.toString())).toEqual(['from the publisher']);
    expect(pub.received).toEqual([]);
    expect(talker.isOpen).toBe(true);
    expect((await sessionState(app, s.sessionId)).framesRelayed).toBe(prime.frames + 1);
  });
});

describe('operators and counters', () => {
  it('lists each operator once (first join), with live connection state and counters', async () => {
    const s = await newSession(app);
    const alice1 = operator(app, s, 'alice');
    await alice1.opened;
    const pub = publisher(app, s);
    await primed(pub, [alice1]); // alice joined first
    const bob = operator(app, s, 'bob');
    const alice2 = operator(app, s, 'alice');
    const prime = await primed(pub, [alice1, bob, alice2]);
    const earlier = (await sessionState(app, s.sessionId)).framesRelayed - prime.frames;
    const earlierBytes = (await sessionState(app, s.sessionId)).bytesRelayed - prime.bytes;
    const payloads = [Buffer.alloc(1000), 'x'.repeat(10), Buffer.alloc(0)];
    for (const p of payloads) await pub.send(p);
    await bob.receivedCount(payloads.length);

    const frames = earlier + prime.frames + 3;
    const bytes = earlierBytes + prime.bytes + 1010;
    const live = await sessionState(app, s.sessionId);
    expect(live).toMatchObject({
      framesRelayed: frames,
      bytesRelayed: bytes,
      operatorConnects: 3,
      operatorDisconnects: 0,
    });
    expect(live.operators.map((o) => [o.userId, o.connected])).toEqual([
      ['alice', true],
      ['bob', true],
    ]);

    // Written while live too, about every second, not per frame.
    await eventually(async () => {
      const row = await app.db.prisma.session.findUniqueOrThrow({ where: { id: s.sessionId } });
      expect([Number(row.framesRelayed), Number(row.bytesRelayed), row.operatorConnects]).toEqual([frames, bytes, 3]);
    });

    await bob.close();
    await alice1.close();
    await eventually(async () => {
      const state = await sessionState(app, s.sessionId);
      expect(state.operatorDisconnects).toBe(2);
      // alice still has a second socket
      expect(state.operators.map((o) => [o.userId, o.connected])).toEqual([
        ['alice', true],
        ['bob', false],
      ]);
    });
    const joinedAt = (await sessionState(app, s.sessionId)).operators.map((o) => o.joinedAt);
    await alice2.close();
    await pub.close();
    // Stored once nobody is connected.
    await eventually(async () => {
      const row = await app.db.prisma.session.findUniqueOrThrow({ where: { id: s.sessionId } });
      expect([
        Number(row.framesRelayed),
        Number(row.bytesRelayed),
        row.operatorConnects,
        row.operatorDisconnects,
      ]).toEqual([frames, bytes, 3, 3]);
    });
    // A rejoin counts as a connect and keeps the first joinedAt.
    const back = operator(app, s, 'bob');
    await back.opened;
    await eventually(async () => {
      const state = await sessionState(app, s.sessionId);
      expect(state.operators.map((o) => o.joinedAt)).toEqual(joinedAt);
      expect(state).toMatchObject({ operatorConnects: 4, framesRelayed: frames });
    });
  });

  it('numbers frames on from the stored count after the session was idle', async () => {
    const s = await newSession(app);
    const first = publisher(app, s);
    await first.opened;
    await first.send('one'); // nobody listening: still relayed (to no one) and counted
    await first.send('two');
    await first.close();
    await eventually(async () => {
      const row = await app.db.prisma.session.findUniqueOrThrow({ where: { id: s.sessionId } });
      expect(Number(row.framesRelayed)).toBe(2);
    });
    const overWs = subscribeOverWs(graphqlWsClient(app), s.sessionId);
    const second = publisher(app, s);
    const prime = await primed(second, [overWs]);
    await second.send('next');
    await overWs.receivedCount(1);
    expect(overWs.frames[0]).toMatchObject({ data: 'next', seq: 2 + prime.frames + 1 });
  });
});

describe('streamFrames backpressure', () => {
  it('ends a subscription that cannot keep up with SUBSCRIBER_TOO_SLOW after what it had queued, others unaffected', async () => {
    const s = await newSession(app);
    // graphql-ws spoken by hand, over a socket the test can stop reading.
    const socket = new WebSocket(`${app.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const messages: { type: string; payload?: unknown }[] = [];
    const complete = new Promise<void>((resolve) =>
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString());
        messages.push(message);
        if (message.type === 'complete') resolve();
      }),
    );
    await new Promise((r) => socket.once('open', r));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${app.token}` } }));
    await eventually(() => expect(messages.map((m) => m.type)).toEqual(['connection_ack']));
    socket.send(
      JSON.stringify({
        id: '1',
        type: 'subscribe',
        payload: { query: STREAM_FRAMES, variables: { sessionId: s.sessionId } },
      }),
    );
    const fast = operator(app, s, 'fast');
    const pub = publisher(app, s);
    await primed(pub, [fast]);
    await eventually(() => expect(messages.length).toBeGreaterThan(1)); // the subscription gets frames
    socket.pause();

    const frame = (i: number) => Buffer.alloc(60 * 1024, i % 251);
    let sent = 0;
    const events = await emittedDuring(async () => {
      const dropped = () => spyCalls().some((e) => e.type === 'session.subscription_dropped');
      const spyCalls = () =>
        (EventBus.prototype.emit as unknown as { mock: { calls: [AppEvent][] } }).mock.calls.map((c) => c[0]);
      while (!dropped()) {
        if (sent >= 2_000) throw new Error('the stalled subscription was never dropped');
        await pub.send(frame(sent++));
        await fast.receivedCount(sent);
      }
    });
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'session.subscription_dropped',
        severity: 'WARN',
        details: expect.objectContaining({ sessionId: s.sessionId, limitBytes: MAX_BUFFER }),
      }),
    );

    socket.resume();
    await complete;
    type Next = { data?: { streamFrames: { seq: number } } | null; errors?: { extensions: { code: string } }[] };
    const results = messages.filter((m) => m.type === 'next').map((m) => m.payload as Next);
    expect(results.at(-1)?.errors?.map((e) => e.extensions.code)).toEqual(['SUBSCRIBER_TOO_SLOW']);
    // Everything before the error is the stream without a gap.
    const seqs = results.slice(0, -1).map((r) => r.data?.streamFrames.seq ?? 0);
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] ?? 0) + i));
    expect(fast.received).toHaveLength(sent);
    expect(fast.isOpen).toBe(true);
    socket.close();
  });
});
