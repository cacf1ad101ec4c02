import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RoutesQueryVariables, StreamGateClient } from '@streamgate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { rejection, sdkClient } from '../helpers/sdk.js';
import { closedPort, startUpstream, type Upstream } from '../proxies/helpers.js';

/**
 * The registry inside the app: every provider feeds it (proxies and nodes through the API, the
 * routes file through the file system), and GraphQL reads it. Proxy and node changes are in the
 * registry before their mutation answers, so those assertions do not wait; file edits arrive
 * through the file watcher, so those do.
 */

// Fixed ports below the ephemeral range (32768+ here), so no port the OS hands out can take them.
const API_PORT = 26123;

let t: TestApp;
let sg: StreamGateClient;
const queries = { total: 0 };
let upstream: Upstream;
let dir: string;
let routesFile: string;

/** Replaces the routes file the way editors do: a new file renamed over the old one. */
async function writeRoutes(...lines: string[]): Promise<void> {
  const next = `${routesFile}.tmp`;
  await writeFile(next, `${lines.join('\n')}\n`);
  await rename(next, routesFile);
}

async function routes(filter: RoutesQueryVariables = {}) {
  return (await sg.routes(filter)).routes;
}

async function route(alias: string) {
  return (await sg.route({ alias })).route;
}

async function createProxy(domain: string, destination: string): Promise<string> {
  const { createProxy } = await sg.createProxy({ input: { domain, destination } });
  if (!createProxy.proxy) throw new Error(`proxy ${domain} not created: ${JSON.stringify(createProxy.validation)}`);
  return createProxy.proxy.id;
}

async function routeEvents(type: string) {
  return t.db.prisma.eventLog.findMany({ where: { type }, orderBy: { seq: 'asc' } });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamgate-routes-'));
  routesFile = join(dir, 'routes.yaml');
  upstream = await startUpstream();
  await writeFile(
    routesFile,
    [
      'routes:',
      '  - alias: grafana',
      `    upstream: ${upstream.url}`,
      '  - alias: rtmp-in',
      '    kind: stream',
      '    listenPort: 21935',
      `    upstream: 127.0.0.1:${upstream.port}`,
      '',
    ].join('\n'),
  );
  // EVENT_LOG_MIN_SEVERITY=INFO: the INFO events of the routes file are asserted in the log.
  const db = await createTestDatabase({ logQueries: true });
  // Only reads of proxies and nodes: the event log writes INFO entries meanwhile, at its own pace.
  const prisma = db.prisma as unknown as { $on(event: 'query', listener: (e: { query: string }) => void): void };
  prisma.$on('query', (e) => {
    if (/^SELECT .* FROM "[^"]+"\."(Proxy|Node)"/s.test(e.query)) queries.total++;
  });
  t = await startTestApp({
    db,
    env: { ROUTES_FILE: routesFile, PORT: String(API_PORT), EVENT_LOG_MIN_SEVERITY: 'INFO' },
  });
  sg = sdkClient(t);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('providers', () => {
  it('loads the routes file before start() resolves', async () => {
    const file = await routes({ provider: 'file' });
    expect(file.map((r) => [r.alias, r.kind, r.upstreamUrl, r.listenPort])).toEqual([
      ['grafana', 'HTTP', `http://127.0.0.1:${upstream.port}/`, null],
      ['rtmp-in', 'STREAM', `tcp://127.0.0.1:${upstream.port}`, 21935],
    ]);
    expect(file[0]).toMatchObject({ origin: 'routes.yaml:line 2', proxy: null, node: null });
  });

  it('follows proxies as they are created, updated and deleted, before each mutation answers', async () => {
    const id = await createProxy('shop.example.test', upstream.url);
    expect(await route('shop.example.test')).toMatchObject({
      kind: 'HTTP',
      provider: 'proxies',
      origin: `proxy ${id}`,
      proxy: { id, domain: 'shop.example.test' },
    });

    const other = await startUpstream();
    await sg.updateProxy({ id, input: { destination: other.url } });
    expect((await route('shop.example.test'))?.upstreamUrl).toBe(other.url);

    await sg.deleteProxy({ id });
    expect(await route('shop.example.test')).toBeNull();
  });

  it('makes every node a route to its API, alias {kind}-{name}, linked to the node', async () => {
    const { createCacheNode } = await sg.createCacheNode({
      input: { name: 'edge-1', host: '127.0.0.1', apiPort: upstream.port },
    });
    const { id } = createCacheNode;
    expect(await route('cache-edge-1')).toMatchObject({
      kind: 'HTTP',
      provider: 'nodes',
      upstreamUrl: `http://127.0.0.1:${upstream.port}/`,
      node: { __typename: 'CacheNode', id, name: 'edge-1' },
      proxy: null,
    });
    await sg.updateCacheNode({ id, input: { name: 'edge-2' } });
    expect(await route('cache-edge-1')).toBeNull();
    expect((await route('cache-edge-2'))?.node?.id).toBe(id);
    await sg.deleteCacheNode({ id });
    expect(await route('cache-edge-2')).toBeNull();
  });

  it('groups routes by provider in precedence order', async () => {
    await createProxy('group.example.test', upstream.url);
    await sg.createSlbNode({ input: { name: 'lb-1', host: '127.0.0.1', apiPort: upstream.port } });
    const groups = (await sg.routesByProvider()).routesByProvider;
    expect(groups.map((g) => g.provider)).toEqual(['file', 'proxies', 'nodes']);
    expect(groups[0]?.routes.map((r) => r.alias)).toEqual(['grafana', 'rtmp-in']);
    expect(groups[1]?.routes.map((r) => r.alias)).toContain('group.example.test');
    expect(groups[2]?.routes.map((r) => r.alias)).toContain('slb-lb-1');
  });

  it('finds a route by alias in any case or with a trailing dot; an unknown alias is null', async () => {
    expect((await route('GRAFANA'))?.alias).toBe('grafana');
    expect((await route('Group.Example.Test.'))?.alias).toBe('group.example.test');
    expect(await route('no-such-route')).toBeNull();
  });

  it('filters by kind, and refuses a provider that does not exist', async () => {
    const streams = await routes({ kind: 'STREAM' });
    expect(streams.map((r) => r.alias)).toEqual(['rtmp-in']);
    const error = await rejection(sg.routes({ provider: 'docker' }));
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'provider' });
  });
});

