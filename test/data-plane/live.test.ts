import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createStreamGateClient, type StreamGateClient } from '@streamgate/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { closedPort, type EchoBody, type FakeNode, startFakeNode } from '../helpers/fake-node.js';
import { dataPlaneClient, httpRoute, writeRoutes } from './helpers.js';

/**
 * Route changes reach the data plane for the very next request, with no restart: proxy and node
 * CRUD through the API (before the mutation answers), routes file edits (through the watcher).
 * Requests already routed keep their route until they finish.
 */

let t: TestApp;
let a: FakeNode;
let b: FakeNode;
let client: ReturnType<typeof dataPlaneClient>;
let sg: StreamGateClient;
let dir: string;
let routesFile: string;

/** A proxy to a fake node's `/echo` (what its validation GETs must answer 2xx). */
async function createProxy(domain: string, node: FakeNode): Promise<string> {
  const { createProxy } = await sg.createProxy({ input: { domain, destination: `${node.url}/echo` } });
  if (!createProxy.proxy) throw new Error(`proxy ${domain} not created: ${JSON.stringify(createProxy.validation)}`);
  return createProxy.proxy.id;
}

async function deleteProxy(id: string): Promise<void> {
  await sg.deleteProxy({ id });
}

/** Which fake node answered a request for `host` (by its echo of the port it listens on). */
async function reached(host: string, path = '/echo/which'): Promise<FakeNode | number> {
  const before = { a: a.requests.length, b: b.requests.length };
  const res = await client.send(host, path);
  await res.body.dump();
  if (res.statusCode !== 200) return res.statusCode;
  if (a.requests.length > before.a) return a;
  if (b.requests.length > before.b) return b;
  throw new Error('answered 200 but neither upstream saw the request');
}

