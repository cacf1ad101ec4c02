import { connect } from 'node:net';
import { auditServer } from 'graphql-http';
import { createClient } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { bootstrapAdminToken } from '../src/modules/auth/tokens.js';
import { MAX_GRAPHQL_BODY_BYTES } from '../src/server/http/graphql-body.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { createTestDatabase, TEST_DATABASE_URL } from './helpers/db.js';
import { startFakeNode } from './helpers/fake-node.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

describe('GraphQL request bodies', () => {
  const post = (body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
    app.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      ...(typeof body === 'string' ? {} : { duplex: 'half' }),
    } as RequestInit);

  it('takes a body up to MAX_GRAPHQL_BODY_BYTES, variables included', async () => {
    const filler = 'x'.repeat(MAX_GRAPHQL_BODY_BYTES - 200);
    const res = await post(
      JSON.stringify({ query: 'query($f: String!) { route(alias: $f) { alias } }', variables: { f: filler } }),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { route: null } });
  });

  it('refuses a larger one with 413 PAYLOAD_TOO_LARGE, by its Content-Length or as it streams', async () => {
    const big = JSON.stringify({ query: '{ __typename }', variables: { f: 'x'.repeat(MAX_GRAPHQL_BODY_BYTES) } });
    const declared = await post(big);
    expect(declared.status).toBe(413);
    expect((await declared.json()).error.code).toBe('PAYLOAD_TOO_LARGE');

    // Chunked: no Content-Length, the limit is found while reading.
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 40) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const streamed = await post(stream);
    expect(streamed.status).toBe(413);
  });
});

describe('GraphQL over HTTP compliance', () => {
  it('passes every graphql-http server audit', async () => {
    const results = await auditServer({
      url: `${app.url}/graphql`,
      fetchFn: (input: RequestInfo | URL, init?: RequestInit) => {
        const headers = new Headers(init?.headers);
        headers.set('authorization', `Bearer ${app.token}`);
        return fetch(input, { ...init, headers });
      },
    });
    const failures = results.filter((r) => r.status !== 'ok').map((r) => `${r.id} ${r.name}: ${r.reason}`);
    expect(results.length).toBeGreaterThan(50);
    expect(failures).toEqual([]);
  });

  it('answers malformed GraphQL with the standard 400 and a syntax error', async () => {
    const res = await app.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: '{ streamers { ' }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { message: string }[] };
    expect(body.errors[0]?.message).toMatch(/^Syntax Error/);
  });
});

describe('probes, metrics and unknown paths', () => {
  it('serves Prometheus metrics that count requests by surface', async () => {
    await app.fetch('/health');
    const res = await app.fetch('/metrics');
    const text = await res.text();
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(text).toMatch(/streamgate_http_requests_total\{surface="health",method="GET",status="200"\} [1-9]/);
    expect(text).toContain('streamgate_process_resident_memory_bytes');
  });

  it('answers an unknown path with a JSON 404 once authenticated', async () => {
    const res = await app.fetch('/nothing-here');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });

  it('reports not ready (503) while the database does not answer, and ready again after', async () => {
    // Embedded: the database closes under the app. PostgreSQL: the network to it is cut.
    const proxy = TEST_DATABASE_URL ? await startTcpProxy(Number(new URL(TEST_DATABASE_URL).port || 5432)) : undefined;
    const db = await createTestDatabase({ viaPort: proxy?.port });
    const other = await startTestApp({ db });
    const storedToken = (await bootstrapAdminToken(db.prisma, undefined))?.token ?? '';
    expect((await other.fetch('/ready', { token: null })).status).toBe(200);
    if (proxy) proxy.cut();
    else await db.close();
    const ready = await other.fetch('/ready', { token: null });
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'database unavailable' });
    expect((await other.fetch('/health', { token: null })).status).toBe(200);
    // The passthrough cannot find a node it has not seen: a clear 503, not a 404 or a 500.
    const proxied = await other.fetch('/proxy/caches/01a20000-0000-7000-8000-00000000beef/api/ping');
    expect(proxied.status).toBe(503);
    expect(await proxied.json()).toMatchObject({ error: { code: 'REGISTRY_UNAVAILABLE' } });
    // A stored token cannot be checked: 503 "try again", neither a 401 verdict nor a 500.
    const gql = await other.gql('{ __typename }', undefined, { token: storedToken });
    expect(gql.status).toBe(503);
    expect(gql.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    const metrics = await other.fetch('/metrics', { token: storedToken });
    expect(metrics.status).toBe(503);
    expect(metrics.headers.get('retry-after')).toBe('5');
    if (proxy) {
      proxy.restore();
      expect((await other.fetch('/ready', { token: null })).status).toBe(200);
    }
  });
});

