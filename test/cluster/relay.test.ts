import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import { createSharedSchema, gqlAt, type Instance, startInstance } from '../helpers/instance.js';
import { PrivateRedis } from '../helpers/redis.js';
import { type FrameSubscription, primed, RawPeer, subscribeOverWs } from '../sessions/helpers.js';

/**
 * The live-session relay across real `streamgate serve` processes on one PostgreSQL schema and one
 * Redis (issue 22): a publisher on one instance, operators on the others. Needs the second run of
 * `.ci/run` (TEST_DATABASE_URL, TEST_REDIS_URL), as test/cluster/cluster.test.ts.
 */

const PG = process.env.TEST_DATABASE_URL;
const REDIS = process.env.TEST_REDIS_URL;
const MAX_OPERATORS = 60;

interface Session {
  sessionId: string;
  clientId: string;
  streamKey: string;
}

async function newSession(on: Instance): Promise<Session> {
  const clientId = randomUUID();
  const res = await gqlAt<{ createSession: { sessionId: string; streamKey: string } }>(
    on,
    `mutation { createSession(clientId: "${clientId}") { sessionId streamKey } }`,
  );
  expect(res.errors).toBeUndefined();
  const created = res.data?.createSession as { sessionId: string; streamKey: string };
  return { ...created, clientId };
}

const relayUrl = (on: Instance, sessionId: string, userId: string) =>
  `${on.url.replace('http', 'ws')}/ws/stream/${sessionId}/${encodeURIComponent(userId)}`;

function publisherOn(on: Instance, s: Session): RawPeer {
  return new RawPeer(`${relayUrl(on, s.sessionId, s.clientId)}?key=${encodeURIComponent(s.streamKey)}`);
}

function operatorOn(on: Instance, s: Session, userId: string): RawPeer {
  return new RawPeer(relayUrl(on, s.sessionId, userId), { headers: { authorization: `Bearer ${on.token}` } });
}

async function sessionOn(on: Instance, id: string) {
  const res = await gqlAt<{
    session: {
      status: string;
      framesRelayed: number;
      bytesRelayed: number;
      operatorConnects: number;
      operatorDisconnects: number;
    };
  }>(on, `{ session(id: "${id}") { status framesRelayed bytesRelayed operatorConnects operatorDisconnects } }`);
  expect(res.errors).toBeUndefined();
  return res.data?.session;
}

/**
 * Connects an operator and reports whether it joined (it hears a frame `pub` sends) or how it was
 * refused. Disconnects it either way.
 */