beforeAll(async () => {
  a = await startFakeNode();
  b = await startFakeNode();
  dir = await mkdtemp(join(tmpdir(), 'streamgate-data-plane-live-'));
  routesFile = join(dir, 'routes.yaml');
  await writeRoutes(routesFile, [httpRoute('filed', a.url), httpRoute('other', b.url)]);
  t = await startTestApp({ env: { ROUTES_FILE: routesFile }, dataPlane: true });
  sg = createStreamGateClient({ url: t.url, token: t.token });
  client = dataPlaneClient(t.proxyUrl as string);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('live route changes', () => {
  it('follows proxy create, update and delete from the next request on', async () => {
    expect(await reached('shop.example.test')).toBe(404);
    const id = await createProxy('shop.example.test', a);
    expect(await reached('shop.example.test')).toBe(a);
    expect(await reached('SHOP.example.test.:80')).toBe(a);

    await sg.updateProxy({ id, input: { destination: `${b.url}/echo` } });
    expect(await reached('shop.example.test')).toBe(b);

    await deleteProxy(id);
    expect(await reached('shop.example.test')).toBe(404);
  });

  it('follows routes file edits without a restart', async () => {
    expect(await reached('filed')).toBe(a);
    await writeRoutes(routesFile, [httpRoute('filed', b.url), httpRoute('other', b.url)]);
    await eventually(async () => expect(await reached('filed')).toBe(b));
    await writeRoutes(routesFile, [httpRoute('other', b.url)]);
    await eventually(async () => expect(await reached('filed')).toBe(404));
  });

  it('serves a node route to admins only, without forwarding their token', async () => {
    const { createCacheNode } = await sg.createCacheNode({
      input: { name: 'edge1', host: '127.0.0.1', apiPort: a.port },
    });
    const { id } = createCacheNode;

    const anonymous = await client.send('cache-edge1', '/echo/node');
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Bearer');
    await anonymous.body.dump();
    const wrong = await client.send('cache-edge1', '/echo/node', { headers: { authorization: 'Bearer sg_wrong' } });
    expect(wrong.statusCode).toBe(401);
    await wrong.body.dump();

    const admin = await client.send('cache-edge1', '/echo/node', {
      headers: { authorization: `Bearer ${t.token}`, cookie: 'ours=1' },
    });
    expect(admin.statusCode).toBe(200);
    const echo = (await admin.body.json()) as EchoBody;
    expect(echo.url).toBe('/echo/node');
    expect(echo.headers.authorization).toBeUndefined();
    expect(echo.headers.cookie).toBeUndefined();
    expect(admin.headers['content-security-policy']).toBe('sandbox');

    await sg.deleteCacheNode({ id });
    const gone = await client.send('cache-edge1', '/echo/node', { headers: { authorization: `Bearer ${t.token}` } });
    expect(gone.statusCode).toBe(404);
    await gone.body.dump();
  });

  it('lets a request in flight on a deleted route finish normally', async () => {
    a.override = (req, res) => {
      if (!req.url?.startsWith('/echo/slow')) return false;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first half, ');
      setTimeout(() => res.end('second half'), 300);
      return true;
    };
    const id = await createProxy('inflight.example.test', a);
    const pending = client.send('inflight.example.test', '/slow');
    const res = await pending;
    await deleteProxy(id);
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('first half, second half');
    expect(await reached('inflight.example.test')).toBe(404);
    a.override = undefined;
  });

  it('completes a 100 MB upload whose route is deleted while it streams, and nothing else is affected', async () => {
    const id = await createProxy('upload.example.test', a);
    const chunk = randomBytes(256 * 1024);
    const chunks = 400; // 100 MiB
    const expected = createHash('sha256');
    let sent = 0;
    let deleted: Promise<void> | undefined;
    const body = Readable.from(
      (async function* () {
        for (let i = 0; i < chunks; i++) {
          expected.update(chunk);
          sent++;
          // A quarter of the way in, the route goes away (and another route is used meanwhile);
          // the rest is sent only once it is gone.
          if (sent === chunks / 4) {
            deleted = deleteProxy(id).then(async () => expect(await reached('other')).toBe(b));
            await deleted;
            expect(await reached('upload.example.test')).toBe(404);
          }
          yield chunk;
        }
      })(),
    );
    const res = await client.send('upload.example.test', '/echo/upload', {
      method: 'POST',
      body,
      headers: { 'content-length': String(chunk.length * chunks), 'content-type': 'application/octet-stream' },
    });
    const echo = (await res.body.json()) as EchoBody;
    await deleted;
    expect(deleted).toBeDefined();
    expect(res.statusCode).toBe(200);
    expect(echo.bodyBytes).toBe(chunk.length * chunks);
    expect(echo.bodySha256).toBe(expected.digest('hex'));
    expect(await reached('upload.example.test')).toBe(404);
  });
});

describe('unhealthy routes', () => {
  it('answers 503 with Retry-After once the monitor holds a route UNHEALTHY', async () => {
    const port = await closedPort();
    const dir2 = await mkdtemp(join(tmpdir(), 'streamgate-data-plane-health-'));
    const file = join(dir2, 'routes.yaml');
    await writeRoutes(file, [httpRoute('down', `http://127.0.0.1:${port}`)]);
    const monitored = await startTestApp({ env: { ROUTES_FILE: file, HEALTH_MONITOR: 'on' }, dataPlane: true });
    const own = dataPlaneClient(monitored.proxyUrl as string);
    try {
      // Before the monitor has a verdict the route is tried: the upstream's failure is a 502.
      const tried = await own.send('down', '/');
      expect(tried.statusCode).toBe(502);
      await tried.body.dump();
      await eventually(async () => {
        await monitored.app.services.health.checkAll();
        expect(monitored.app.services.routes.healthStatus(monitored.app.services.routes.find('down') as never)).toBe(
          'UNHEALTHY',
        );
      });
      const res = await own.send('down', '/');
      expect(res.statusCode).toBe(503);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('ROUTE_UNHEALTHY');
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  });
});