describe('exclusion and the routes file changing', () => {
  it('a file route beats the proxy with the same domain: the proxy route is EXCLUDED naming the file, with a WARN event', async () => {
    const proxyId = await createProxy('dup.example.test', upstream.url);
    expect((await route('dup.example.test'))?.provider).toBe('proxies');
    await writeRoutes(
      'routes:',
      '  - alias: grafana',
      `    upstream: ${upstream.url}`,
      '  - alias: dup.example.test',
      `    upstream: ${upstream.url}`,
    );
    await eventually(async () => expect((await route('dup.example.test'))?.provider).toBe('file'));
    const excluded = (await routes({ kind: 'EXCLUDED' })).find((r) => r.alias === 'dup.example.test');
    expect(excluded).toMatchObject({ provider: 'proxies', origin: `proxy ${proxyId}`, proxy: { id: proxyId } });
    expect(excluded?.excludedReason).toBe(
      'alias "dup.example.test" is already taken by HTTP route "dup.example.test" (file, routes.yaml:line 4)',
    );
    await eventually(async () =>
      expect((await routeEvents('route.excluded')).map((e) => [e.severity, e.details])).toContainEqual([
        'WARN',
        expect.objectContaining({ alias: 'dup.example.test', provider: 'proxies' }),
      ]),
    );
    // The STREAM route left the file: it is gone.
    expect(await route('rtmp-in')).toBeNull();
  });

  it('excludes a stream route on the API port, naming it', async () => {
    await writeRoutes(
      'routes:',
      '  - alias: grafana',
      `    upstream: ${upstream.url}`,
      '  - alias: on-api-port',
      '    kind: stream',
      `    listenPort: ${API_PORT}`,
      `    upstream: 127.0.0.1:${upstream.port}`,
    );
    await eventually(async () =>
      expect(await route('on-api-port')).toMatchObject({
        kind: 'EXCLUDED',
        listenPort: API_PORT,
        excludedReason: `listen port ${API_PORT} is already taken by PORT (the API)`,
      }),
    );
  });

  it('keeps the previous routes when the file is malformed, says which line in an ERROR event, and recovers', async () => {
    const before = (await routes({ provider: 'file' })).map((r) => r.alias);
    await writeRoutes('routes:', '  - alias: grafana', '    alias: twice', `    upstream: ${upstream.url}`);
    await eventually(async () => expect(await routeEvents('routes.source_invalid')).not.toHaveLength(0));
    const [event] = await routeEvents('routes.source_invalid');
    expect(event).toMatchObject({ severity: 'ERROR', source: 'routes' });
    expect(event?.details).toMatchObject({ provider: 'file', file: routesFile, line: 3 });
    expect((await routes({ provider: 'file' })).map((r) => r.alias)).toEqual(before);

    await writeRoutes('routes:', '  - alias: fixed', `    upstream: ${upstream.url}`);
    await eventually(async () => expect((await routes({ provider: 'file' })).map((r) => r.alias)).toEqual(['fixed']));
  });

  it('removes the file’s routes, with an INFO event, when the file disappears; the others stay', async () => {
    await rm(routesFile);
    await eventually(async () => expect(await routes({ provider: 'file' })).toEqual([]));
    // The event is emitted (stored by the bus's next write), not recorded: wait for it to be stored.
    await eventually(async () => expect(await routeEvents('routes.source_removed')).not.toHaveLength(0));
    const [event] = await routeEvents('routes.source_removed');
    expect(event).toMatchObject({ severity: 'INFO', source: 'routes' });
    expect(event?.details).toMatchObject({ provider: 'file', removed: 1 });
    expect(await routeEvents('routes.source_removed')).toHaveLength(1);
    // dup.example.test is the proxy's again, no longer excluded.
    expect((await route('dup.example.test'))?.provider).toBe('proxies');
    expect((await route('group.example.test'))?.provider).toBe('proxies');
    expect((await route('slb-lb-1'))?.provider).toBe('nodes');

    await writeRoutes('routes:', '  - alias: grafana', `    upstream: ${upstream.url}`);
    await eventually(async () => expect((await route('grafana'))?.provider).toBe('file'));
  });
});