async function tryJoin(on: Instance, s: Session, userId: string, pub: RawPeer): Promise<string> {
  const o = operatorOn(on, s, userId);
  const outcome = await Promise.race([
    o.closed.then(({ code }) => `closed ${code}`),
    (async () => {
      await o.opened;
      for (let i = 0; i < 10 && o.received.length === 0; i++) {
        await pub.send(`are you there, ${userId}?`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return o.received.length > 0 ? 'joined' : 'silent';
    })(),
  ]);
  o.ws.terminate();
  return outcome;
}

/** Instances A and B on a fresh schema and a Redis of their own, which a test may restart. */
async function twoInstancesOnPrivateRedis(): Promise<{ redis: PrivateRedis; a: Instance; b: Instance }> {
  const redis = await PrivateRedis.start();
  const database = await createSharedSchema(PG as string);
  const env = { DATABASE_URL: database, REDIS_URL: redis.url };
  const a = await startInstance({ ...env, INSTANCE_ID: 'a' });
  const b = await startInstance({ ...env, INSTANCE_ID: 'b', ADMIN_TOKEN: a.token });
  return { redis, a, b };
}

/** A frame whose bytes say which frame it is: binary (every byte value) or text, alternately. */
function frameNumber(n: number): { data: Buffer | string; binary: boolean } {
  if (n % 3 === 0) return { data: `text frame ${n} ✓`, binary: false };
  const bytes = randomBytes(256 + (n % 7) * 1024);
  bytes.writeUInt32BE(n, 0);
  return { data: bytes, binary: true };
}

describe.runIf(PG && REDIS)('the live-session relay across instances', () => {
  let a: Instance;
  let b: Instance;
  let c: Instance;

  beforeAll(async () => {
    const database = await createSharedSchema(PG as string);
    const env = {
      DATABASE_URL: database,
      REDIS_URL: REDIS as string,
      SESSION_MAX_OPERATORS: String(MAX_OPERATORS),
    };
    a = await startInstance({ ...env, INSTANCE_ID: 'a' });
    [b, c] = await Promise.all([
      startInstance({ ...env, INSTANCE_ID: 'b', ADMIN_TOKEN: a.token }),
      startInstance({ ...env, INSTANCE_ID: 'c', ADMIN_TOKEN: a.token }),
    ]);
  }, 60_000);

  afterAll(() => {
    for (const instance of [a, b, c]) instance?.child.kill('SIGTERM');
  });

  it('a publisher on A and 50 operators over B and C (and streamFrames on C): every frame, in order, byte-exact', async () => {
    const s = await newSession(a);
    const operators = Array.from({ length: 50 }, (_, i) => operatorOn(i % 2 ? b : c, s, `op-${i}`));
    const graphql = subscribeOverWs(graphqlWsClient(c), s.sessionId);
    await Promise.all(operators.map((o) => o.opened));
    const pub = publisherOn(a, s);
    const warmUp = await primed(pub, [...operators, graphql]);
    // A, which has none of them, knows every operator is connected (on B or C).
    const listed = await gqlAt<{ session: { operators: { userId: string; connected: boolean }[] } }>(
      a,
      `{ session(id: "${s.sessionId}") { operators { userId connected } } }`,
    );
    const connected = listed.data?.session.operators.filter((o) => o.connected).map((o) => o.userId);
    expect(connected?.sort()).toEqual(operators.map((_, i) => `op-${i}`).sort());

    const sent = Array.from({ length: 300 }, (_, n) => frameNumber(n));
    for (const frame of sent) await pub.send(frame.data, frame.binary);
    const bytes = sent.reduce((sum, f) => sum + Buffer.byteLength(f.data), 0);

    await Promise.all(operators.map((o) => o.receivedCount(sent.length, 20_000)));
    for (const o of operators) {
      expect(o.received.map((m) => m.binary)).toEqual(sent.map((f) => f.binary));
      expect(o.received.every((m, n) => m.data.equals(Buffer.from(sent[n]?.data ?? '')))).toBe(true);
    }
    await graphql.receivedCount(sent.length, 20_000);
    expect(graphql.frames.map((f) => f.seq)).toEqual(sent.map((_, n) => warmUp.frames + n + 1));
    expect(graphql.frames.map((f) => Buffer.from(f.data, f.binary ? 'base64' : 'utf8'))).toEqual(
      sent.map((f) => Buffer.from(f.data)),
    );

    // Frames are counted once (on A, where the publisher is); each instance counts its operators.
    const total = { framesRelayed: warmUp.frames + sent.length, bytesRelayed: warmUp.bytes + bytes };
    for (const on of [a, b, c]) {
      await eventually(
        async () => expect(await sessionOn(on, s.sessionId)).toMatchObject({ status: 'ACTIVE', ...total }),
        5_000,
      );
    }
    await eventually(
      async () => expect(await sessionOn(a, s.sessionId)).toMatchObject({ operatorConnects: 50 }),
      5_000,
    );
  }, 60_000);

  it('SESSION_MAX_OPERATORS counts the operators of every instance', async () => {
    const s = await newSession(b);
    const first = Array.from({ length: MAX_OPERATORS }, (_, i) => operatorOn([a, b, c][i % 3] as Instance, s, `u${i}`));
    const pub = publisherOn(a, s);
    await primed(pub, first);
    for (const on of [a, b, c]) expect(await tryJoin(on, s, 'one-too-many', pub)).toBe('closed 4429');
    // A place given back on C is free for an operator on A.
    await first[2]?.close();
    await eventually(async () => expect(await tryJoin(a, s, 'late', pub)).toBe('joined'), 5_000);
  }, 60_000);

  it('one publisher across the cluster; the next one, on another instance, counts on from the first', async () => {
    const s = await newSession(c);
    const pubA = publisherOn(a, s);
    const watch = subscribeOverWs(graphqlWsClient(b), s.sessionId);
    const { frames } = await primed(pubA, [watch]);
    const pubB = publisherOn(b, s);
    expect((await pubB.closed).code).toBe(4409);

    await pubA.close();
    const pubC = publisherOn(c, s);
    await pubC.opened;
    await pubC.send('from C');
    await watch.waitFor(() => watch.hasText('from C'), 10_000);
    const fromC = watch.frames.find((f) => f.data === 'from C');
    expect(fromC?.seq).toBe(frames + 1);
    expect(await sessionOn(a, s.sessionId)).toMatchObject({ status: 'ACTIVE' });
  }, 60_000);

  it('endSession on B closes the publisher on A and the operators on A and C with 4410, and completes streamFrames', async () => {
    const s = await newSession(a);
    const opA = operatorOn(a, s, 'on-a');
    const opC = operatorOn(c, s, 'on-c');
    const watch: FrameSubscription = subscribeOverWs(graphqlWsClient(c), s.sessionId);
    const pub = publisherOn(a, s);
    await primed(pub, [opA, opC, watch]);

    const ended = await gqlAt<{ endSession: { status: string } }>(
      b,
      `mutation { endSession(id: "${s.sessionId}") { status } }`,
    );
    expect(ended.data?.endSession.status).toBe('FINISHED');
    const codes = await Promise.all([pub.closed, opA.closed, opC.closed].map(async (p) => (await p).code));
    expect(codes).toEqual([4410, 4410, 4410]);
    await watch.done;
    expect(watch.errors).toEqual([]);
  }, 60_000);

  it('the places of a killed instance are free again within the lease (5 s)', async () => {
    const s = await newSession(a);
    const onC = Array.from({ length: MAX_OPERATORS }, (_, i) => operatorOn(c, s, `c${i}`));
    await Promise.all(onC.map((o) => o.opened));
    const pub = publisherOn(a, s);
    await primed(pub, onC);
    expect(await tryJoin(b, s, 'refused', pub)).toBe('closed 4429');

    c.child.kill('SIGKILL');
    await c.exited;
    const killedAt = Date.now();
    await eventually(async () => expect(await tryJoin(b, s, 'after-the-kill', pub)).toBe('joined'), 10_000);
    expect(Date.now() - killedAt).toBeLessThan(8_000);
  }, 60_000);
});

describe.runIf(PG)('the relay while Redis is away', () => {
  it('streams on within an instance, refuses new sockets with 1013, and catches up when Redis is back', async () => {
    const { redis, a, b } = await twoInstancesOnPrivateRedis();
    const s = await newSession(a);
    const onA = operatorOn(a, s, 'on-a');
    const onB = operatorOn(b, s, 'on-b');
    const pub = publisherOn(a, s);
    await primed(pub, [onA, onB]);

    await redis.kill();
    await pub.send('while Redis is away');
    await onA.waitFor(() => onA.hasText('while Redis is away'));
    // The session's connections cannot be counted: come back later.
    expect(await tryJoin(b, s, 'newcomer', pub)).toBe('closed 1013');

    await redis.start();
    await eventually(async () => expect(await tryJoin(b, s, 'newcomer', pub)).toBe('joined'), 15_000);
    await onB.waitFor(() => onB.hasText('are you there, newcomer?'));

    // An end announced while Redis is away is lost: B finds it in the database when Redis is back.
    await redis.kill();
    const ended = await gqlAt<{ endSession: { status: string } }>(
      a,
      `mutation { endSession(id: "${s.sessionId}") { status } }`,
    );
    expect(ended.data?.endSession.status).toBe('FINISHED');
    expect((await onA.closed).code).toBe(4410);
    expect(onB.isOpen).toBe(true);
    await redis.start();
    expect((await onB.closed).code).toBe(4410);
  }, 60_000);
});

describe.runIf(PG)('frames nobody else listens to', () => {
  /** Bytes Redis has read from its clients so far. */
  async function redisInput(url: string): Promise<number> {
    const client = new Redis(url);
    try {
      const stats = await client.info('stats');
      return Number(/total_net_input_bytes:(\d+)/.exec(stats)?.[1]);
    } finally {
      client.disconnect();
    }
  }

  it('stay off Redis (but for a probe a second), and flow at once when an operator joins elsewhere', async () => {
    const { redis, a, b } = await twoInstancesOnPrivateRedis();
    const s = await newSession(a);
    const onA = operatorOn(a, s, 'on-a');
    const pub = publisherOn(a, s);
    await primed(pub, [onA]);

    const frame = Buffer.alloc(64 * 1024, 7);
    const before = await redisInput(redis.url);
    for (let i = 0; i < 60; i++) {
      await pub.send(frame);
      await new Promise((resolve) => setTimeout(resolve, 33));
    }
    await onA.receivedCount(60);
    const sent = (await redisInput(redis.url)) - before;
    // 60 frames are 3.9 MB; kept off Redis, what is left is a probe a second and the heartbeats.
    expect(sent).toBeLessThan(600 * 1024);

    const onB = operatorOn(b, s, 'on-b');
    await eventually(async () => {
      const res = await gqlAt<{ session: { operators: { userId: string; connected: boolean }[] } }>(
        b,
        `{ session(id: "${s.sessionId}") { operators { userId connected } } }`,
      );
      expect(res.data?.session.operators).toContainEqual({ userId: 'on-b', connected: true });
    }, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 50)); // B's "listening" crossing Redis
    for (let i = 0; i < 3; i++) {
      await pub.send(`after B joined ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await onB.waitFor(() => [0, 1, 2].every((i) => onB.hasText(`after B joined ${i}`)), 2_000);
  }, 60_000);
});
