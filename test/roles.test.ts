import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { GraphQLObjectType } from 'graphql';
import { createClient } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PROJECT_ROOT } from '../src/lib/paths.js';
import { generateToken, hashToken } from '../src/modules/auth/index.js';
import { schema } from '../src/schema.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { dispose } from './helpers/leftovers.js';
import { readSse } from './helpers/sse.js';
import { newSession, operator } from './sessions/helpers.js';

const ROLE_NAMES = ['viewer', 'operator', 'admin'] as const;

/** Every root field of the served schema with the roles its definition requires. */
function requiredRoles(): Map<string, string[]> {
  const roots = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()];
  const required = new Map<string, string[]>();
  for (const root of roots as GraphQLObjectType[]) {
    for (const field of Object.values(root.getFields())) {
      const options = field.extensions?.pothosOptions as { authScopes?: Record<string, unknown> } | undefined;
      const scopes = Object.entries(options?.authScopes ?? {}).filter(([, on]) => on === true);
      required.set(
        `${root.name}.${field.name}`,
        scopes.map(([role]) => role),
      );
    }
  }
  return required;
}

/** The README's matrix: `| role | Query.a, Mutation.b |` rows under "### Role matrix". */
async function readmeMatrix(): Promise<Map<string, string>> {
  const readme = await readFile(resolve(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.split('### Role matrix')[1]?.split('\n#')[0] ?? '';
  const matrix = new Map<string, string>();
  for (const [, role, fields] of section.matchAll(/^\| `(\w+)` \| (.+) \|$/gm)) {
    for (const field of (fields ?? '').matchAll(/`(\w+\.\w+)`/g)) matrix.set(field[1] ?? '', role ?? '');
  }
  return matrix;
}

describe('the role matrix', () => {
  it('gives every root field exactly one required role, declared where the field is defined', () => {
    const required = requiredRoles();
    expect(required.size).toBeGreaterThanOrEqual(40);
    const wrong = [...required].filter(([, roles]) => roles.length !== 1 || !ROLE_NAMES.includes(roles[0] as never));
    expect(wrong).toEqual([]);
  });

  it('is the README matrix, field for field', async () => {
    const fromSchema = new Map([...requiredRoles()].map(([field, [role]]) => [field, role ?? '']));
    expect(Object.fromEntries(await readmeMatrix())).toEqual(Object.fromEntries(fromSchema));
  });
});

describe('roles, checked on every surface', () => {
  let t: TestApp;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestApp();
    for (const role of [...ROLE_NAMES, 'superuser']) {
      tokens[role] = generateToken();
      await t.db.prisma.apiToken.create({ data: { name: `${role}-token`, role, tokenHash: hashToken(tokens[role]) } });
    }
  });

  const as = (role: string) => ({ token: tokens[role] ?? null });
  const codesOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
    (res.errors ?? []).map((e) => e.extensions?.code);
  const createCache = (name: string) =>
    `mutation { createCacheNode(input: { name: "${name}", host: "127.0.0.1", apiPort: 9 }) { id } }`;

  it('viewer: reads, but changes nothing and pings nothing (FORBIDDEN, and nothing written)', async () => {
    const read = await t.gql(
      '{ cacheNodes(first: 5) { edges { node { id } } } settings { staleThresholdDays } }',
      {},
      as('viewer'),
    );
    expect(read.errors).toBeUndefined();
    const create = await t.gql(createCache('by-viewer'), {}, as('viewer'));
    expect(create.status).toBe(200);
    expect(codesOf(create)).toEqual(['FORBIDDEN']);
    expect(create.data).toBeNull();
    expect(await t.db.prisma.node.count({ where: { name: 'by-viewer' } })).toBe(0);
    const ping = await t.gql(
      'mutation { ping(id: "01a20000-0000-7000-8000-000000000000") { status } }',
      {},
      as('viewer'),
    );
    expect(codesOf(ping)).toEqual(['FORBIDDEN']);
    const session = await t.gql(
      `mutation { createSession(clientId: "${crypto.randomUUID()}") { sessionId } }`,
      {},
      as('viewer'),
    );
    expect(codesOf(session)).toEqual(['FORBIDDEN']);
  });

  it('operator: pings and runs sessions, but changes no configuration', async () => {
    const ping = await t.gql(
      'mutation { ping(id: "01a20000-0000-7000-8000-000000000000") { status } }',
      {},
      as('operator'),
    );
    expect(codesOf(ping)).toEqual(['NOT_FOUND']); // allowed: there is no such node
    const session = await t.gql(
      `mutation { createSession(clientId: "${crypto.randomUUID()}") { sessionId } }`,
      {},
      as('operator'),
    );
    expect(session.errors).toBeUndefined();
    const create = await t.gql(createCache('by-operator'), {}, as('operator'));
    expect(codesOf(create)).toEqual(['FORBIDDEN']);
    const settings = await t.gql(
      'mutation { updateSettings(input: { staleThresholdDays: 9 }) { staleThresholdDays } }',
      {},
      as('operator'),
    );
    expect(codesOf(settings)).toEqual(['FORBIDDEN']);
  });

  it('admin: changes configuration', async () => {
    const create = await t.gql<{ createCacheNode: { id: string } }, unknown>(createCache('by-admin'), {}, as('admin'));
    expect(create.errors).toBeUndefined();
    expect(create.data?.createCacheNode.id).toBeTypeOf('string');
  });

  it('a stored role that is not one of the three is refused at authentication, never treated as admin', async () => {
    const res = await t.gql(createCache('by-superuser'), {}, as('superuser'));
    expect(res.status).toBe(401);
    expect(codesOf(res)).toEqual(['UNAUTHENTICATED']);
    expect((await t.fetch('/metrics', as('superuser'))).status).toBe(401);
  });

  it('plain HTTP: /metrics for viewers, the passthrough for admins only (403 FORBIDDEN)', async () => {
    expect((await t.fetch('/metrics', as('viewer'))).status).toBe(200);
    const path = '/proxy/caches/01a20000-0000-7000-8000-000000000000/api/ping';
    for (const role of ['viewer', 'operator']) {
      const res = await t.fetch(path, as(role));
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: { code: 'FORBIDDEN' } });
    }
    expect((await t.fetch(path, as('admin'))).status).toBe(404); // allowed: no such node
  });

  it('graphql-ws: a subscription the role may not start ends with FORBIDDEN; one it may, runs', async () => {
    const client = createClient({
      url: `${t.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${tokens.viewer}` },
    });
    dispose(client, (c) => c.dispose());
    const { sessionId } = await newSession(t);
    const frames = client.iterate({ query: `subscription { streamFrames(sessionId: "${sessionId}") { seq } }` });
    const first = await frames.next();
    expect((first.value as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions?.code).toBe(
      'FORBIDDEN',
    );
    const changes = client.iterate({ query: 'subscription { healthChanged { subjectId } }' });
    const pending = changes.next();
    const settled = await Promise.race([
      pending.then(() => 'settled'),
      new Promise((r) => setTimeout(() => r('open'), 300)),
    ]);
    expect(settled).toBe('open'); // subscribed, waiting for a change
    await changes.return?.();
  });

  it('SSE: a subscription the role may not start answers FORBIDDEN and ends', async () => {
    const { sessionId } = await newSession(t);
    const params = new URLSearchParams({ query: `subscription { streamFrames(sessionId: "${sessionId}") { seq } }` });
    const res = await t.fetch(`/graphql?${params}`, { headers: { accept: 'text/event-stream' }, ...as('viewer') });
    const results: { errors?: { extensions?: { code?: string } }[] }[] = [];
    for await (const { data } of readSse(res.body as ReadableStream<Uint8Array>))
      if (data) results.push(JSON.parse(data));
    expect(results.map((r) => r.errors?.[0]?.extensions?.code)).toEqual(['FORBIDDEN']);
  });

  it('the relay: watching a session needs the operator role (a viewer gets 4403)', async () => {
    const s = await newSession(t);
    const viewer = operator(t, s, 'v', { header: `Bearer ${tokens.viewer}` });
    expect((await viewer.closed).code).toBe(4403);
    const op = operator(t, s, 'o', { header: `Bearer ${tokens.operator}` });
    await op.opened;
    expect(op.isOpen).toBe(true);
    await op.close();
  });
});
