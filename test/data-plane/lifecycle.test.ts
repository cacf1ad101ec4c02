import { execSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestApp } from '../helpers/app.js';
import { closedPort, startFakeNode } from '../helpers/fake-node.js';
import { dispose } from '../helpers/leftovers.js';
import { dataPlaneClient, httpRoute, writeRoutes } from './helpers.js';

/**
 * `promise`, or a failure naming what did not happen within 5 s (instead of the test's timeout).
 * With `port`, the failure is also written to stderr with the sockets on that port and who holds
 * them (`ss`): a retried test's failed attempt is not reported otherwise.
 */
async function within<T>(promise: Promise<T>, what: string, port?: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const message = `${what}: nothing within 5 s`;
      if (port) {
        const sockets = execSync(`ss -tnpa | grep -E ':${port}\\b' || true`).toString();
        console.error(`${message}\nsockets on port ${port} (test pid ${process.pid}):\n${sockets}`);
      }
      reject(new Error(message));
    }, 5_000);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The data plane shares the app's lifecycle: on only when PROXY_PORT is set, started with the
 * app, and drained by its stop (requests in flight finish, tunnels are cut, nothing new is taken).
 */

let dir: string;
let routesFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamgate-data-plane-life-'));
  routesFile = join(dir, 'routes.yaml');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('data plane lifecycle', () => {
  it('is off unless PROXY_PORT is set, and listens on PROXY_PORT when it is', async () => {
    const off = await startTestApp();
    expect(off.app.dataPlane.url).toBeNull();

    const port = await closedPort();
    const on = await startTestApp({ env: { PROXY_PORT: String(port) } });
    expect(on.app.dataPlane.url).toBe(`http://127.0.0.1:${port}`);
    const res = await dataPlaneClient(on.app.dataPlane.url as string).send('nothing.example.test');
    expect(res.statusCode).toBe(404);
    await res.body.dump();
  });

  it("has the API port's pre-authentication limits: a silent connection is closed, connections per address are capped", async () => {
    const t = await startTestApp({
      env: { HEADERS_TIMEOUT_MS: '300', MAX_CONNECTIONS_PER_ADDRESS: '3' },
      dataPlane: true,
    });
    const { port } = new URL(t.proxyUrl as string);
    // Each socket's close is listened for from its creation, so no close can slip by unseen.
    const open = () =>
      new Promise<{ socket: Socket; closed: Promise<void> }>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1');
        const closed = new Promise<void>((done) => socket.once('close', () => done()));
        // Read (and drop) whatever the server says before it closes: the idle limit destroys the
        // socket, but Node's own header timer, checked every 300 ms here, may win and answer 408
        // first; a socket that leaves those bytes unread never sees the close behind them.
        socket.resume();
        socket.once('connect', () => resolve({ socket, closed }));
        socket.once('error', reject);
      });

    const silent = await within(open(), 'connecting', port);
    const started = performance.now();
    await within(silent.closed, 'the silent connection being closed', port);
    expect(performance.now() - started).toBeLessThan(5_000);

    const held = [await open(), await open(), await open()];
    const fourth = await within(open(), 'the fourth connection', port);
    await within(fourth.closed, 'the fourth connection being dropped by the cap', port);
    expect(held.every(({ socket }) => !socket.destroyed)).toBe(true);
    for (const { socket } of held) socket.destroy();
  });

  it('lets a request in flight finish on stop, cuts open tunnels and takes nothing new', async () => {
    const node = await startFakeNode();
    node.override = (req, res) => {
      if (!req.url?.startsWith('/slow')) return false;
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('finished'), 300);
      return true;
    };
    const wsServer = createServer();
    const wss = new WebSocketServer({ server: wsServer });
    await new Promise<void>((resolve) => wsServer.listen(0, '127.0.0.1', resolve));
    dispose(wsServer, (s) => {
      for (const c of wss.clients) c.terminate();
      return new Promise((resolve) => s.close(resolve));
    });
    await writeRoutes(routesFile, [
      httpRoute('slow', node.url),
      httpRoute('ws', `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}`),
    ]);
    const t = await startTestApp({ env: { ROUTES_FILE: routesFile, SHUTDOWN_TIMEOUT_MS: '5000' }, dataPlane: true });
    const proxyUrl = t.proxyUrl as string;
    const client = dataPlaneClient(proxyUrl);

    const ws = new WebSocket(`${proxyUrl.replace('http', 'ws')}/`, { headers: { host: 'ws' } });
    await once(ws, 'open');
    const tunnelClosed = once(ws, 'close');

    const inFlight = client.send('slow', '/slow');
    await new Promise((resolve) => setTimeout(resolve, 50)); // the request has reached the upstream
    const started = performance.now();
    const stopped = t.app.stop();
    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('finished');
    await stopped;
    await tunnelClosed;
    // Well before SHUTDOWN_TIMEOUT_MS: the tunnel did not hold the stop.
    expect(performance.now() - started).toBeLessThan(3_000);
    await expect(dataPlaneClient(proxyUrl).send('slow', '/slow')).rejects.toThrow(/ECONNREFUSED/);
  });
});
