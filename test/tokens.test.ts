import type { Role, StreamGateClient, StreamGateError } from '@streamgate/client';
import { buildSchema, findBreakingChanges } from 'graphql';
import { createClient } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { bootstrapAdminToken, hashToken, type Principal, TokenVerifier } from '../src/modules/auth/index.js';
import { schema } from '../src/schema.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { eventually } from './helpers/eventually.js';
import { dispose } from './helpers/leftovers.js';
import { rejection, sdkClient } from './helpers/sdk.js';
import { newSession, operator } from './sessions/helpers.js';

/** The token API exactly as issue 18 gives it: clients are written against this shape. */
const ISSUE_SDL = `
  scalar DateTime
  enum Role { VIEWER OPERATOR ADMIN }
  type ApiToken { id: ID! name: String! role: Role! createdAt: DateTime! expiresAt: DateTime lastUsedAt: DateTime }
  type CreateApiTokenPayload { token: String! apiToken: ApiToken! }
  type Query { apiTokens: [ApiToken!]! }
  type Mutation {
    createApiToken(name: String!, role: Role!, expiresAt: DateTime): CreateApiTokenPayload!
    revokeApiToken(id: ID!): ApiToken
  }
`;

describe('token management', () => {
  let t: TestApp;
  let sg: StreamGateClient;
  beforeAll(async () => {
    t = await startTestApp();
    sg = sdkClient(t);
  });

  const create = async (name: string, role: Role, expiresAt?: string) =>
    (await sg.createApiToken({ name, role, expiresAt })).createApiToken;
  const revoke = async (id: string) => (await sg.revokeApiToken({ id })).revokeApiToken;
  /** Whether a call with `token` is served; else the HTTP status and code of its refusal. */
  const servedWith = async (token: string) =>
    sdkClient(t, { token })
      .settings()
      .then(
        () => 'served',
        (error: StreamGateError) => `${error.status} ${error.code}`,
      );
  const ws = (token: string) => {
    const client = createClient({
      url: `${t.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${token}` },
    });
    dispose(client, (c) => c.dispose());
    const closed = new Promise<number>((resolve) =>
      client.on('closed', (event) => resolve((event as { code: number }).code)),
    );
    const results = client.iterate({ query: 'subscription { healthChanged { subjectId } }' });
    void results.next().catch(() => {});
    return { closed, opened: new Promise<void>((resolve) => client.on('connected', () => resolve())) };
  };

  it('serves exactly the shape of the issue', () => {
    expect(findBreakingChanges(buildSchema(ISSUE_SDL), schema)).toEqual([]);
  });

  it('creates a token whose secret is shown once and stored only as its hash; the list never shows it', async () => {
    const { token, apiToken } = await create('dashboard', 'VIEWER');
    expect(token).toMatch(/^sg_[A-Za-z0-9_-]{43}$/);
    expect(apiToken).toMatchObject({ name: 'dashboard', role: 'VIEWER', expiresAt: null });
    const row = await t.db.prisma.apiToken.findUniqueOrThrow({ where: { id: apiToken.id } });
    expect(row.tokenHash).toBe(hashToken(token));
    const listed = await t.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ apiTokens { id name role createdAt expiresAt lastUsedAt } }' }),
    });
    const text = await listed.text();
    expect(text).toContain('"dashboard"');
    expect(text).not.toContain(token);
    expect(text).not.toContain(row.tokenHash);
    const logged = await t.db.prisma.eventLog.findFirst({ where: { type: 'auth.token_created' } });
    expect(logged).toMatchObject({
      actorId: 'env',
      actorName: 'ADMIN_TOKEN',
      details: { name: 'dashboard', role: 'viewer' },
    });
  });

  it('refuses a bad name, a past expiry and a name in use, writing nothing', async () => {
    const before = await t.db.prisma.apiToken.count();
    const bad = await rejection(create(' has space', 'VIEWER'));
    expect(bad).toMatchObject({ code: 'BAD_USER_INPUT', field: 'name' });
    const past = await rejection(create('late', 'VIEWER', '2020-01-01T00:00:00Z'));
    expect(past).toMatchObject({ code: 'BAD_USER_INPUT', field: 'expiresAt' });
    await create('taken', 'OPERATOR');
    expect((await rejection(create('taken', 'ADMIN'))).code).toBe('CONFLICT');
    expect(await t.db.prisma.apiToken.count()).toBe(before + 1);
  });

  it('records use in batches: lastUsedAt is written by the flush, not by each request', async () => {
    const { token, apiToken } = await create('busy', 'VIEWER');
    // The verifier alone (no timer): using a token remembers it and writes nothing.
    const verifier = new TokenVerifier(t.db.prisma, undefined);
    const principal = await verifier.verify(token);
    expect(principal).toMatchObject({ id: apiToken.id, role: 'viewer' });
    for (let i = 0; i < 5; i++) verifier.touch(principal as Principal);
    const row = () => t.db.prisma.apiToken.findUniqueOrThrow({ where: { id: apiToken.id } });
    expect((await row()).lastUsedAt).toBeNull();
    await verifier.flushUsage();
    expect((await row()).lastUsedAt?.getTime()).toBeGreaterThan(Date.now() - 60_000);
    // The app's service remembers every authenticated request the same way.
    await t.db.prisma.apiToken.update({ where: { id: apiToken.id }, data: { lastUsedAt: null } });
    expect(await servedWith(token)).toBe('served');
    await t.app.services.auth.flushUsage();
    expect((await row()).lastUsedAt).not.toBeNull();
  });

  it('revoking refuses the next request and closes the token’s graphql-ws and relay connections with 4403', async () => {
    const { token, apiToken } = await create('revoked-op', 'OPERATOR');
    expect(await servedWith(token)).toBe('served');
    const socket = ws(token);
    await socket.opened;
    const s = await newSession(t);
    const watcher = operator(t, s, 'watcher', { header: `Bearer ${token}` });
    await watcher.opened;
    await eventually(async () => expect((await sg.session({ id: s.sessionId })).session?.operatorConnects).toBe(1));

    expect(await revoke(apiToken.id)).toMatchObject({ id: apiToken.id, name: 'revoked-op', role: 'OPERATOR' });
    expect(await servedWith(token)).toBe('401 UNAUTHENTICATED');
    expect(await socket.closed).toBe(4403);
    expect((await watcher.closed).code).toBe(4403);
    const logged = await t.db.prisma.eventLog.findFirst({ where: { type: 'auth.token_revoked' } });
    expect(logged).toMatchObject({ actorName: 'ADMIN_TOKEN', details: { name: 'revoked-op', closedConnections: 2 } });
    expect(await revoke(apiToken.id)).toBeNull();
  });

  it('an expired token is refused, and its open connections are closed at the next re-check', async () => {
    const expiresAt = new Date(Date.now() + 1_500).toISOString();
    const { token } = await create('short-lived', 'OPERATOR', expiresAt);
    expect(await servedWith(token)).toBe('served');
    const socket = ws(token);
    await socket.opened;
    const s = await newSession(t);
    const watcher = operator(t, s, 'expiring', { header: `Bearer ${token}` });
    await watcher.opened;
    await new Promise((resolve) => setTimeout(resolve, 1_700));
    expect(await servedWith(token)).toBe('401 UNAUTHENTICATED');
    await t.app.services.auth.recheckConnections();
    expect(await socket.closed).toBe(4403);
    expect((await watcher.closed).code).toBe(4403);
  });

  it('the bootstrap admin token can be revoked like any other', async () => {
    const boot = await bootstrapAdminToken(t.db.prisma, undefined);
    expect(boot).not.toBeNull();
    expect(await servedWith(boot?.token ?? '')).toBe('served');
    expect(await revoke(boot?.id ?? '')).toMatchObject({ name: 'bootstrap-admin', role: 'ADMIN' });
    expect(await servedWith(boot?.token ?? '')).toBe('401 UNAUTHENTICATED');
  });
});
