import { createHash } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { bootstrapAdminToken, TokenVerifier } from '../src/modules/auth/tokens.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { createTestDatabase } from './helpers/db.js';

let app: TestApp;
let nodeId: string;
beforeAll(async () => {
  app = await startTestApp();
  const node = await app.db.prisma.node.create({
    data: { kind: 'CACHE', name: 'auth-c', host: '127.0.0.1', apiPort: 9 },
  });
  nodeId = node.id;
});

const UNAUTHENTICATED = {
  errors: [{ message: 'a valid bearer token is required', extensions: { code: 'UNAUTHENTICATED' } }],
};

describe('GraphQL over HTTP', () => {
  it.each([
    ['no token', null],
    ['a wrong token', 'sg_wrong'],
  ])('rejects %s with 401 UNAUTHENTICATED before looking at the query', async (_label, token) => {
    for (const query of [
      '{ streamers { edges { cursor } } }',
      '{ this is not graphql',
      `{ cacheNode(id: "${nodeId}") { id } }`,
    ]) {
      const res = await app.fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
        token,
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await res.json()).toEqual(UNAUTHENTICATED);
    }
  });

  it('accepts the token with any capitalisation of the Bearer scheme', async () => {
    const res = await app.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `bearer ${app.token}` },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('rejects SSE without a token and streams with one', async () => {
    const sse = (token: string | null) =>
      app.fetch(`/graphql?query=${encodeURIComponent('{ __typename }')}`, {
        headers: { accept: 'text/event-stream' },
        token,
      });
    expect((await sse(null)).status).toBe(401);
    const ok = await sse(app.token);
    expect(ok.headers.get('content-type')).toContain('text/event-stream');
    expect(await ok.text()).toContain('"__typename":"Query"');
  });
});

describe('graphql-ws', () => {
  const connect = (authorization?: string) =>
    new Promise<{ closeCode?: number; data?: unknown }>((resolve) => {
      const client = createClient({
        url: `${app.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        onNonLazyError: () => {}, // the close code is what the test looks at
        connectionParams: authorization ? { authorization } : {},
        on: { closed: (event) => resolve({ closeCode: (event as { code: number }).code }) },
      });
      client.subscribe(
        { query: '{ __typename }' },
        {
          next: (value) => {
            resolve({ data: value.data });
            void client.dispose();
          },
          error: () => {},
          complete: () => {},
        },
      );
    });

  it('closes the socket with 4403 Forbidden without a valid token in connection_init', async () => {
    expect((await connect()).closeCode).toBe(4403);
    expect((await connect('Bearer sg_wrong')).closeCode).toBe(4403);
  });

  it('runs operations for a valid token', async () => {
    expect((await connect(`Bearer ${app.token}`)).data).toEqual({ __typename: 'Query' });
  });
});

describe('other surfaces', () => {
  it('needs no token for /health and /ready', async () => {
    expect((await app.fetch('/health', { token: null })).status).toBe(200);
    expect(await (await app.fetch('/health', { token: null })).json()).toEqual({ status: 'ok' });
    expect((await app.fetch('/ready', { token: null })).status).toBe(200);
  });

  it.each(['/metrics', '/proxy/caches/ID/api/ping', '/proxy/nope/x/y', '/no-such-path'])(
    'answers %s without a token with the same 401, whether or not it exists',
    async (path) => {
      const res = await app.fetch(path.replace('ID', nodeId), { token: null });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({
        error: { code: 'UNAUTHENTICATED', message: 'a valid bearer token is required' },
      });
    },
  );

  it('serves GraphiQL without a CDN: every script and stylesheet is inline', async () => {
    const res = await app.fetch('/graphql', { headers: { accept: 'text/html' }, token: null });
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(html).toContain('StreamGate');
    expect(html.length).toBeGreaterThan(100_000); // the bundle itself, not a loader
    expect(html).not.toMatch(/<script[^>]+src=["']https?:/i);
    expect(html).not.toMatch(/<link[^>]+href=["']https?:/i);
  });
});

describe('tokens', () => {
  it('generates a bootstrap admin token once, storing only its SHA-256', async () => {
    const db = await createTestDatabase();
    const generated = await bootstrapAdminToken(db.prisma, undefined);
    const token = generated?.token;
    expect(generated).toMatchObject({ name: 'bootstrap-admin', id: expect.any(String) });
    expect(token).toMatch(/^sg_[A-Za-z0-9_-]{43}$/);
    expect(await bootstrapAdminToken(db.prisma, undefined)).toBeNull();
    const rows = await db.prisma.apiToken.findMany();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.id).toBe(generated?.id);
    expect(rows[0]?.tokenHash).toBe(
      createHash('sha256')
        .update(token ?? '')
        .digest('hex'),
    );
    expect(JSON.stringify(rows)).not.toContain(token);
    const verifier = new TokenVerifier(db.prisma, undefined);
    expect(await verifier.verify(token ?? null)).toMatchObject({ role: 'admin', name: 'bootstrap-admin' });
    expect(await verifier.verify(`${token}x`)).toBeNull();
  });

  it('does not generate one when ADMIN_TOKEN is configured, and accepts ADMIN_TOKEN', async () => {
    const db = await createTestDatabase();
    expect(await bootstrapAdminToken(db.prisma, 'configured-admin-token')).toBeNull();
    expect(await db.prisma.apiToken.count()).toBe(0);
    const verifier = new TokenVerifier(db.prisma, 'configured-admin-token');
    expect(await verifier.verify('configured-admin-token')).toMatchObject({ id: 'env', role: 'admin' });
    expect(await verifier.verify('configured-admin-tokeN')).toBeNull();
    expect(await verifier.verify(null)).toBeNull();
  });
});
