import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { eventually } from '../helpers/eventually.js';
import { closedPort, type EchoBody, type FakeNode, startFakeNode } from '../helpers/fake-node.js';
import { dispose } from '../helpers/leftovers.js';
import { capturedLogger, dataPlaneClient, httpRoute, rawExchange } from './helpers.js';

/**
 * The data plane on PROXY_PORT against real upstreams on 127.0.0.1 (a fake node's `/echo/*`
 * describes what arrived), with routes from a routes file. PROXY_TIMEOUT_MS is short so the
 * timeout cases take a fraction of a second.
 */

const TIMEOUT_MS = 400;
let t: TestApp;
let node: FakeNode;
let client: ReturnType<typeof dataPlaneClient>;
let dir: string;
let dead: number;
let slowSockets: Socket[];
const logs = capturedLogger();

/** A server that accepts requests and never answers them; its sockets are recorded. */
async function startSilentServer(): Promise<string> {
  const server = createServer(() => {});
  server.on('connection', (socket) => slowSockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  dispose(server, (s) => {
    s.closeAllConnections();
    return new Promise((resolve) => s.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A server that cuts every connection as soon as a request arrives (reset). */
async function startResettingServer(): Promise<string> {
  const server = createServer((req: IncomingMessage) => req.socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  dispose(server, (s) => new Promise((resolve) => s.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function json(res: { body: { json(): Promise<unknown> } }) {
  return (await res.body.json()) as { error: { code: string; message: string } };
}

beforeAll(async () => {
  slowSockets = [];
  node = await startFakeNode();
  dead = await closedPort();
  dir = await mkdtemp(join(tmpdir(), 'streamgate-data-plane-'));
  const routesFile = join(dir, 'routes.yaml');
  await writeFile(
    routesFile,
    `routes:\n${[
      httpRoute('echo', node.url),
      httpRoute('based', `${node.url}/prefix`),
      httpRoute('exact', node.url, { host: 'exact.example.org' }),
      httpRoute('dead', `http://127.0.0.1:${dead}`),
      httpRoute('silent', await startSilentServer()),
      httpRoute('reset', await startResettingServer()),
      httpRoute('broken', 'ftp://127.0.0.1:21'),
    ].join('\n')}\n`,
  );
  t = await startTestApp({
    env: { ROUTES_FILE: routesFile, PROXY_TIMEOUT_MS: String(TIMEOUT_MS) },
    dataPlane: true,
    log: logs.log,
  });
  client = dataPlaneClient(t.proxyUrl as string);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('forwarding', () => {
  it('forwards method, path and query byte-exact, the body, and replaces the X-Forwarded headers', async () => {
    const path = '/echo/a%2Fb//c/../d?x=1&x=2&e=%20&u=%C3%A9';
    const res = await client.send('echo.example.test', path, {
      method: 'POST',
      body: 'hello, upstream',
      headers: {
        authorization: 'Bearer app-token',
        cookie: 'session=1',
        'x-custom': 'kept',
        te: 'trailers',
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-host': 'spoofed.example',
        'x-forwarded-proto': 'https',
      },
    });
    expect(res.statusCode).toBe(200);
    const echo = (await res.body.json()) as EchoBody;
    expect(echo.method).toBe('POST');
    expect(echo.url).toBe(path);
    expect(echo.bodyBytes).toBe('hello, upstream'.length);
    // The application's own credentials are its business: they go through.
    expect(echo.headers).toMatchObject({
      authorization: 'Bearer app-token',
      cookie: 'session=1',
      'x-custom': 'kept',
      host: `127.0.0.1:${node.port}`,
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'echo.example.test',
    });
    expect(echo.headers.te).toBeUndefined();
    // The upstream's own headers come back; its hop-by-hop ones do not.
    expect(res.headers['x-node-header']).toBe('from-node');
  });

  it('drops hop-by-hop headers, including those the Connection header names', async () => {
    const answer = await rawExchange(
      t.proxyUrl as string,
      'GET /echo/hop HTTP/1.1\r\nHost: echo\r\nConnection: close, X-Hop\r\nX-Hop: dropped\r\n' +
        'Keep-Alive: timeout=9\r\nProxy-Authorization: Basic eA==\r\nX-Kept: yes\r\n\r\n',
    );
    const echo = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as EchoBody;
    expect(echo.url).toBe('/echo/hop');
    expect(echo.headers['x-kept']).toBe('yes');
    for (const name of ['x-hop', 'keep-alive', 'proxy-authorization']) expect(echo.headers[name]).toBeUndefined();
  });

  it("returns the upstream's status, headers (repeats and cookies too) and body raw", async () => {
    node.override = (req, res) => {
      if (!req.url?.startsWith('/teapot')) return false;
      res.writeHead(418, 'Short And Stout', [
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
        ['connection', 'x-upstream-hop'],
        ['x-upstream-hop', 'gone'],
        ['content-type', 'application/octet-stream'],
      ]);
      res.end(Buffer.from([0, 1, 2, 255]));
      return true;
    };
    const res = await client.send('echo', '/teapot');
    expect(res.statusCode).toBe(418);
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(res.headers['x-upstream-hop']).toBeUndefined();
    expect(Buffer.from(await res.body.arrayBuffer())).toEqual(Buffer.from([0, 1, 2, 255]));
    node.override = undefined;
  });

  it("prefixes the upstream URL's path", async () => {
    const res = await client.send('based.example.test', '/x?y=1');
    await res.body.dump();
    expect(node.requests.at(-1)?.url).toBe('/prefix/x?y=1');
  });
});

describe('host matching', () => {
  it.each([
    'echo',
    'echo.example.test',
    'ECHO.Example.TEST',
    'echo.example.test:8080',
    'echo.example.test.',
    'Echo.Example.Test.:80',
    'exact.example.org',
    'EXACT.example.org.:443',
  ])('routes Host %s', async (host) => {
    const res = await client.send(host, '/echo/match');
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as EchoBody).url).toBe('/echo/match');
  });
});

describe('errors', () => {
  it('answers 404 for an unknown host and for an EXCLUDED route', async () => {
    for (const host of ['nobody.example.test', 'broken.example.test']) {
      const res = await client.send(host, '/');
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toContain('application/json');
      const body = await json(res);
      expect(body.error.code).toBe('ROUTE_NOT_FOUND');
      expect(body.error.message).toContain(host);
    }
  });

  it('answers 400 for a missing Host, a Host with a path or spaces, and an absolute-form target', async () => {
    const url = t.proxyUrl as string;
    const before = node.requests.length;
    const cases = [
      'GET /echo HTTP/1.0\r\n\r\n',
      'GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n',
      'GET /echo HTTP/1.1\r\nHost: echo.example.test/evil\r\nConnection: close\r\n\r\n',
      'GET /echo HTTP/1.1\r\nHost: echo example\r\nConnection: close\r\n\r\n',
      'GET http://echo.example.test/echo HTTP/1.1\r\nHost: echo.example.test\r\nConnection: close\r\n\r\n',
    ];
    for (const raw of cases) {
      const answer = await rawExchange(url, raw);
      expect(answer, raw).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/"code":"BAD_(HOST|REQUEST)"/);
      expect(answer).not.toContain(' at '); // never a stack
    }
    expect(node.requests.length).toBe(before);
  });

  it('refuses a smuggling attempt (Content-Length and Transfer-Encoding) with 400 and forwards nothing', async () => {
    const before = node.requests.length;
    const answer = await rawExchange(
      t.proxyUrl as string,
      'POST /echo HTTP/1.1\r\nHost: echo.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: echo.example.test\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('Transfer-Encoding');
    expect(answer.match(/HTTP\/1\.1/g)).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(node.requests.length).toBe(before);
  });

  it('answers 502 for an upstream that refuses connections or resets them', async () => {
    for (const [host, reason] of [
      ['dead', 'ECONNREFUSED'],
      ['reset', ''],
    ] as const) {
      const res = await client.send(host, '/');
      expect(res.statusCode).toBe(502);
      const body = await json(res);
      expect(body.error.code).toBe('UPSTREAM_UNAVAILABLE');
      expect(body.error.message).toContain(reason);
    }
  });

  it('answers 504 within the timeout for an upstream that never answers, and frees its socket', async () => {
    const started = performance.now();
    const res = await client.send('silent', '/');
    expect(res.statusCode).toBe(504);
    expect((await json(res)).error).toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS * 5);
    // The connection to the upstream is closed, not left for the pool.
    await eventually(() => expect(slowSockets.length > 0 && slowSockets.every((s) => s.destroyed)).toBe(true));
  });

  it('cuts only the response whose upstream dies mid-way', async () => {
    node.override = (req, res) => {
      if (!req.url?.startsWith('/dies')) return false;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000000' });
      res.write('a'.repeat(1000));
      setTimeout(() => req.socket.destroy(), 50);
      return true;
    };
    const res = await client.send('echo', '/dies');
    expect(res.statusCode).toBe(200);
    const other = await client.send('echo', '/echo/meanwhile');
    await expect(res.body.text()).rejects.toThrow();
    expect(other.statusCode).toBe(200);
    expect(((await other.body.json()) as EchoBody).url).toBe('/echo/meanwhile');
    node.override = undefined;
  });

  it('answers 502 to 1,000 concurrent clients of a dead upstream and leaks no file descriptor', async () => {
    const openFds = () => readdirSync('/proc/self/fd').length;
    // One connection per client: an agent of their own, closed after.
    const { Agent, request } = await import('undici');
    const agent = new Agent({ connections: 1_000 });
    const before = openFds();
    const statuses = await Promise.all(
      Array.from({ length: 1_000 }, async () => {
        const res = await request(`${t.proxyUrl}/`, { headers: { host: 'dead' }, dispatcher: agent });
        await res.body.dump();
        return res.statusCode;
      }),
    );
    expect(new Set(statuses)).toEqual(new Set([502]));
    await agent.close();
    await eventually(() => expect(openFds()).toBeLessThanOrEqual(before + 5));
  });
});

describe('route context', () => {
  it('names the route, upstream, status, bytes and duration in one access-log line per request', async () => {
    const res = await client.send('echo.example.test', '/echo/logged?secret=1');
    const body = await res.body.text();
    const line = await eventually(() => {
      const found = logs.lines.find((l) => l.component === 'data-plane' && l.path === '/echo/logged');
      expect(found).toBeDefined();
      return found;
    });
    expect(line).toMatchObject({
      route: 'echo',
      upstream: `http://127.0.0.1:${node.port}`,
      method: 'GET',
      status: 200,
      bytes: Buffer.byteLength(body),
    });
    expect(typeof line?.durationMs).toBe('number');
    expect(JSON.stringify(line)).not.toContain('secret');

    await (await client.send('nobody.example.test', '/unrouted')).body.dump();
    const miss = await eventually(() => {
      const found = logs.lines.find((l) => l.component === 'data-plane' && l.path === '/unrouted');
      expect(found).toBeDefined();
      return found;
    });
    expect(miss).toMatchObject({ route: null, upstream: null, status: 404, error: 'ROUTE_NOT_FOUND' });
  });

  it('counts requests by route and code, and their duration by route, in /metrics', async () => {
    const metricsText = async () => (await t.fetch('/metrics')).text();
    const count = (text: string, series: string) =>
      Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    const before = await metricsText();
    for (let i = 0; i < 3; i++) await (await client.send('echo', '/echo/counted')).body.dump();
    await (await client.send('dead', '/')).body.dump();
    await eventually(async () => {
      const after = await metricsText();
      const ok = 'streamgate_route_requests_total{route="echo",code="200"}';
      const bad = 'streamgate_route_requests_total{route="dead",code="502"}';
      const timed = 'streamgate_route_request_duration_seconds_count{route="echo"}';
      expect(count(after, ok) - count(before, ok)).toBe(3);
      expect(count(after, bad) - count(before, bad)).toBe(1);
      expect(count(after, timed) - count(before, timed)).toBe(3);
    });
  });
});
