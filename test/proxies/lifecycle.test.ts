import type { CreateProxyMutation, StreamGateClient, StreamGateError, UpdateProxyInput } from '@streamgate/client';
import { beforeAll, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { rejection, sdkClient } from '../helpers/sdk.js';
import { closedPort, startUpstream, type Upstream } from './helpers.js';

/** Proxies without Nginx Proxy Manager: validation gates every write; the event log has each change. */

let t: TestApp;
let sg: StreamGateClient;
let upstream: Upstream;

beforeAll(async () => {
  t = await startTestApp();
  sg = sdkClient(t);
  upstream = await startUpstream();
});

type Proxy = NonNullable<CreateProxyMutation['createProxy']['proxy']>;

const create = async (domain: string, destination: string) =>
  (await sg.createProxy({ input: { domain, destination } })).createProxy;
const update = async (id: string, input: UpdateProxyInput) => (await sg.updateProxy({ id, input })).updateProxy;
const read = async (id: string) => (await sg.proxy({ id })).proxy;

async function proxyCount(): Promise<number> {
  return t.db.prisma.proxy.count();
}

async function auditTypes(): Promise<{ type: string; actorName: string | null; details: unknown }[]> {
  // Audit entries are awaited by the mutation: they are in the log once it has answered.
  return t.db.prisma.eventLog.findMany({
    where: { source: 'proxies' },
    orderBy: { seq: 'asc' },
    select: { type: true, actorName: true, details: true },
  });
}

describe('createProxy', () => {
  it('validates, saves the proxy normalised, and logs who created it', async () => {
    const before = (await auditTypes()).length;
    const payload = await create('Media.Example.COM.', `http://127.0.0.1:${upstream.port}`);
    expect(payload.validation.ok).toBe(true);
    expect(payload.validation.steps.map((s) => [s.name, s.ok])).toEqual([
      ['SYNTAX', true],
      ['DNS', true],
      ['TCP', true],
      ['HTTP', true],
    ]);
    expect(payload.proxy).toMatchObject({
      domain: 'media.example.com',
      destination: `http://127.0.0.1:${upstream.port}/`,
      sslCertificateId: null,
      npmHostId: null,
      health: { status: 'UNKNOWN', checkedAt: null },
    });
    const id = payload.proxy?.id as string;
    expect(await read(id)).toEqual(payload.proxy);
    const { proxies } = await sg.proxies({ first: 100 });
    expect(proxies.edges.map((e) => e.node.id)).toContain(id);

    const audit = (await auditTypes()).slice(before);
    expect(audit).toEqual([
      {
        type: 'proxy.created',
        actorName: 'ADMIN_TOKEN',
        details: {
          id,
          domain: 'media.example.com',
          destination: `http://127.0.0.1:${upstream.port}/`,
          npmHostId: null,
        },
      },
    ]);
  });

  it('creates nothing when validation fails, and says why in the payload', async () => {
    const before = await proxyCount();
    const port = await closedPort();
    const { proxy, validation } = await create('dead.example.com', `http://127.0.0.1:${port}/`);
    expect(proxy).toBeNull();
    expect(validation.ok).toBe(false);
    expect(validation.steps.map((s) => [s.name, s.ok])).toEqual([
      ['SYNTAX', true],
      ['DNS', true],
      ['TCP', false],
    ]);
    expect(validation.steps[2]?.hint).toBe(
      `Port ${port} is not accepting connections. Check if the service is running and the port is correct.`,
    );

    const syntax = await create('bad.example.com', 'ftp://127.0.0.1/file');
    expect(syntax.proxy).toBeNull();
    expect(syntax.validation.steps.map((s) => [s.name, s.ok])).toEqual([['SYNTAX', false]]);
    expect(await proxyCount()).toBe(before);
  });

  it('refuses a domain that is not a host name, before any probe', async () => {
    const hits = upstream.paths.length;
    for (const domain of ['not a domain', '10.0.0.1', '-bad.example.com', '', `${'a'.repeat(64)}.example.com`]) {
      const error = await rejection(create(domain, upstream.url));
      expect(error.code, domain).toBe('BAD_USER_INPUT');
      expect(error.field).toBe('input.domain');
    }
    expect(upstream.paths.length, 'no destination was probed').toBe(hits);
  });

  it('refuses a domain already taken, whatever its case: CONFLICT, nothing created', async () => {
    const first = await create('taken.example.com', upstream.url);
    expect(first.proxy?.domain).toBe('taken.example.com');
    const before = await proxyCount();
    const hits = upstream.paths.length;
    const again = await rejection(create('TAKEN.example.com', upstream.url));
    expect(again.code).toBe('CONFLICT');
    expect(again.message).toBe('a proxy for taken.example.com already exists');
    expect(again.field).toBe('input.domain');
    expect(await proxyCount()).toBe(before);
    expect(upstream.paths.length, 'a taken domain is refused before validation').toBe(hits);
  });

  it('two creates of the same domain at once: one wins, the other is CONFLICT', async () => {
    const outcomes = await Promise.all(
      [1, 2].map(() =>
        create('race.example.com', upstream.url).then(
          (payload) => (payload.proxy ? 'created' : 'not created'),
          (error: StreamGateError) => error.code,
        ),
      ),
    );
    outcomes.sort();
    expect(outcomes).toEqual(['CONFLICT', 'created']);
    expect(await t.db.prisma.proxy.count({ where: { domain: 'race.example.com' } })).toBe(1);
  });
});

describe('updateProxy', () => {
  it('a domain-only change is not re-validated; a destination change is, and resets health', async () => {
    const created = await create('move.example.com', upstream.url);
    const id = created.proxy?.id as string;
    // Observed healthy at the first destination.
    await t.app.services.health.checkAll();
    expect((await read(id))?.health.status).toBe('HEALTHY');

    const renamed = await update(id, { domain: 'moved.example.com' });
    expect(renamed.validation).toEqual({ ok: true, steps: [] });
    expect(renamed.proxy).toMatchObject({
      domain: 'moved.example.com',
      health: { status: 'HEALTHY' },
    });

    // The same destination spelled differently is no change at all: nothing written, nothing logged.
    const stored = await t.db.prisma.proxy.findUniqueOrThrow({ where: { id } });
    const same = await update(id, { destination: `HTTP://127.0.0.1:${upstream.port}` });
    expect(same.validation).toEqual({ ok: true, steps: [] });
    expect((await t.db.prisma.proxy.findUniqueOrThrow({ where: { id } })).updatedAt).toEqual(stored.updatedAt);

    const other = await startUpstream();
    const moved = await update(id, { destination: other.url });
    expect(moved.validation.steps.map((s) => s.name)).toEqual(['SYNTAX', 'DNS', 'TCP', 'HTTP']);
    expect(moved.proxy).toMatchObject({
      destination: other.url,
      health: { status: 'UNKNOWN', checkedAt: null },
    });

    const audit = (await auditTypes()).filter((e) => (e.details as { id?: string }).id === id);
    expect(audit.map((e) => [e.type, (e.details as { changes?: unknown }).changes])).toEqual([
      ['proxy.created', undefined],
      ['proxy.updated', { domain: 'moved.example.com' }],
      ['proxy.updated', { destination: other.url }],
    ]);
  });

  it('a destination that fails validation changes nothing', async () => {
    const proxy = (await create('keep.example.com', upstream.url)).proxy as Proxy;
    const res = await update(proxy.id, { domain: 'kept.example.com', destination: 'http://nowhere.invalid/' });
    expect(res.proxy).toBeNull();
    expect(res.validation.steps.map((s) => [s.name, s.ok])).toEqual([
      ['SYNTAX', true],
      ['DNS', false],
    ]);
    expect(res.validation.steps[1]?.hint).toBe('Domain cannot be resolved. Check DNS settings or use an IP address.');
    expect(await t.db.prisma.proxy.findUnique({ where: { id: proxy.id } })).toMatchObject({
      domain: 'keep.example.com',
      destination: upstream.url,
    });
  });

  it("another proxy's domain is CONFLICT; bad input and unknown ids are clear errors", async () => {
    const a = (await create('one.example.com', upstream.url)).proxy as Proxy;
    await create('two.example.com', upstream.url);
    const code = async (id: string, input: UpdateProxyInput) => (await rejection(update(id, input))).code;
    expect(await code(a.id, { domain: 'Two.Example.com' })).toBe('CONFLICT');
    expect(await code(a.id, {})).toBe('BAD_USER_INPUT');
    expect(await code(a.id, { domain: 'no spaces.example.com' })).toBe('BAD_USER_INPUT');
    expect(await code('0191e0a0-0000-7000-8000-000000000001', { domain: 'x.example.com' })).toBe('NOT_FOUND');
    expect(await code('not-an-id', { domain: 'x.example.com' })).toBe('NOT_FOUND');
    expect((await t.db.prisma.proxy.findUnique({ where: { id: a.id } }))?.domain).toBe('one.example.com');
  });
});

describe('deleteProxy', () => {
  it('removes it everywhere and logs it; a second delete is NOT_FOUND', async () => {
    const proxy = (await create('gone.example.com', upstream.url)).proxy as Proxy;
    await t.app.services.health.checkAll();
    expect(t.app.services.health.stats().subjects).toBeGreaterThan(0);
    expect(await sg.deleteProxy({ id: proxy.id })).toEqual({ deleteProxy: proxy.id });
    expect(await read(proxy.id)).toBeNull();
    const audit = (await auditTypes()).at(-1);
    expect(audit).toEqual({
      type: 'proxy.deleted',
      actorName: 'ADMIN_TOKEN',
      details: { id: proxy.id, domain: 'gone.example.com', destination: upstream.url, npmHostId: null },
    });
    expect((await rejection(sg.deleteProxy({ id: proxy.id }))).code).toBe('NOT_FOUND');
    // Its domain is free again.
    expect((await create('gone.example.com', upstream.url)).proxy?.domain).toBe('gone.example.com');
  });
});

describe('validateProxy', () => {
  it('reports every step and creates nothing', async () => {
    const before = await proxyCount();
    const { validateProxy } = await sg.validateProxy({ input: { destination: upstream.url } });
    expect(validateProxy.ok).toBe(true);
    expect(validateProxy.steps.every((s) => s.hint === null && s.durationMs >= 0)).toBe(true);
    const failed = await sg.validateProxy({ input: { destination: 'http://user:pw@127.0.0.1/' } });
    expect(failed.validateProxy).toMatchObject({ ok: false, steps: [{ name: 'SYNTAX', ok: false }] });
    expect(await proxyCount()).toBe(before);
  });

  // Protocol level (no Authorization header at all): a raw request, not the SDK.
  it('needs a token', async () => {
    const res = await t.gql(
      'mutation { validateProxy(input: { destination: "http://127.0.0.1/" }) { ok } }',
      {},
      {
        token: null,
      },
    );
    expect(res.status).toBe(401);
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('health of proxies', () => {
  it('checks each destination like a node: transitions are events, health is on the proxy', async () => {
    const flaky = await startUpstream(200);
    const proxy = (await create('flaky.example.com', flaky.url)).proxy as Proxy;
    const health = t.app.services.health;
    await health.checkAll();
    expect((await read(proxy.id))?.health).toMatchObject({ status: 'HEALTHY', detail: 'HTTP 200' });
    expect(flaky.paths.at(-1)).toBe('/');

    flaky.status = 503;
    for (let i = 0; i < 3; i++) await health.checkAll(); // the failure threshold (3)
    const after = await read(proxy.id);
    expect(after?.health.status).toBe('UNHEALTHY');
    expect(after?.health.detail).toContain('503');

    // Transitions are emitted, not awaited: the event log writes them in its next batch.
    await eventually(async () => {
      const changes = await t.db.prisma.eventLog.findMany({
        where: { type: 'health.changed' },
        orderBy: { seq: 'asc' },
        select: { details: true },
      });
      const ofProxy = changes
        .map((c) => c.details as { subjectKind: string; subjectId: string; from: string; to: string })
        .filter((d) => d.subjectId === proxy.id);
      expect(ofProxy.map((d) => [d.subjectKind, d.from, d.to])).toEqual([
        ['PROXY', 'UNKNOWN', 'HEALTHY'],
        ['PROXY', 'HEALTHY', 'UNHEALTHY'],
      ]);
    });
  });

  it('a deleted proxy is dropped from the monitor at once', async () => {
    const proxy = (await create('dropped.example.com', upstream.url)).proxy as Proxy;
    const health = t.app.services.health;
    await health.checkAll();
    const subjects = health.stats().subjects;
    await sg.deleteProxy({ id: proxy.id });
    expect(health.stats().subjects).toBe(subjects - 1);
  });
});

describe('allProxies without Nginx Proxy Manager', () => {
  it("is StreamGate's proxies alone, and says sync is off", async () => {
    const { allProxies } = await sg.allProxies();
    expect(allProxies.npm).toEqual({ enabled: false, reachable: null, error: null });
    const { items } = allProxies;
    expect(items.length).toBe(await proxyCount());
    expect(items.every((i) => i.source === 'STREAMGATE' && !i.readOnly && i.inSync === null)).toBe(true);
  });
});