describe('health per route', () => {
  it('checks file routes with the monitor; proxy and node routes report their own subject, not probed twice', async () => {
    const down = await closedPort();
    await writeRoutes(
      'routes:',
      '  - alias: grafana',
      `    upstream: ${upstream.url}`,
      '  - alias: gone',
      `    upstream: http://127.0.0.1:${down}/`,
    );
    await eventually(async () => expect(await route('gone')).not.toBeNull());
    const subjects = await t.app.services.health.sourceOf('ROUTE')?.list();
    expect(subjects?.map((s) => s.id).sort()).toEqual(['gone', 'grafana']);

    await t.app.services.health.checkAll();
    const grafana = await route('grafana');
    expect(grafana?.health).toMatchObject({ status: 'HEALTHY', detail: 'HTTP 200' });
    expect(grafana?.health.latencyMs).toEqual(expect.any(Number));
    // The proxy's route shows the proxy's own health, as checked by the PROXY subject.
    const proxy = await t.db.prisma.proxy.findUniqueOrThrow({ where: { domain: 'group.example.test' } });
    expect((await route('group.example.test'))?.health).toMatchObject({
      status: proxy.status,
      detail: proxy.healthDetail,
    });
    expect(proxy.status).toBe('HEALTHY');

    // Three failed checks make a route UNHEALTHY, announced as a ROUTE transition.
    for (let i = 0; i < 3; i++) await t.app.services.health.checkAll();
    expect((await route('gone'))?.health.status).toBe('UNHEALTHY');
    await eventually(async () =>
      expect((await routeEvents('health.changed')).map((e) => e.details)).toContainEqual(
        expect.objectContaining({ subjectKind: 'ROUTE', subjectId: 'gone', to: 'UNHEALTHY' }),
      ),
    );
  });

  it('reads the rows behind a whole list of routes in a fixed number of statements (no N+1)', async () => {
    const count = async () => {
      const before = queries.total;
      const { routes } = await sg.routes();
      return { statements: queries.total - before, routes: routes.length };
    };
    const few = await count();
    for (let i = 0; i < 4; i++) await createProxy(`many-${i}.example.test`, upstream.url);
    for (let i = 0; i < 4; i++) {
      await sg.createCacheNode({ input: { name: `many-${i}`, host: '127.0.0.1', apiPort: upstream.port } });
    }
    const many = await count();
    expect(many.routes).toBe(few.routes + 8);
    expect(few.statements).toBeGreaterThan(0); // the counter sees these reads at all
    expect(many.statements).toBe(few.statements);
  });
});

describe('auth', () => {
  // Protocol level (no Authorization header at all): a raw request, not the SDK.
  it('needs a token for the route queries', async () => {
    const res = await t.gql('{ routes { alias } }', undefined, { token: null });
    expect(codes(res)).toContain('UNAUTHENTICATED');
  });
});