describe('graceful shutdown', () => {
  it('lets an in-flight request finish, refuses new connections, closes sockets with 1001', async () => {
    const node = await startFakeNode();
    node.override = (req, res) => {
      if (!req.url?.startsWith('/slow')) return false;
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('finished'), 400);
      return true;
    };
    const own = await startTestApp();
    const created = await own.db.prisma.node.create({
      data: { kind: 'SLB', name: 'slow', host: '127.0.0.1', apiPort: node.port },
    });
    const wsClosed = new Promise<number>((resolve) => {
      const client = createClient({
        url: `${own.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => {},
        connectionParams: { authorization: `Bearer ${own.token}` },
        on: { closed: (event) => resolve((event as { code: number }).code) },
      });
      void client;
    });
    await new Promise((r) => setTimeout(r, 100)); // let the socket connect
    const inFlight = own.fetch(`/proxy/slbs/${created.id}/slow`);
    await new Promise((r) => setTimeout(r, 100)); // the request has reached the node
    const stopped = own.app.stop();
    expect(await wsClosed).toBe(1001);
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('finished');
    await stopped;
    await expect(fetch(`${own.url}/health`)).rejects.toThrow();
  });
});

describe('operation limits', () => {
  it('rejects an operation with too many aliases before running it', async () => {
    const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: streamers { edges { cursor } }`).join(' ');
    const res = await app.gql(`{ ${aliases} }`);
    expect(res.data ?? null).toBeNull();
    expect(res.errors?.[0]?.message).toMatch(/aliases/i);
  });

  it('rejects an oversized document over graphql-ws too', async () => {
    // 600 variable definitions: ~2,400 tokens, past the 2,000-token parse limit.
    const variables = Array.from({ length: 600 }, (_, i) => `$v${i}: Int`).join(', ');
    const huge = `query Huge(${variables}) { __typename }`;
    const result = await new Promise<unknown>((resolve) => {
      const client = createClient({
        url: `${app.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${app.token}` },
      });
      client.subscribe(
        { query: huge },
        {
          next: (value) => resolve(value),
          error: (errors) => resolve(errors),
          complete: () => void client.dispose(),
        },
      );
    });
    expect(JSON.stringify(result)).toMatch(/token limit/i);
  });
});

describe('shutdown with a peer that never answers', () => {
  it('does not wait past SHUTDOWN_TIMEOUT_MS for a WebSocket that ignores the close handshake', async () => {
    const own = await startTestApp({ env: { SHUTDOWN_TIMEOUT_MS: '500' } });
    const { port } = new URL(own.url);
    // A raw socket completes the WebSocket upgrade, then never reads or answers anything.
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => {});
    const upgraded = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.write(
      [
        'GET /graphql HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Protocol: graphql-transport-ws',
        '',
        '',
      ].join('\r\n'),
    );
    await upgraded;
    socket.pause();
    const started = Date.now();
    await own.app.stop();
    expect(Date.now() - started).toBeLessThan(3_000); // ws' own close timeout would be 30 s
    socket.destroy();
  });
});
