import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { countQueries, createTestDatabase } from '../helpers/db.js';
import { graphqlWsClient } from '../helpers/graphql-ws.js';
import {
  endSession,
  type FrameResult,
  newSession,
  operator,
  primed,
  publisher,
  type Received,
  sessionState,
  subscribeOverSse,
  subscribeOverWs,
} from './helpers.js';

const FRAMES = 1_000;

let app: TestApp;
let queries: { readonly total: number };
beforeAll(async () => {
  const db = await createTestDatabase({ logQueries: true });
  queries = countQueries(db);
  app = await startTestApp({ db });
});

/** Mixed frames: text with multi-byte characters, binary of every size up to 4 KiB, empty ones of both kinds. */
function makeFrames(): Received[] {
  const alphabet = ['a', 'Z', ' ', 'é', '€', '𝄞', '\n', '"', '\\'];
  return Array.from({ length: FRAMES }, (_, i) => {
    if (i === 10) return { data: Buffer.alloc(0), binary: false };
    if (i === 11) return { data: Buffer.alloc(0), binary: true };
    if (i % 3 === 0) {
      const text = Array.from({ length: (i * 7) % 700 }, (_, j) => alphabet[(i + j) % alphabet.length]).join('');
      return { data: Buffer.from(`${i}:${text}`), binary: false };
    }
    return { data: randomBytes((i * 37) % 4096), binary: true };
  });
}

describe('fan-out', () => {
  it('relays 1,000 mixed frames in order and byte-exact to raw, graphql-ws and SSE subscribers at once', async () => {
    const s = await newSession(app);
    const raw = [operator(app, s, 'raw-1'), operator(app, s, 'raw-2'), operator(app, s, 'raw-3')];
    const wsClients = [graphqlWsClient(app), graphqlWsClient(app)];
    const overWs = [
      subscribeOverWs(wsClients[0]!, s.sessionId),
      subscribeOverWs(wsClients[0]!, s.sessionId),
      subscribeOverWs(wsClients[1]!, s.sessionId),
    ];
    const overSse = [subscribeOverSse(app, s.sessionId)];
    const graphql = [...overWs, ...overSse];
    const pub = publisher(app, s);
    const prime = await primed(pub, [...raw, ...graphql]);

    const frames = makeFrames();
    const statementsBefore = queries.total;
    for (const frame of frames) pub.ws.send(frame.data, { binary: frame.binary });
    await Promise.all(raw.map((p) => p.receivedCount(FRAMES)));

    for (const peer of raw) {
      const got = peer.received;
      expect(got.length).toBe(FRAMES);
      // One comparison per frame would be 3,000 assertions; find the first difference instead.
      const firstBad = got.findIndex(
        (m, i) => m.binary !== frames[i]?.binary || !m.data.equals(frames[i]?.data ?? Buffer.alloc(1)),
      );
      expect(firstBad).toBe(-1);
    }

    await Promise.all(graphql.map((sub) => sub.receivedCount(FRAMES)));
    // No database work per frame: only the periodic counter writes (about one a second).
    expect(queries.total - statementsBefore).toBeLessThan(20);
    expect((await sessionState(app, s.sessionId)).framesRelayed).toBe(prime.frames + FRAMES);
    for (const sub of graphql) {
      expect(sub.errors).toEqual([]);
      const got = sub.frames;
      expect(got.length).toBe(FRAMES);
      const expected = frames.map(
        (f, i): FrameResult => ({
          sessionId: s.sessionId,
          seq: prime.frames + 1 + i,
          receivedAt: got[i]?.receivedAt ?? '',
          size: f.data.length,
          binary: f.binary,
          data: f.binary ? f.data.toString('base64') : f.data.toString('utf8'),
        }),
      );
      const firstBad = got.findIndex((g, i) => JSON.stringify(g) !== JSON.stringify(expected[i]));
      expect(firstBad === -1 ? null : { got: got[firstBad], expected: expected[firstBad] }).toBeNull();
      const times = got.map((g) => Date.parse(g.receivedAt));
      expect(times.every((t, i) => Number.isFinite(t) && (i === 0 || t >= (times[i - 1] ?? 0)))).toBe(true);
    }

    await endSession(app, s.sessionId);
    expect((await Promise.all(raw.map((p) => p.closed))).map((c) => c.code)).toEqual([4410, 4410, 4410]);
    await Promise.all(graphql.map((sub) => sub.done));
    expect(graphql.map((sub) => sub.errors)).toEqual(graphql.map(() => []));
  });
});
