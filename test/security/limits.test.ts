import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { generateToken } from '../../src/modules/auth/tokens.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';

/**
 * What a peer without a token can hold or cost: connections that send nothing or dribble, too
 * many connections, slow bodies, and a stream of invalid tokens.
 */

/** Opens a raw TCP connection to the app; resolves `closed` with ms since open when the server closes it. */
function rawSocket(app: TestApp): { socket: Socket; closed: Promise<number> } {
  const { port } = new URL(app.url);
  const opened = performance.now();
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - opened)));
  return { socket, closed };
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.ceil((p / 100) * values.length) - 1] ?? NaN;

describe('connections without a request', () => {
  it('closes 200 silent or dribbling sockets within the header timeout, while a client with a token keeps being served', async () => {
    const t = await startTestApp({ env: { HEADERS_TIMEOUT_MS: '1000' } });
    const sockets = Array.from({ length: 200 }, (_, i) => {
      const raw = rawSocket(t);
      if (i % 2 === 1) {
        // Dribbling: a request line, then one header byte every 300 ms, forever.
        raw.socket.write('POST /graphql HTTP/1.1\r\nHost: x\r\n');
        const timer = setInterval(() => raw.socket.write('X'), 300);
        raw.closed.then(() => clearInterval(timer));
      }
      return raw;
    });
    const latencies: number[] = [];
    let failures = 0;
    const until = performance.now() + 1_500;
    while (performance.now() < until) {
      const started = performance.now();
      const res = await t.gql('{ __typename }');
      latencies.push(performance.now() - started);
      if (res.status !== 200) failures++;
    }
    const closedAfter = await Promise.all(sockets.map((s) => s.closed));
    // Node checks header deadlines every second, so "within" is the timeout plus that period.
    expect(Math.max(...closedAfter)).toBeLessThan(1_000 + 1_500);
    expect(failures).toBe(0);
    expect(latencies.length).toBeGreaterThan(10);
    // A loose bound (the suite shares two cores): being starved by the sockets would be seconds.
    expect(percentile(latencies, 99)).toBeLessThan(500);
  });

  it('drops connections past MAX_CONNECTIONS_PER_ADDRESS and MAX_CONNECTIONS', async () => {
    const perAddress = await startTestApp({ env: { MAX_CONNECTIONS_PER_ADDRESS: '3' } });
    const held = [rawSocket(perAddress), rawSocket(perAddress), rawSocket(perAddress)];
    await Promise.all(held.map((h) => new Promise((r) => h.socket.once('connect', r))));
    const fourth = rawSocket(perAddress);
    const closedIn = await fourth.closed;
    expect(closedIn).toBeLessThan(1_000);
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    // Their slots are free again.
    expect((await perAddress.gql('{ __typename }')).status).toBe(200);

    const total = await startTestApp({ env: { MAX_CONNECTIONS: '2' } });
    const two = [rawSocket(total), rawSocket(total)];
    await Promise.all(two.map((h) => new Promise((r) => h.socket.once('connect', r))));
    expect(await rawSocket(total).closed).toBeLessThan(1_000);
    for (const h of two) h.socket.destroy();
  });
});

describe('slow bodies', () => {
  it('answers 408 when a GraphQL body does not arrive within REQUEST_TIMEOUT_MS', async () => {
    const t = await startTestApp({ env: { REQUEST_TIMEOUT_MS: '500' } });
    const raw = rawSocket(t);
    let answer = '';
    raw.socket.on('data', (chunk) => {
      answer += chunk.toString();
    });
    raw.socket.write(
      `POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.token}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"query":`,
    );
    const closedIn = await raw.closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toContain('REQUEST_TIMEOUT');
    expect(closedIn).toBeLessThan(2_000);
  });
});

describe('failed authentication', () => {
  it('costs no lookup for a token that cannot be one, and past the limit: 429 with Retry-After and one WARN event', async () => {
    const db = await createTestDatabase({ logQueries: true });
    // Token lookups only: the event log writes its entries meanwhile.
    const queries = { total: 0 };
    const prisma = db.prisma as unknown as { $on(event: 'query', listener: (e: { query: string }) => void): void };
    prisma.$on('query', (e) => {
      if (/FROM "[^"]+"\."ApiToken"/.test(e.query)) queries.total++;
    });
    const t = await startTestApp({ db, env: { AUTH_FAILURES_PER_MINUTE: '5', EVENT_LOG_MIN_SEVERITY: 'WARN' } });

    // Not shaped like a StreamGate token: refused without a database lookup (but counted).
    let before = queries.total;
    for (let i = 0; i < 3; i++) {
      expect((await t.gql('{ __typename }', undefined, { token: `garbage-${i}` })).status).toBe(401);
    }
    expect(queries.total - before).toBe(0);

    // Shaped like one: looked up. The fifth failure is the last answered 401; then 429 for a
    // minute, without a lookup, whatever the token.
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await t.gql('{ __typename }', undefined, { token: generateToken() })).status);
    expect(statuses).toEqual([401, 401, 429, 429, 429]);
    before = queries.total;
    expect((await t.gql('{ __typename }', undefined, { token: generateToken() })).status).toBe(429);
    expect(queries.total - before).toBe(0);
    const limited = await t.fetch('/metrics', { token: generateToken() });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // graphql-ws and the relay refuse the limited address too (1013: try again later).
    const wsClose = (path: string, init?: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${t.url.replace('http', 'ws')}${path}`, init ? ['graphql-transport-ws'] : []);
        ws.on('open', () => {
          if (init) ws.send(init);
        });
        ws.on('close', (code) => resolve(code));
        ws.on('error', () => {});
      });
    const init = JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${generateToken()}` } });
    expect(await wsClose('/graphql', init)).toBe(1013);
    expect(await wsClose(`/ws/stream/${crypto.randomUUID()}/op?access_token=${generateToken()}`)).toBe(1013);

    await eventually(async () => {
      const events = await t.db.prisma.eventLog.findMany({ where: { type: 'auth.rate_limited' } });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ severity: 'WARN', source: 'auth' });
    });
  });
});
